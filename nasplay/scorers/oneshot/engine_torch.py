"""The PyTorch engine of one-shot search: ``nasplay.scorers.oneshot.engine_tf``'s interface on
PyTorch.

PyTorch runs eagerly, so ``keras.ops.switch`` calls only the chosen branch: an unchosen op is
neither computed nor differentiated (its weights get no gradient at all, as in SPOS's own
code), there is no graph to trace (a supernet steps at once, where TensorFlow first traces every
branch of every cell for minutes), and a step costs little more than the chosen network's own
step (BENCHMARKS.md, "A supernet step"). The update is the TensorFlow engine's arithmetic,
Keras's SGD with Nesterov momentum and decoupled weight decay on the variables and kernel rows
the path uses, and the weights are Keras's, so a supernet trained on one backend is scored on
the other (the checkpoint holds numpy arrays).
"""

from __future__ import annotations

import numpy as np

from nasplay.errors import UserError
from nasplay.runtime._internals.torch_internals import nesterov_sgd_

FIRST_STEP_NOTE = None  # eager: the first step is like any other


class _LearningRate:
    """The learning rate the next steps use (``assign`` it, as the TensorFlow engine's variable)."""

    def __init__(self, value: float = 0.0):
        self.value = float(value)

    def assign(self, value) -> None:
        self.value = float(value)


class MaskedSGD:
    """Keras's SGD arithmetic (Nesterov momentum, decoupled weight decay scaled by the learning
    rate) applied only to the variables the step's path used, with the gradients the backward
    pass left on them; every gradient is cleared afterwards."""

    def __init__(self, variables, momentum: float, weight_decay: float):
        import torch

        self.variables = list(variables)
        self._params = [v.value for v in self.variables]
        self.slots = [torch.zeros_like(p, requires_grad=False) for p in self._params]
        self._index = {id(v): i for i, v in enumerate(self.variables)}
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.learning_rate = _LearningRate()

    def apply(self, groups) -> None:
        """Update each group whose ``used`` flag holds (``None``: always); see update_groups."""
        import torch

        covered = sum(len(members) for _, members in groups)
        if covered != len(self.variables):
            raise RuntimeError(f"update groups cover {covered} of {len(self.variables)} variables")
        flags = [used for used, _ in groups if used is not None]
        # one device-to-host copy for all flags (on a GPU, one sync a step instead of hundreds)
        taken = iter(torch.stack([torch.as_tensor(f) for f in flags]).tolist() if flags else [])
        plain, masked = [], []
        for used, members in groups:
            if used is not None and not next(taken):
                continue
            for variable, mask in members:
                i = self._index[id(variable)]
                (plain if mask is None else masked).append((i, mask))
        lr, mu, decay = self.learning_rate.value, self.momentum, self.weight_decay
        with torch.no_grad():
            if plain:
                params = [self._params[i] for i, _ in plain]
                slots = [self.slots[i] for i, _ in plain]
                grads = [_grad(p) for p in params]
                nesterov_sgd_(params, slots, grads, lr, mu, decay)
            for i, mask in masked:
                param, slot = self._params[i], self.slots[i]
                grad, keep = _grad(param), torch.as_tensor(mask, device=param.device) > 0
                accum = slot * mu - lr * grad
                param.copy_(torch.where(keep, param * (1.0 - lr * decay) + accum * mu - lr * grad,
                                        param))
                slot.copy_(torch.where(keep, accum, slot))
        for param in self._params:
            param.grad = None

    def load_slots(self, arrays) -> None:
        import torch

        if len(arrays) != len(self.slots):
            raise UserError(f"corrupt supernet checkpoint: {len(arrays)} momentum buffers for "
                            f"{len(self.slots)} variables")
        with torch.no_grad():
            for slot, array in zip(self.slots, arrays):
                slot.copy_(torch.as_tensor(np.asarray(array), device=slot.device))

    def slot_arrays(self) -> list:
        """The momentum buffers as numpy arrays (a checkpoint's ``m*`` entries)."""
        return [slot.detach().cpu().numpy() for slot in self.slots]


def _grad(param):
    """The gradient backward left on ``param``; zeros for a used variable that got none (it did
    not reach the loss, as TensorFlow's zero gradient), so momentum and decay apply as there."""
    import torch

    return param.grad if param.grad is not None else torch.zeros_like(param)


def _tensors(x, arch, y=None):
    """Keras tensors (on Keras's device) of a batch, its path and its labels."""
    from keras import ops

    tensors = [ops.convert_to_tensor(np.asarray(x, np.float32)),
               ops.convert_to_tensor(np.asarray(arch, np.int32))]
    if y is not None:
        tensors.append(ops.convert_to_tensor(np.asarray(y, np.int32)))
    return tensors


def _accuracy(y, probs):
    return (probs.argmax(-1) == y).float().mean()


def compile_steps(supernet, optimizer, batch_size=None, reward_batch_size=None):
    """``train_step(x, y, arch) -> (loss, accuracy)`` and ``reward_step(x, y, arch) ->
    accuracy``, as the TensorFlow engine's (eager: the batch sizes are not needed)."""
    import keras
    import torch

    def train_step(x, y, a):
        x, a, y = _tensors(x, a, y)
        probs = supernet([x, a], training=True)
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, probs))
        loss.backward()
        with torch.no_grad():
            groups = supernet.update_groups(a)
        optimizer.apply(groups)
        return loss.detach(), _accuracy(y, probs.detach())

    def reward_step(x, y, a):
        x, a, y = _tensors(x, a, y)
        with torch.no_grad():
            return _accuracy(y, supernet([x, a], training=True, bn_momentum=1.0))

    return train_step, reward_step


def compile_scoring(supernet):
    """``recalibrate(x, arch, momentum)`` and ``predict(x, arch) -> probabilities`` (numpy)."""
    import keras
    import torch

    def recalibrate(x, a, momentum):
        x, a = _tensors(x, a)
        with torch.no_grad():
            supernet([x, a], training=True, bn_momentum=float(momentum))

    def predict(x, a):
        x, a = _tensors(x, a)
        with torch.no_grad():
            return keras.ops.convert_to_numpy(supernet([x, a], training=False))

    return recalibrate, predict


class Snapshot:
    """A copy of ``optimizer``'s variables taken now; :meth:`restore` puts them back and empties
    the momentum buffers."""

    def __init__(self, optimizer):
        self._params, self._slots = optimizer._params, optimizer.slots
        self._saved = [p.detach().clone() for p in self._params]

    def restore(self) -> None:
        import torch

        with torch.no_grad():
            for param, value in zip(self._params, self._saved):
                param.copy_(value)
            for slot in self._slots:
                slot.zero_()

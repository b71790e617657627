"""Training a supernet: one path per step, only that path's weights move, checkpoint per epoch.

Every step samples a path (uniformly: SPOS; or from the RL controller: ENAS), runs the images
through it and updates the weights it used. TensorFlow gives the variables of the unchosen
branches zero gradients, not None, and SGD's momentum and weight decay would still move them
(PyTorch's SPOS code skips None gradients); :class:`MaskedSGD` skips every variable the path does
not use (``SuperNet.update_groups``), and the rows of the preprocessing kernels that read a
previous cell's non-loose blocks, so an op's weights change only on the steps that train it.

With the controller sampler, each step's path is also scored on a validation batch (batch
statistics, moving ones untouched) and that accuracy is told to the controller, which updates
its policy every few results: ENAS's alternation, at ENAS's ratio of one reward per step.

Repeatable and resumable: the weights start from ``keras.utils.set_random_seed(seed)``, epoch
``e``'s data order and paths come from generators seeded with ``(seed, e)``, and a checkpoint
holds everything else (weights, momentum buffers, the controller's state), so a run resumed from
epoch ``e`` ends with the weights of the uninterrupted run. This module is the TensorFlow part
of one-shot search (``tf.function``, ``tf.GradientTape``, fused SGD kernels); the supernet
itself is plain Keras.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from nasplay import oneshot_checkpoint as ckpt
from nasplay.errors import UserError


class MaskedSGD:
    """Keras's SGD arithmetic (Nesterov momentum, decoupled weight decay scaled by the learning
    rate) applied only to the variables the step's path used."""

    def __init__(self, variables, momentum: float, weight_decay: float):
        import tensorflow as tf

        self.variables = list(variables)
        self.slots = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False)
                      for v in self.variables]
        self._index = {id(v): i for i, v in enumerate(self.variables)}
        self.momentum = float(momentum)
        self.weight_decay = float(weight_decay)
        self.learning_rate = tf.Variable(0.0, trainable=False, dtype="float32")

    def apply(self, grads, groups) -> None:
        """Update each group whose ``used`` flag holds (``None``: always); see update_groups."""
        import tensorflow as tf

        covered = sum(len(members) for _, members in groups)
        if covered != len(self.variables):
            raise RuntimeError(f"update groups cover {covered} of {len(self.variables)} variables")
        for used, members in groups:
            def update(members=members):
                for variable, mask in members:
                    self._update(variable, grads[self._index[id(variable)]], mask)
                return tf.constant(0)

            if used is None:
                update()
            else:
                tf.cond(used, update, lambda: tf.constant(0))

    def _update(self, variable, grad, mask) -> None:
        import tensorflow as tf

        if grad is None:  # not connected to the loss at all: nothing to learn
            return
        slot = self.slots[self._index[id(variable)]]
        lr = tf.cast(self.learning_rate, variable.dtype)
        mu = tf.cast(self.momentum, variable.dtype)
        if mask is None:
            if self.weight_decay:
                variable.assign_sub(variable.value * (lr * self.weight_decay))
            tf.raw_ops.ResourceApplyKerasMomentum(var=variable.value.handle, accum=slot.handle,
                                                  lr=lr, grad=grad, momentum=mu,
                                                  use_nesterov=True)
            return
        value = variable.value
        decayed = value - value * (lr * self.weight_decay)
        accum = slot * mu - lr * grad
        keep = tf.cast(mask, variable.dtype) > 0
        variable.assign(tf.where(keep, decayed + accum * mu - lr * grad, value))
        slot.assign(tf.where(keep, accum, slot))

    def load_slots(self, arrays) -> None:
        if len(arrays) != len(self.slots):
            raise UserError(f"corrupt supernet checkpoint: {len(arrays)} momentum buffers for "
                            f"{len(self.slots)} variables")
        for slot, array in zip(self.slots, arrays):
            slot.assign(array)


def _compile(supernet, optimizer, batch_size=None, reward_batch_size=None):
    """The traced training step and the controller's reward step (one trace each).

    A fixed batch size lets the graphs inside the switch branches know every shape: with an
    unknown batch the gradients of batch norm's means compute their scale at run time in each
    branch (measured: ~10% of a step).
    """
    import keras
    import tensorflow as tf

    def images(n):
        return tf.TensorSpec((n, *supernet.image_shape), tf.float32)

    def labels(n):
        return tf.TensorSpec((n,), tf.int32)

    arch = tf.TensorSpec((supernet.arch_length,), tf.int32)

    def accuracy(y, probs):
        return tf.reduce_mean(tf.cast(tf.equal(tf.argmax(probs, -1, output_type=tf.int32), y),
                                      tf.float32))

    @tf.function(input_signature=[images(batch_size), labels(batch_size), arch])
    def train_step(x, y, a):
        with tf.GradientTape() as tape:
            probs = supernet([x, a], training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, probs))
        grads = tape.gradient(loss, supernet.trainable_variables)
        optimizer.apply(grads, supernet.update_groups(a))
        return loss, accuracy(y, probs)

    @tf.function(input_signature=[images(reward_batch_size), labels(reward_batch_size), arch])
    def reward_step(x, y, a):
        return accuracy(y, supernet([x, a], training=True, bn_momentum=1.0))

    return train_step, reward_step


class UniformSampler:
    """SPOS: every decision uniform, a fresh generator per epoch (resumable at epoch bounds)."""

    needs_reward = False

    def __init__(self, space, seed: int):
        self.space, self.seed = space, seed

    def begin_epoch(self, epoch: int) -> None:
        self._rng = np.random.default_rng([self.seed, epoch, 1])

    def next(self):
        return np.asarray(self.space.encode(self.space.sample(self._rng)), np.int32), None

    def tell(self, token, reward: float) -> None:
        pass

    def state(self):
        return None

    def load(self, state) -> None:
        pass


class ControllerSampler(UniformSampler):
    """ENAS: paths from ``searchers.Controller`` (ask), rewarded with validation accuracy (tell)."""

    needs_reward = True

    def __init__(self, space, seed: int):
        from searchers import Controller

        super().__init__(space, seed)
        self.controller = Controller(space, seed=seed)

    def begin_epoch(self, epoch: int) -> None:
        pass  # the controller's own generator is part of its (checkpointed) state

    def next(self):
        proposal = self.controller.ask()
        return np.asarray(self.space.encode(proposal.genotype), np.int32), proposal.trial_id

    def tell(self, token, reward: float) -> None:
        self.controller.tell(token, reward)

    def state(self):
        return self.controller.state_dict()

    def load(self, state) -> None:
        if state is not None:
            self.controller.load_state_dict(state)


def _cosine(base: float, step: int, total: int) -> float:
    return 0.5 * base * (1.0 + math.cos(math.pi * step / total))


def _space(space_name: str):
    from cells.supernet import check_space

    try:
        return check_space(space_name)
    except ValueError as e:
        raise UserError(str(e)) from None


def setup_devices(config) -> None:
    """TensorFlow, float32 (the masked SGD has no loss scaling), the CPUs and GPUs given."""
    import keras

    from nasplay import devices

    if keras.backend.backend() != "tensorflow":
        raise UserError(f"one-shot training and scoring run on the TensorFlow backend, not "
                        f"{keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow")
    devices.configure(config.cpus, config.gpus, mixed_precision=False)


def _prepare(space_name, config, directory):
    """Load the data, then check ``directory``: empty, or a run of the same settings."""
    from nasplay import proxy

    space = _space(space_name)
    setup_devices(config)
    sets = proxy.subsets(proxy.ProxyConfig(
        data=config.data, cache_dir=config.cache_dir, train_size=config.train_size,
        val_size=config.val_size, subset_seed=config.subset_seed))
    meta = ckpt.new_meta(space.name, config, len(sets.classes), sets.x_train.shape[1:],
                         ckpt.fingerprint(sets))
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} is a file; the supernet needs a directory")
    directory.mkdir(parents=True, exist_ok=True)
    checkpoint = ckpt.read(directory)
    existing = checkpoint.meta if checkpoint else ckpt.read_meta(directory)
    if existing is None:
        ckpt.write_meta(directory, meta)
    else:
        keys = [k for k in meta if k not in ("epochs_done",)]
        ckpt.check_matches(existing, {k: meta[k] for k in keys}, directory,
                           "the supernet training")
        meta = existing
    return space, sets, meta, checkpoint


def train_supernet(space_name: str, config, directory, verbose: int = 1):
    """Train (or resume) a supernet of ``space_name`` in ``directory``; return the SuperNet.

    See ``nasplay.oneshot.train_supernet``. Raises ``proxy.TrainingDiverged`` on a NaN loss.
    """
    import keras

    from cells.supernet import SuperNet

    config.check()
    space, sets, meta, checkpoint = _prepare(space_name, config, directory)
    keras.utils.set_random_seed(config.seed)
    supernet = SuperNet(space, num_classes=len(sets.classes), filters=config.filters,
                        cells_per_stage=config.cells_per_stage,
                        input_shape=sets.x_train.shape[1:], affine_ops=config.affine_ops)
    optimizer = MaskedSGD(supernet.trainable_variables, config.momentum, config.weight_decay)
    sampler = (ControllerSampler if config.sampler == "controller" else UniformSampler)(
        space, config.seed)
    if checkpoint is not None:
        ckpt.restore(supernet, checkpoint, directory)
        optimizer.load_slots(checkpoint.slots)
        sampler.load(checkpoint.controller_state)
    steps = _Steps(supernet, optimizer, sampler, sets, config, verbose)
    for epoch in range(meta["epochs_done"], config.epochs):
        start = time.perf_counter()
        loss, accuracy = steps.epoch(epoch)
        meta = {**meta, "epochs_done": epoch + 1,
                "train_seconds": meta.get("train_seconds", 0.0) + time.perf_counter() - start,
                "history": [*meta.get("history", []),
                            {"epoch": epoch + 1, "loss": loss, "accuracy": accuracy}]}
        ckpt.save(directory, supernet, [s.numpy() for s in optimizer.slots], meta,
                  sampler.state())
    return supernet


class _Steps:
    """One epoch of training steps over the seeded batch plan, with a progress bar."""

    def __init__(self, supernet, optimizer, sampler, sets, config, verbose):
        from nasplay.pipeline import BatchPlan

        self.supernet, self.optimizer, self.sampler = supernet, optimizer, sampler
        self.sets, self.config, self.verbose = sets, config, verbose
        self.plan = BatchPlan(len(sets.x_train), config.batch_size, seed=config.seed)
        self.reward_batch = min(config.batch_size, len(sets.x_val))
        self.train_step, self.reward_step = _compile(supernet, optimizer, config.batch_size,
                                                     self.reward_batch)

    def epoch(self, epoch: int) -> tuple[float, float]:
        """Train one epoch; return its mean loss and training accuracy."""
        import keras

        from nasplay.pipeline import normalize
        from nasplay.proxy import TrainingDiverged

        config, sets = self.config, self.sets
        order, _ = self.plan.epoch(epoch)
        steps = len(order)
        val_order = np.random.default_rng([config.seed, epoch, 2]).permutation(len(sets.x_val))
        self.sampler.begin_epoch(epoch)
        if self.verbose:
            print(f"supernet epoch {epoch + 1}/{config.epochs}", flush=True)
        bar = keras.utils.Progbar(steps, verbose=self.verbose)
        losses, accuracies = [], []
        for step, idx in enumerate(order):
            self.optimizer.learning_rate.assign(
                _cosine(config.learning_rate, epoch * steps + step, config.epochs * steps))
            arch, token = self.sampler.next()
            loss, accuracy = self.train_step(normalize(sets.x_train[idx]),
                                             sets.y_train[idx].astype(np.int32), arch)
            loss, accuracy = float(loss), float(accuracy)
            if not math.isfinite(loss):
                raise TrainingDiverged(f"supernet training diverged: the loss became {loss} in "
                                       f"epoch {epoch + 1}; lower the learning rate")
            if self.sampler.needs_reward:
                self.sampler.tell(token, self._reward(val_order, step, arch))
            losses.append(loss)
            accuracies.append(accuracy)
            bar.update(step + 1, [("loss", loss), ("accuracy", accuracy)])
        return float(np.mean(losses)), float(np.mean(accuracies))

    def _reward(self, val_order, step, arch) -> float:
        from nasplay.pipeline import normalize

        b = self.reward_batch
        start = (step * b) % len(val_order)
        idx = np.take(val_order, np.arange(start, start + b), mode="wrap")
        return float(self.reward_step(normalize(self.sets.x_val[idx]),
                                      self.sets.y_val[idx].astype(np.int32), arch))

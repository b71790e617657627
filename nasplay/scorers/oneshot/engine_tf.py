"""The TensorFlow engine of one-shot search: the masked SGD, the traced steps, the weight snapshot.

TensorFlow gives the variables of the unchosen branches zero gradients, not None, and SGD's
momentum and weight decay would still move them (PyTorch's SPOS code skips None gradients);
:class:`MaskedSGD` skips every variable the path does not use (``SuperNet.update_groups``), and
the rows of the preprocessing kernels that read a previous cell's non-loose blocks, so an op's
weights change only on the steps that train it. Each step is a ``tf.function`` with the
architecture as an input: one trace serves every path, with the batch norms of the network it
trains run as TensorFlow's fused kernel (:func:`fuse_batch_norms`), which keeps that graph a
sixth smaller. Two more undo what TensorFlow does to a graph of switches and not to a standalone
network's: the max pools' gradients run oneDNN's kernel again (:func:`recompute_max_pool_grads`)
and the training step skips Grappler's memory scheduling (:class:`WithoutMemoryScheduling`)
(BENCHMARKS.md, "A supernet step"). ``nasplay.scorers.oneshot.engine_torch`` is the same
interface on PyTorch; ``nasplay.scorers.oneshot.train.engine`` picks one for the active Keras
backend.
"""

from __future__ import annotations

from nasplay.errors import UserError
from nasplay.runtime._internals.fused_batch_norm import fuse_batch_norms
from nasplay.runtime._internals.graph_options import WithoutMemoryScheduling
from nasplay.runtime._internals.max_pool_grad import recompute_max_pool_grads
from nasplay.runtime._internals.tf_internals import nesterov_update

# What a user waits through before the first step's progress (the trace of every branch of every
# cell, forward and backward): BENCHMARKS.md, "A supernet step", measured 2.0-2.3 minutes here
# (2.2-2.7 with fused batch norms alone, 2.7-3.9 before them).
FIRST_STEP_NOTE = ("tracing the training step: one graph of every branch, once per process "
                   "(minutes on a CPU; --backend torch has no trace)")


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
            nesterov_update(variable, slot, lr, grad, mu)
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

    def slot_arrays(self) -> list:
        """The momentum buffers as numpy arrays (a checkpoint's ``m*`` entries)."""
        return [slot.numpy() for slot in self.slots]


def compile_steps(supernet, optimizer, batch_size=None, reward_batch_size=None):
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
    fuse_batch_norms(supernet)
    recompute_max_pool_grads(supernet)

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

    return WithoutMemoryScheduling(train_step), reward_step


def compile_scoring(supernet):
    """``recalibrate(x, arch, momentum)`` and ``predict(x, arch) -> probabilities``, traced once
    each with the architecture as an input (any batch size)."""
    import tensorflow as tf

    images = tf.TensorSpec((None, *supernet.image_shape), tf.float32)
    arch = tf.TensorSpec((supernet.arch_length,), tf.int32)
    # the recalibration runs the training step's arithmetic; the prediction, the fused kernel's
    # inference (Keras's is a multiply and an add over every activation)
    fuse_batch_norms(supernet, inference=True)

    @tf.function(input_signature=[images, arch, tf.TensorSpec((), tf.float32)])
    def recalibrate(x, a, momentum):
        supernet([x, a], training=True, bn_momentum=momentum)
        return tf.constant(0)

    @tf.function(input_signature=[images, arch])
    def predict(x, a):
        return supernet([x, a], training=False)

    return recalibrate, predict


class Snapshot:
    """A copy of ``optimizer``'s variables taken now; :meth:`restore` puts them back and empties
    the momentum buffers (one traced call: fine-tuning a candidate's path, then undoing it)."""

    def __init__(self, optimizer):
        import tensorflow as tf

        variables, slots = optimizer.variables, optimizer.slots
        saved = [tf.Variable(v.numpy(), trainable=False) for v in variables]

        @tf.function(input_signature=[])
        def restore():
            for variable, value in zip(variables, saved):
                variable.assign(value)
            for slot in slots:
                slot.assign(tf.zeros_like(slot))
            return tf.constant(0)

        self._restore = restore

    def restore(self) -> None:
        self._restore()

"""Keras's SGD with one fused TensorFlow op per variable update: the proxy's optimizer on the
TensorFlow backend, for the Keras versions in :data:`nasplay.runtime._internals.TESTED_KERAS`.

Why: Keras routes every variable's update through ``tf.distribute``'s ``update``/``merge_call``
and several small ops; tracing that in Python for the ~200-500 variables of a cell network was
about half of the first step's cost (benchmarks/proxy_benchmark.py, BENCHMARKS.md). The same
arithmetic as Keras's SGD: ``ResourceApplyKerasMomentum`` computes ``m = momentum * m - lr * g``
and ``v += m`` (Nesterov: ``v += momentum * m - lr * g``); the decoupled weight decay
``v -= v * wd * lr`` is kept as Keras has it, with the learning rate evaluated once per step.

Private parts used (hence this module): ``Optimizer._backend_update_step``,
``_apply_weight_decay``, ``_use_weight_decay``, ``_get_variable_index``, ``Variable.value.handle``
and ``tf.raw_ops``. Under a real distribution strategy the stock path runs.
"""

from __future__ import annotations

_FUSED_SGD = None


def sgd_class(backend: str):
    """The SGD class to train with: the fused one on TensorFlow with a tested Keras, else
    ``keras.optimizers.SGD``."""
    import keras

    from nasplay.runtime._internals import tested_keras

    if backend != "tensorflow" or not tested_keras():
        return keras.optimizers.SGD
    return fused_sgd_class()


def fused_sgd_class():
    """The fused SGD class (made once: Keras registers nothing, but one class keeps isinstance
    checks simple)."""
    global _FUSED_SGD
    if _FUSED_SGD is None:
        _FUSED_SGD = _make_fused_sgd()
    return _FUSED_SGD


def _make_fused_sgd():
    import keras
    import tensorflow as tf

    class FusedSGD(keras.optimizers.SGD):
        def _backend_update_step(self, grads, trainable_variables, learning_rate):
            if tf.distribute.has_strategy():
                return super()._backend_update_step(grads, trainable_variables, learning_rate)
            for grad, variable in zip(grads, trainable_variables):
                if grad is not None:
                    self._apply_one(grad, variable, learning_rate)

        def _apply_one(self, grad, variable, learning_rate):
            lr = tf.cast(learning_rate, variable.dtype)
            handle = variable.value.handle
            if self.momentum:
                momentum = self.momentums[self._get_variable_index(variable)]
                tf.raw_ops.ResourceApplyKerasMomentum(
                    var=handle, accum=momentum.value.handle, lr=lr,
                    grad=tf.cast(grad, variable.dtype),
                    momentum=tf.cast(self.momentum, variable.dtype),
                    use_nesterov=self.nesterov)
            else:
                tf.raw_ops.ResourceApplyGradientDescent(
                    var=handle, alpha=lr, delta=tf.cast(grad, variable.dtype))

        def _apply_weight_decay(self, variables):
            if self.weight_decay is None or tf.distribute.has_strategy():
                return super()._apply_weight_decay(variables)
            # Keras evaluates the learning rate (a schedule: ~20 ops) once per variable; once
            # is enough and was a quarter of the traced step here
            factor = self.learning_rate * self.weight_decay
            for variable in variables:
                if self._use_weight_decay(variable):
                    variable.value.assign_sub(variable.value * tf.cast(factor, variable.dtype))

    return FusedSGD

"""The one-shot engine's Nesterov update (``nasplay.scorers.oneshot.engine_tf.MaskedSGD``) as one
TensorFlow op.

Why: the masked SGD updates every variable a path uses inside the traced step;
``ResourceApplyKerasMomentum`` does a variable's momentum and weight update in one kernel, where
public ops take several (multiplies, subtracts, two assigns) in the graph of every step.

Private parts used (hence this module): ``tf.raw_ops.ResourceApplyKerasMomentum`` on a Keras
variable's ``value.handle`` (the ``tf.Variable`` underneath), checked against TensorFlow 2.21.
``tf.raw_ops`` is TensorFlow's registry of its kernels, which keeps its ops within a major
version (GraphDef compatibility); the check here is that the op and the handle are there. Where
they are not: the same arithmetic in public ops (a few more ops per variable in the traced step).
"""

from __future__ import annotations


def nesterov_update(variable, slot, lr, grad, momentum) -> None:
    """Keras's SGD step with Nesterov momentum on ``variable`` (a Keras variable) and its
    momentum buffer ``slot`` (a ``tf.Variable``): ``slot = momentum * slot - lr * grad``, then
    ``variable += momentum * slot - lr * grad``."""
    value = variable.value
    if _fused_available(value):
        import tensorflow as tf

        tf.raw_ops.ResourceApplyKerasMomentum(var=value.handle, accum=slot.handle, lr=lr,
                                              grad=grad, momentum=momentum, use_nesterov=True)
        return
    public_nesterov_update(variable, slot, lr, grad, momentum)


def public_nesterov_update(variable, slot, lr, grad, momentum) -> None:
    """:func:`nesterov_update` in public ops (the fallback)."""
    slot.assign(slot * momentum - lr * grad)
    variable.assign_add(slot * momentum - lr * grad)


def _fused_available(value) -> bool:
    import tensorflow as tf

    return hasattr(tf.raw_ops, "ResourceApplyKerasMomentum") and hasattr(value, "handle")

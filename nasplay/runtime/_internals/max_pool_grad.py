"""Max pools whose gradient runs oneDNN's kernel inside the supernet's switch branches (the
one-shot engine, ``nasplay.scorers.oneshot.engine_tf``, on TensorFlow's CPU build).

Why: TensorFlow hands a ``MaxPoolGrad`` to oneDNN only when its ``orig_output`` input comes
straight from the pool (oneDNN's pool leaves a workspace the gradient reads). In a branch of the
supernet's traced step that output reaches the gradient through the conditional's optional
wrappers, so TensorFlow's own kernel runs instead: profiled, 5.7 ms against 0.45 ms for a
reduction cell's pool, ~21 ms of a ~307 ms step (BENCHMARKS.md, "A supernet step"). Here the
gradient computes the pool again beside ``MaxPoolGrad`` (one more forward pool, ~0.4 ms), so the
rewrite applies. The arithmetic is the same: the gradient goes to each window's maximum.

Private parts used (hence this module): ``Layer._flatten_layers`` (:mod:`.sublayers`), an
instance's ``call`` replaced, ``tf.raw_ops.MaxPoolGrad``.
"""

from __future__ import annotations


def recompute_max_pool_grads(model) -> int:
    """Give ``model``'s 2-D max pools (channels last) the gradient above; returns how many it
    changed (ones already changed are left alone). With a Keras not in
    :data:`nasplay.runtime._internals.TESTED_KERAS`: none (Keras's pools, a slower step)."""
    import keras

    from nasplay.runtime._internals import tested_keras
    from nasplay.runtime._internals.sublayers import flatten_layers

    if not tested_keras():
        return 0
    changed = 0
    for layer in flatten_layers(model):
        if not isinstance(layer, keras.layers.MaxPooling2D) \
                or getattr(layer, "_nasplay_pool_grad", False) \
                or layer.data_format != "channels_last":
            continue
        layer.call = _call.__get__(layer)
        layer._nasplay_pool_grad = True
        changed += 1
    return changed


def _call(pool, inputs):
    import tensorflow as tf

    ksize = [1, *pool.pool_size, 1]
    strides = [1, *pool.strides, 1]
    padding = pool.padding.upper()

    @tf.custom_gradient
    def max_pool(x):
        def grad(dy):
            again = tf.nn.max_pool2d(x, ksize, strides, padding)
            return tf.raw_ops.MaxPoolGrad(orig_input=x, orig_output=again, grad=dy, ksize=ksize,
                                          strides=strides, padding=padding)

        return tf.nn.max_pool2d(x, ksize, strides, padding), grad

    # the input made in this graph: in a switch inside a switch, TensorFlow cannot resolve a
    # custom gradient's capture of the outer branch's tensor (cond_v2's _resolve_grad_inputs)
    return max_pool(tf.identity(inputs))

"""TensorFlow's fused batch norm behind Keras's ``BatchNormalization``, in training mode: the
proxy's networks (``ProxyConfig.fused_norms``) and the one-shot engine's supernet
(``nasplay.scorers.oneshot.engine_tf``) on the TensorFlow backend, for the Keras versions in
:data:`nasplay.runtime._internals.TESTED_KERAS`. A proxy network's epoch takes ~0.8x as long
(BENCHMARKS.md, "Proxy evaluation").

Why: Keras 3's batch norm is a dozen separate ops forward and more backward, and in the
supernet's one traced graph every branch carries all of them (~1,100 norms), which TensorFlow's
executor visits on every step (the untaken branches with dead tensors). One ``FusedBatchNormV3``
op and its gradient stand for each: measured, the graph 139,278 -> 116,285 nodes, a supernet
step 0.86-0.88x and its first trace 0.75-0.78x (BENCHMARKS.md, "A supernet step"). The arithmetic
is Keras's: the batch's mean and biased variance normalize it, the moving statistics follow
``layer.momentum`` (the fused op reports the unbiased variance: rescaled); a mask or a
non-image input take Keras's own call, and renormalized and synchronized norms are left to
Keras. TensorFlow-only, so the model code stays on ``keras.ops``.

Inference (the moving statistics normalize) takes Keras's call too, unless asked for
(``inference=True``, the one-shot scorer's prediction): Keras's is a multiply and an add over
every activation, the fused kernel's is one op that Grappler folds into the convolution before
it, measured a one-shot score 0.87x (BENCHMARKS.md, "One-shot search"). The proxy keeps Keras's,
so scores saved before reproduce exactly.

Private parts used (hence this module): ``Layer._flatten_layers`` (:mod:`.sublayers`), an
instance's ``call`` replaced, ``tf.compat.v1.nn.fused_batch_norm``.
"""

from __future__ import annotations


def fuse_batch_norms(model, inference: bool = False) -> int:
    """Make ``model``'s batch norms run TensorFlow's fused kernel in training mode, and with
    ``inference`` in inference mode too; returns how many it changed (ones already changed so
    are left alone).

    With a Keras not in :data:`nasplay.runtime._internals.TESTED_KERAS`, none (Keras's own norms,
    the same arithmetic, slower).
    """
    import keras

    from nasplay.runtime._internals import tested_keras
    from nasplay.runtime._internals.sublayers import flatten_layers

    if not tested_keras():
        return 0
    norms = [layer for layer in flatten_layers(model)
             if isinstance(layer, keras.layers.BatchNormalization)]
    changed = 0
    for norm in norms:
        if norm.axis not in (-1, 3) or norm.renorm or getattr(norm, "synchronized", False) \
                or norm.epsilon < 1.001e-5:  # the fused kernel's smallest epsilon
            continue
        training_now = not getattr(norm, "_nasplay_fused", False)
        inference_now = inference and not getattr(norm, "_nasplay_fused_inference", False)
        if training_now:
            norm.call = _fused_call.__get__(norm)
            norm._nasplay_fused = True
        if inference_now:
            norm._nasplay_fused_inference = True
        changed += training_now or inference_now
    return changed


def _fused_call(norm, inputs, training=None, mask=None):
    import keras
    import tensorflow as tf

    batch_statistics = training is True and norm.trainable
    fused = batch_statistics or getattr(norm, "_nasplay_fused_inference", False)
    if not fused or mask is not None or len(inputs.shape) != 4:
        return keras.layers.BatchNormalization.call(norm, inputs, training=training, mask=mask)
    x = tf.cast(inputs, tf.float32)
    channels = x.shape[-1]
    scale = tf.cast(norm.gamma, tf.float32) if norm.scale else tf.ones((channels,))
    offset = tf.cast(norm.beta, tf.float32) if norm.center else tf.zeros((channels,))
    if not batch_statistics:  # the moving statistics normalize, as Keras's inference does
        y, _, _ = tf.compat.v1.nn.fused_batch_norm(
            x, scale, offset, mean=tf.cast(norm.moving_mean, tf.float32),
            variance=tf.cast(norm.moving_variance, tf.float32), epsilon=norm.epsilon,
            is_training=False)
        return tf.cast(y, inputs.dtype)
    y, mean, unbiased = tf.compat.v1.nn.fused_batch_norm(x, scale, offset, epsilon=norm.epsilon,
                                                         is_training=True)
    count = tf.cast(tf.size(x) // channels, tf.float32)
    variance = unbiased * ((count - 1.0) / count)
    momentum = tf.cast(norm.momentum, tf.float32)
    norm.moving_mean.assign(norm.moving_mean * momentum + mean * (1.0 - momentum))
    norm.moving_variance.assign(norm.moving_variance * momentum + variance * (1.0 - momentum))
    return tf.cast(y, inputs.dtype)

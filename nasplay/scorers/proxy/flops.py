"""Multiply-adds per image of a Keras model, counted layer by layer.

Convention (the one NASNet, AmoebaNet and DARTS report as "multiply-adds" or "FLOPs"): one
multiply-accumulate of a convolution or dense layer counts 1. Only those layers are counted:

- ``Conv1D/2D/3D``: output positions x output channels x kernel taps x (input channels / groups);
  dilation changes which pixels are read, not how many, and strides show in the output size;
- ``Conv*DTranspose``: input positions x input channels x kernel taps x (output channels / groups);
- ``DepthwiseConv1D/2D``: output positions x (input channels x depth multiplier) x kernel taps;
- ``SeparableConv1D/2D``: its depthwise part plus its 1x1 pointwise part;
- ``Dense`` (and ``EinsumDense`` is not handled): positions x input features x units.

Batch norm, biases, activations, pools, additions and concatenations are ignored: they are a few
per cent of a cell network's work, batch norm folds into the preceding convolution at inference,
and leaving them out keeps figures comparable with the papers'.

Cells are composite layers whose ``call`` wires sublayers in Python, so there is no functional
graph to read shapes from. Instead :func:`count_flops` runs the model once, eagerly, on one
all-zero image, with every countable layer's ``call`` wrapped to record its input and output
shape; a layer called twice is counted twice. The wrappers are removed afterwards, so the model
is left as it was (its weights are not changed: inference mode). Listing sublayers and wrapping
their calls uses private Keras parts, kept in :mod:`nasplay.runtime._internals.layer_calls`: on a
Keras version the tests do not cover, nothing is counted and the functions return ``None``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from contextlib import contextmanager

import numpy as np

from nasplay.runtime._internals import layer_calls


def count_flops(model, input_shape=None) -> int | None:
    """Multiply-adds of one forward pass of one image (see the module docstring for what counts).

    ``input_shape`` is one image's shape (without the batch axis); by default the model's input.
    ``None`` on a Keras version the counter is not tested with.
    """
    counted = flops_by_layer(model, input_shape)
    return None if counted is None else sum(counted.values())


def flops_by_layer(model, input_shape=None) -> "OrderedDict[str, int] | None":
    """Multiply-adds per image of each counted layer (by its path in the model), in call order.

    A layer called more than once (shared weights) appears once, with the sum of its calls.
    ``None`` on a Keras version the counter is not tested with.
    """
    shapes = _input_shapes(model, input_shape)
    if not layer_calls.available():
        return None
    inputs = [np.zeros((1, *s), dtype="float32") for s in shapes]
    with recording(model) as counted:
        model(inputs if len(inputs) > 1 else inputs[0], training=False)
    return counted


@contextmanager
def recording(model):
    """Count multiply-adds per image of whatever calls of ``model`` happen inside the block.

    Yields the dict that :func:`flops_by_layer` returns, filled as the model runs eagerly; lets
    a caller that runs the model anyway (nasplay.scorers.proxy.training builds Keras's metrics with
    one eager call) count for free. Any batch size works: counts are per image. Yields ``None`` (and
    counts nothing) on a Keras version the counter is not tested with.
    """
    if not layer_calls.available():
        yield None
        return
    counted: OrderedDict[str, int] = OrderedDict()

    def record(path, layer, args, out):
        macs = _layer_macs(layer, tuple(args[0].shape), tuple(out.shape))
        counted[path] = counted.get(path, 0) + macs  # a layer called twice counts twice

    countable = [(path, layer) for path, layer in layer_calls.walk(model, model.name)
                 if _counter_for(layer) is not None]
    with layer_calls.hooked_calls(countable, record):
        yield counted


def _input_shapes(model, input_shape) -> list[tuple[int, ...]]:
    if input_shape is not None:
        shapes = [tuple(input_shape)] if not isinstance(input_shape[0], (list, tuple)) \
            else [tuple(s) for s in input_shape]
    else:
        try:
            shapes = [tuple(t.shape[1:]) for t in model.inputs]
        except (AttributeError, ValueError) as exc:
            raise ValueError("model has no defined inputs; pass input_shape= (one image's shape, "
                             "without the batch axis)") from exc
    for s in shapes:
        if any(d is None for d in s):
            raise ValueError(f"input shape {s} has an unknown dimension; pass input_shape=")
    return shapes


def _counter_for(layer):
    from keras import layers

    # Order matters: SeparableConv and DepthwiseConv are not Conv subclasses in Keras 3, but be
    # explicit anyway; Conv*DTranspose are BaseConvTranspose.
    checks = [
        (getattr(layers, "SeparableConv2D"), _separable_macs),
        (getattr(layers, "SeparableConv1D"), _separable_macs),
        (getattr(layers, "DepthwiseConv2D"), _depthwise_macs),
        (getattr(layers, "DepthwiseConv1D"), _depthwise_macs),
        (getattr(layers, "Conv2DTranspose"), _transpose_macs),
        (getattr(layers, "Conv1DTranspose"), _transpose_macs),
        (getattr(layers, "Conv3DTranspose"), _transpose_macs),
        (layers.Conv1D, _conv_macs),
        (layers.Conv2D, _conv_macs),
        (layers.Conv3D, _conv_macs),
        (layers.Dense, _dense_macs),
    ]
    for cls, fn in checks:
        if isinstance(layer, cls):
            return fn
    return None


def _layer_macs(layer, in_shape, out_shape) -> int:
    """Multiply-adds per image (shapes carry a batch axis of 1; dividing keeps it exact)."""
    fn = _counter_for(layer)
    batch = in_shape[0] or 1
    return int(fn(layer, in_shape, out_shape)) // int(batch)


def _channels_last(layer) -> bool:
    return getattr(layer, "data_format", "channels_last") == "channels_last"


def _split(shape, layer):
    """(batch, spatial dims, channels) of a conv layer's input or output shape."""
    if _channels_last(layer):
        return shape[0], shape[1:-1], shape[-1]
    return shape[0], shape[2:], shape[1]


def _conv_macs(layer, in_shape, out_shape):
    _, _, cin = _split(in_shape, layer)
    batch, spatial, cout = _split(out_shape, layer)
    groups = getattr(layer, "groups", 1) or 1
    taps = math.prod(layer.kernel_size)
    return batch * math.prod(spatial) * cout * taps * (cin // groups)


def _transpose_macs(layer, in_shape, out_shape):
    batch, spatial, cin = _split(in_shape, layer)
    _, _, cout = _split(out_shape, layer)
    groups = getattr(layer, "groups", 1) or 1
    return batch * math.prod(spatial) * cin * math.prod(layer.kernel_size) * (cout // groups)


def _depthwise_macs(layer, in_shape, out_shape):
    _, _, cin = _split(in_shape, layer)
    batch, spatial, _ = _split(out_shape, layer)
    return batch * math.prod(spatial) * cin * layer.depth_multiplier * math.prod(layer.kernel_size)


def _separable_macs(layer, in_shape, out_shape):
    _, _, cin = _split(in_shape, layer)
    batch, spatial, cout = _split(out_shape, layer)
    mid = cin * layer.depth_multiplier
    # the depthwise part already strides, so both parts run at the output resolution
    return batch * math.prod(spatial) * (mid * math.prod(layer.kernel_size) + mid * cout)


def _dense_macs(layer, in_shape, out_shape):
    return math.prod(in_shape) * out_shape[-1]

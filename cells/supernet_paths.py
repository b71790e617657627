"""A supernet path as a standalone network: which supernet layer each of its layers inherits.

Weight inheritance is what makes a one-shot score mean something: the accuracy a supernet gives a
genotype must be the accuracy of ``build_network(genotype)`` carrying those weights, or a search
would rank something no user can build. This module pairs the layers of the two networks (the
same construction on both sides, so the same weights in the same order) and copies them; the
only difference is the preprocessing kernels and the classifier, which in the supernet read all
``num_blocks * filters`` channels of the previous cell and in the standalone network only its
loose ends: their input rows are sliced. The supernet's affine-free head norm, which the
standalone network lacks, is folded into the classifier with its moving statistics, and the
candidate ops' affine-free batch norms become standalone ones with scale 1 and shift 0.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from nasplay.runtime._internals.sublayers import flatten_layers


def _loose_channels(concat, filters: int) -> np.ndarray:
    """Indices, among a supernet cell's ``num_blocks * filters`` output channels, of the loose
    ends ``concat`` (hidden states ``2..``), in the standalone cell's order."""
    return np.concatenate([np.arange((j - 2) * filters, (j - 1) * filters) for j in concat])


def _pairs(supernet, genotype):
    """``[(supernet layer, input channels or None, standalone locator)]`` for the path.

    A locator is ``(layer name,)`` for a top-level layer or ``(cell name, attribute, i, k)``
    inside a cell. ``None`` channels: the layer reads its input whole (the stem's output, or
    an op reading a hidden state).
    """
    space = supernet.space
    space.validate(genotype)
    pairs = [(supernet.stem_conv, None, ("stem_conv",)), (supernet.stem_bn, None, ("stem_bn",))]
    producers = [None, None]  # channels of h_prev_prev, h_prev (None: the stem)
    for cell in supernet.super_cells:
        spec = genotype.reduction if cell.reduction else genotype.normal
        read = {index for block in spec.blocks for index in block.inputs}
        for which, layer in ((0, cell.preprocess0), (1, cell.preprocess1)):
            if which in read:  # an unread input gets no projection, as in cells.Cell
                pairs.append((layer, producers[which], (cell.name, f"preprocess{which}")))
        for i, block in enumerate(spec.blocks):
            for k, (index, name) in enumerate(zip(block.inputs, block.ops)):
                j = space.ops.index(name)
                source = cell.op_layer(i, k, index, j)
                pairs.append((source, None, (cell.name, "branch_ops", i, k)))
        producers = [producers[1], _loose_channels(spec.concat, cell.filters)]
    pairs.append((supernet.classifier, producers[1], ("predictions_logits",)))
    return pairs


def _input_axis(shape) -> int | None:
    """The input-channel axis of a kernel: 2 for a convolution, 0 for a dense layer."""
    return {4: 2, 2: 0}.get(len(shape))


def _sliced(array: np.ndarray, channels, target_shape) -> np.ndarray:
    if tuple(array.shape) == tuple(target_shape):
        return array
    axis = _input_axis(array.shape)
    if channels is None or axis is None:
        raise ValueError(f"supernet weight of shape {array.shape} cannot become {target_shape}")
    return np.take(array, channels, axis=axis)


def _locate(model, locator):
    layer = model.get_layer(locator[0])
    if len(locator) == 1:
        return layer
    if locator[1] == "branch_ops":
        return layer.branch_ops[locator[2]][locator[3]]
    return getattr(layer, locator[1])


def extract(supernet, genotype):
    """The standalone ``build_network(genotype)`` with the weights of its path (see module)."""
    from cells.network import build_network

    model = build_network(genotype, num_classes=supernet.num_classes, filters=supernet.filters,
                          cells_per_stage=supernet.cells_per_stage,
                          stem_multiplier=supernet.stem_multiplier,
                          input_shape=supernet.image_shape,
                          drop_path_rate=supernet.drop_path_rate)
    copied = 0
    for source, channels, locator in _pairs(supernet, genotype):
        target = _locate(model, locator)
        weights = _folded_classifier(supernet, genotype) if source is supernet.classifier \
            else _standalone_weights(source)
        targets = target.get_weights()
        if len(weights) != len(targets):
            raise RuntimeError(f"{locator}: the supernet layer has {len(weights)} weights, the "
                               f"standalone one {len(targets)}")
        target.set_weights([_sliced(w, channels, t.shape) for w, t in zip(weights, targets)])
        copied += len(targets)
    if copied != len(model.weights):
        raise RuntimeError(f"extract: copied {copied} of the standalone network's "
                           f"{len(model.weights)} weights")
    return model


def _batch_norms(layer) -> list:
    """The batch norms inside ``layer`` (itself included)."""
    from keras import layers

    return [inner for inner in flatten_layers(layer)
            if isinstance(inner, layers.BatchNormalization)]


def _standalone_weights(layer) -> list:
    """``layer.get_weights()`` as the standalone layer (affine batch norms) holds them: each
    affine-free norm's moving statistics preceded by scale 1 and shift 0, in Keras's order."""
    missing = {id(bn.moving_mean): bn for bn in _batch_norms(layer) if not bn.scale}
    weights = []
    for variable in layer.weights:
        bn = missing.get(id(variable))
        if bn is not None:
            weights += [np.ones(variable.shape, "float32"), np.zeros(variable.shape, "float32")]
        weights.append(np.asarray(variable))
    return weights


def _folded_classifier(supernet, genotype):
    """The classifier's ``[kernel, bias]`` with the head norm folded in: ``W (x - m) / s + b``
    is ``(W / s) x + (b - W m / s)``. Every channel's mean enters the bias (a channel the path
    zeroes still reads ``-m / s`` through the norm); the kernel rows are sliced afterwards. The
    path's head scale (``SuperNet.loose_mean``) multiplies the kernel first."""
    kernel, bias = supernet.classifier.get_weights()
    kernel = kernel * float(ops.convert_to_numpy(supernet.head_scale(supernet.encode(genotype))))
    norm = supernet.head_bn
    mean, variance = (np.asarray(w) for w in (norm.moving_mean, norm.moving_variance))
    inverse = 1.0 / np.sqrt(variance + norm.epsilon)
    return [kernel * inverse[:, None], bias - (mean * inverse) @ kernel]


def path_params(supernet, genotype) -> int:
    """Parameters (all weights, as ``count_params``) of ``genotype``'s standalone network."""
    total = 0
    for source, channels, _ in _pairs(supernet, genotype):
        total += sum(2 * int(bn.moving_mean.shape[0]) for bn in _batch_norms(source)
                     if not bn.scale)  # the standalone norm's scale and shift
        for weight in source.weights:
            shape = list(weight.shape)
            axis = _input_axis(shape)
            if channels is not None and axis is not None:
                shape[axis] = len(channels)
            total += int(np.prod(shape))
    return total

"""NAS-Bench-201's cell and network (Dong & Yang, ICLR 2020) as Keras layers, for ``nb201``.

A genotype of the ``nb201`` space (``search_space.EdgeGenotype``) puts one op on every edge of a
4-node DAG: node 0 is the cell's input, node ``j`` sums ``op_{i->j}(node i)`` over ``i < j``, the
last node is the output (``EdgeCell``). NAS-Bench-201's network stacks N such cells per stage
between two residual reduction blocks (``ResidualReduction``; ``build_nb201_network``), so a
network's parameter count is NAS-Bench-201's: 1,531,546 trainable for six ``nor_conv_3x3`` at
N = 5, C = 16, and 73,306 for six ``none`` (tests/test_nb201_cells.py).

The ops are registered in ``cells.OPS`` under NAS-Bench-201's names. Three are the ops the
two-cell spaces already have, so they are aliases of the same factories, not copies:
``skip_connect`` is ``identity``, ``nor_conv_1x1``/``nor_conv_3x3`` are ``conv_1x1``/``conv_3x3``
(ReLU -> conv without bias -> batch norm, NAS-Bench-201's ``ReLUConvBN``), and ``avg_pool_3x3``
already averages only the pixels inside the image (PyTorch's ``count_include_pad=False``, which
NAS-Bench-201 uses) and adds no projection when the widths match, as in every NAS-Bench-201
cell. ``none`` is new: ``Zero``.

One difference from NAS-Bench-201's PyTorch code, on purpose: a stride-2 3x3 convolution pads
the way Keras's 'same' does (on an even size the extra row and column go after the image,
PyTorch's ``padding=1`` puts one on each side), as every strided op of this package does. Shapes,
parameter and multiply-add counts are the same; only which pixels a strided window is centred
on differs.

``cells.build_network`` dispatches here for an edge genotype (or its dict); this module imports
nothing from ``cells.network``, so the dispatch runs one way.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from cells.cell import check_rate
from cells.ops import (OPS, CompositeLayer, ReLUConvBN, _average_within, _same_pads, batch_norm,
                       check_filters, check_int, check_strides, make_op, register_op,
                       softmax_classifier, strided_shape)
from search_space.edge_genotype import EdgeGenotype

_PACKAGE = "nasplay"

NB201_CELLS_PER_STAGE = 5
"""NAS-Bench-201's N: ``build_network``'s default for an edge genotype (C = 16 is everyone's)."""


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Zero(layers.Layer):
    """NAS-Bench-201's ``none``: zeros, ``(N, H / strides, W / strides, filters)`` as every op.

    The zeros are the input times zero (as NAS-Bench-201's ``x.mul(0.)``), not a fresh tensor:
    the weights before a cell whose every edge is ``none`` then get a (zero) gradient rather
    than none at all, which optimizers warn about and gradient-based scorers would trip on.
    """

    def __init__(self, filters: int, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        self.strides = check_strides(strides)

    def call(self, x):
        s = self.strides
        # one input channel broadcast against `filters` zeros: any input width gives `filters`
        return x[:, ::s, ::s, :1] * ops.zeros((self.filters,), dtype=x.dtype)

    def compute_output_shape(self, input_shape):
        return strided_shape(input_shape, self.strides, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


register_op("none", lambda f, s: Zero(f, s))
register_op("skip_connect", OPS["identity"])
register_op("nor_conv_1x1", OPS["conv_1x1"])
register_op("nor_conv_3x3", OPS["conv_3x3"])
# avg_pool_3x3 is registered under that name already (cells.ops.PoolOp)


def as_edge_genotype(genotype, name: str = "genotype") -> EdgeGenotype:
    """An ``EdgeGenotype`` from itself or its dict (``EdgeGenotype.to_dict()``)."""
    if isinstance(genotype, EdgeGenotype):
        return genotype
    if isinstance(genotype, dict):
        return EdgeGenotype.from_dict(genotype)
    raise ValueError(f"{name} must be a search_space.EdgeGenotype or its dict, got "
                     f"{type(genotype).__name__}")


@keras.saving.register_keras_serializable(package=_PACKAGE)
class EdgeCell(CompositeLayer):
    """One cell of ops on DAG edges: ``EdgeCell(genotype, filters)(x)``.

    Node 0 is ``x``; node ``j`` is the sum of ``op_{i->j}(node i)`` over ``i < j``, every op at
    stride 1 with ``filters`` channels (ops adapt to the input's width, so the first cell of a
    stage may read a wider or narrower tensor); the output is the last node, ``filters`` wide, at
    ``x``'s resolution (NAS-Bench-201 reduces between cells, never inside one).

    Args:
        genotype: a ``search_space.EdgeGenotype`` or its dict; the config stores the dict, so a
            model holding cells serializes to plain JSON. Its ops are looked up in ``cells.OPS``
            (any registered op, not only the ``nb201`` space's).
        filters: the width of every node after the input.
    """

    def __init__(self, genotype, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.genotype = as_edge_genotype(genotype)
        self.filters = check_filters(filters)
        # edge_ops[j - 1][i]: the op of edge i -> j, as EdgeGenotype.nodes
        self.edge_ops = [[make_op(op, self.filters, 1) for op in incoming]
                         for incoming in self.genotype.nodes]

    def call(self, x, training=None):
        nodes = [x]
        for incoming in self.edge_ops:
            total = None
            for source, op in zip(nodes, incoming):
                y = op(source, training=training)
                total = y if total is None else total + y
            nodes.append(total)
        return nodes[-1]

    def compute_output_shape(self, input_shape):
        return strided_shape(input_shape, 1, self.filters)

    def get_config(self):
        return {**super().get_config(), "genotype": self.genotype.to_dict(),
                "filters": self.filters}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResidualReduction(CompositeLayer):
    """NAS-Bench-201's reduction between stages (its ``ResNetBasicblock`` with stride 2).

    ``block(x) + shortcut(x)``: the block is ReLU-conv3x3 stride 2-BN then ReLU-conv3x3-BN to
    ``filters``; the shortcut a 2x2 average pool of stride 2 then a 1x1 convolution without bias
    (no batch norm, as NAS-Bench-201). On an odd size the pool's window past the edge averages
    the pixels inside the image, so both paths have the convolution's 'same' size.
    """

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        self.conv_a = ReLUConvBN(self.filters, 3, 2)
        self.conv_b = ReLUConvBN(self.filters, 3, 1)
        self.pool = layers.AveragePooling2D(2, strides=2, padding="valid")
        self.shortcut = layers.Conv2D(self.filters, 1, use_bias=False)

    def _pooled(self, x):
        pads = _same_pads(x.shape[1:3], 2, 2)
        if pads is not None and any(pad != (0, 0) for pad in pads):
            return _average_within(x, pads, 2, 2)
        return self.pool(x)

    def call(self, x, training=None):
        block = self.conv_b(self.conv_a(x, training=training), training=training)
        return self.shortcut(self._pooled(x)) + block

    def compute_output_shape(self, input_shape):
        return strided_shape(input_shape, 2, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def _check_input_shape(input_shape) -> tuple:
    if not (isinstance(input_shape, (list, tuple)) and len(input_shape) == 3):
        raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
    return tuple(input_shape)


def build_nb201_network(genotype, num_classes: int = 10, filters: int = 16,
                        cells_per_stage: int = NB201_CELLS_PER_STAGE, input_shape=(32, 32, 3),
                        name: str | None = None, *, dropout_rate: float = 0.0,
                        seed: int | None = None) -> keras.Model:
    """NAS-Bench-201's network for an edge genotype (or its dict), as a functional model.

    Stem: 3x3 conv (no bias) to ``filters`` + BN. Then ``cells_per_stage`` cells at ``filters``,
    a ``ResidualReduction`` to ``2 * filters``, N cells, one to ``4 * filters``, N cells; then
    BN, ReLU, global average pooling, optional dropout (not in NAS-Bench-201; seeded by
    ``seed``) and a dense classifier with a float32 softmax. ``cells_per_stage`` may be 0.
    """
    genotype = as_edge_genotype(genotype)
    check_int("num_classes", num_classes, 2)
    check_int("filters", filters, 1)
    check_int("cells_per_stage", cells_per_stage, 0)
    check_rate(dropout_rate, "dropout_rate")
    input_shape = _check_input_shape(input_shape)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ValueError(f"seed must be an int or None, got {seed!r}")

    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = batch_norm(name="stem_bn")(x)
    index = 0
    for stage in range(3):
        width = filters * 2 ** stage
        if stage > 0:
            x = ResidualReduction(width, name=f"reduction_{index}")(x)
            index += 1
        for _ in range(cells_per_stage):
            x = EdgeCell(genotype, width, name=f"cell_{index}")(x)
            index += 1
    x = layers.ReLU(name="head_relu")(batch_norm(name="head_bn")(x))
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    if dropout_rate > 0.0:
        x = layers.Dropout(dropout_rate, seed=seed, name="dropout")(x)
    outputs = softmax_classifier(x, num_classes, "predictions")
    return keras.Model(inputs, outputs, name=name or f"{genotype.space}_network")

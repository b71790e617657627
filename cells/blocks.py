"""The classic convolution blocks as Keras layers, correct at every input width.

These are the blocks that hand-designed networks were built from before (and alongside) cell
search: the bottleneck, inception modules, residual and ResNeXt blocks, the dense block,
squeeze-and-excitation, NASNet's normal cell and MobileNetV2's inverted residual. They are here
so users can study and reuse them, and so the ``article`` search space can put them on cell
edges next to the plain ops.

Popular write-ups of these blocks only work when the input already has the block's width: a
residual add whose branch has other channels than its input, an inverted residual whose output
differs from its input, a NASNet cell adding tensors of different widths. Every block here
infers its input width when it is built and fixes that: residual and ResNeXt blocks project the
shortcut (1x1 conv + BN) when widths differ, the inverted residual drops its skip (as MobileNetV2
does) when the shape changes, and the NASNet cell adapts both inputs to ``filters`` first.

Conventions: convolutions are conv -> batch norm -> ReLU (post-activation, as in the ResNet,
Inception and MobileNetV2 papers); the dense block is BN -> ReLU -> conv (DenseNet's
pre-activation); the NASNet cell uses NASNet's ReLU -> conv -> BN ops from ``cells.ops``.
The same argument names are used everywhere: ``filters``, bottleneck reduction ``r``,
cardinality ``c``, depth ``d``, SE ``rate``, ``expansion``, ``kernel_size``, ``strides``.

``block_op(name, filters, strides)`` wraps any block so it obeys the op contract of
``cells.ops`` (output ``(N, H/strides, W/strides, filters)``), which is how cells use them.
"""

from __future__ import annotations

import functools
import inspect

import keras
from keras import layers, ops

from cells.ops import (CompositeLayer, FactorizedReduce, ReLUConvBN, SepConv, batch_norm,
                       channels_of, check_filters, check_odd_kernel, check_strides, register_op)

_PACKAGE = "nasplay"

_ACTIVATIONS = ("relu", "relu6", None)


def _activation(name):
    """The activation layer for ``name``; Identity keeps ``call`` free of branches."""
    if name == "relu":
        return layers.ReLU()
    if name == "relu6":
        return layers.ReLU(max_value=6.0)
    return layers.Identity()


def bottleneck_width(filters: int, r: int) -> int:
    """The inner width ``filters // r`` of a bottleneck; ``r`` must leave at least one channel."""
    check_filters(r, "r")
    if r > filters:
        raise ValueError(f"r must be between 1 and filters={filters} so that the bottleneck keeps "
                         f"filters // r >= 1 channels, got r={r}")
    return filters // r


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ConvBNAct(CompositeLayer):
    """Convolution (no bias: BN's shift replaces it) -> batch norm -> activation.

    ``groups > 1`` is a grouped convolution (ResNeXt); ``activation=None`` leaves the output
    linear, as before a residual add or MobileNetV2's projection.
    """

    def __init__(self, filters: int, kernel_size: int = 1, strides: int = 1, groups: int = 1,
                 activation: str | None = "relu", **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        self.kernel_size = check_odd_kernel(kernel_size)
        self.strides = check_strides(strides)
        self.groups = check_filters(groups, "groups")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.conv = layers.Conv2D(self.filters, self.kernel_size, strides=self.strides,
                                  padding="same", groups=self.groups, use_bias=False)
        self.bn = batch_norm()
        self.act = _activation(activation)

    def call(self, x, training=None):
        return self.act(self.bn(self.conv(x), training=training))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "groups": self.groups, "activation": self.activation}


class BlockLayer(CompositeLayer):
    """Base of the blocks: each says how wide its output is for a given input width.

    ``output_width`` is the documented width formula; ``block_op`` uses it to decide whether a
    block needs a projection to honour the op contract.
    """

    def output_width(self, input_width: int) -> int:
        raise NotImplementedError


class _BottleneckBase(BlockLayer):
    """1x1 reduce to ``filters // r`` -> ``kernel_size`` conv (``groups`` paths) -> 1x1 to
    ``filters``: the body shared by the bottleneck, residual and ResNeXt blocks."""

    def __init__(self, filters: int, r: int, kernel_size: int, groups: int = 1,
                 expand_activation: str | None = "relu", **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        self.r = r
        self.kernel_size = check_odd_kernel(kernel_size)
        width = bottleneck_width(self.filters, r)
        self.reduce = ConvBNAct(width, 1)
        self.conv = ConvBNAct(width, self.kernel_size, groups=groups)
        self.expand = ConvBNAct(self.filters, 1, activation=expand_activation)

    def bottleneck(self, x, training=None):
        x = self.reduce(x, training=training)
        x = self.conv(x, training=training)
        return self.expand(x, training=training)

    def output_width(self, input_width: int) -> int:
        return self.filters

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "r": self.r,
                "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Bottleneck(_BottleneckBase):
    """1x1 reduce to ``filters // r`` -> ``kernel_size`` conv -> 1x1 expand to ``filters``.

    The bottleneck of ResNet-50 and deeper (He et al. 2016): the costly spatial convolution runs
    on ``r`` times fewer channels, cutting its parameters by about ``r**2``. Output width:
    ``filters``. No shortcut: that is ``ResidualBlock``.
    """

    def __init__(self, filters: int = 32, r: int = 4, kernel_size: int = 3, **kwargs):
        super().__init__(filters, r, kernel_size, **kwargs)

    def call(self, x, training=None):
        return self.bottleneck(x, training=training)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class NaiveInception(BlockLayer):
    """Parallel 1x1, 3x3 and 5x5 convolutions and a 3x3 max pool, concatenated.

    The "naive" Inception module of GoogLeNet (Szegedy et al. 2015): the network learns which
    receptive field to use instead of a designer choosing one. The pool branch passes the input
    through, so the output grows with it: width ``3 * filters + input width``; that growth (and
    the cost of 5x5 convolutions on the full width) is why the real module adds reductions.
    """

    def __init__(self, filters: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        self.conv1 = ConvBNAct(self.filters, 1)
        self.conv3 = ConvBNAct(self.filters, 3)
        self.conv5 = ConvBNAct(self.filters, 5)
        self.pool = layers.MaxPooling2D(3, strides=1, padding="same")

    def call(self, x, training=None):
        return ops.concatenate([self.conv1(x, training=training), self.conv3(x, training=training),
                                self.conv5(x, training=training), self.pool(x)], axis=-1)

    def output_width(self, input_width: int) -> int:
        return 3 * self.filters + input_width

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Inception(BlockLayer):
    """The Inception module with dimension reductions (GoogLeNet, Szegedy et al. 2015).

    Branches: 1x1 conv; 1x1 reduce to ``filters // r`` -> 3x3 conv; 1x1 reduce to
    ``filters // r`` -> 5x5 conv; 3x3 max pool -> 1x1 conv; each gives ``filters`` channels, so
    the output width is ``4 * filters`` whatever the input width. The reductions before the wide
    kernels and the projection after the pool keep the cost and the width bounded (the article
    reduced the 3x3 branch by a fixed 3; here one knob ``r`` sets both reductions).
    """

    def __init__(self, filters: int = 32, r: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        self.r = r
        width = bottleneck_width(self.filters, r)
        self.branch1 = ConvBNAct(self.filters, 1)
        self.reduce3 = ConvBNAct(width, 1)
        self.conv3 = ConvBNAct(self.filters, 3)
        self.reduce5 = ConvBNAct(width, 1)
        self.conv5 = ConvBNAct(self.filters, 5)
        self.pool = layers.MaxPooling2D(3, strides=1, padding="same")
        self.pool_proj = ConvBNAct(self.filters, 1)

    def call(self, x, training=None):
        a = self.branch1(x, training=training)
        b = self.conv3(self.reduce3(x, training=training), training=training)
        c = self.conv5(self.reduce5(x, training=training), training=training)
        d = self.pool_proj(self.pool(x), training=training)
        return ops.concatenate([a, b, c, d], axis=-1)

    def output_width(self, input_width: int) -> int:
        return 4 * self.filters

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "r": self.r}


class _ShortcutBottleneck(_BottleneckBase):
    """Bottleneck body (last BN linear) + shortcut, then ReLU: ResNet v1's residual unit.

    The shortcut is the input itself when widths match, else a 1x1 conv + BN projection
    (ResNet's option B): adding tensors of different widths is the bug this fixes.
    """

    def __init__(self, filters: int, r: int, kernel_size: int, groups: int, **kwargs):
        super().__init__(filters, r, kernel_size, groups, expand_activation=None, **kwargs)
        self.relu = layers.ReLU()

    def wire(self, input_shape):
        self.shortcut = layers.Identity() if channels_of(input_shape) == self.filters \
            else ConvBNAct(self.filters, 1, activation=None)

    def call(self, x, training=None):
        shortcut = self.shortcut(x, training=training)
        return self.relu(shortcut + self.bottleneck(x, training=training))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResidualBlock(_ShortcutBottleneck):
    """ResNet's bottleneck residual block (He et al. 2016), output width ``filters``.

    The block learns a correction to its input rather than a new representation, which is what
    lets very deep networks train. 1x1 to ``filters // r`` -> ``kernel_size`` conv -> 1x1 to
    ``filters``, plus the shortcut (projected when the input width is not ``filters``).
    """

    def __init__(self, filters: int = 32, r: int = 4, kernel_size: int = 3, **kwargs):
        super().__init__(filters, r, kernel_size, groups=1, **kwargs)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ResNeXtBlock(_ShortcutBottleneck):
    """ResNeXt's residual block (Xie et al. 2017): ``c`` parallel bottleneck paths, summed.

    Cardinality (the number of paths) is a third dimension besides depth and width, and raises
    accuracy at equal cost. The ``c`` paths of width ``filters // (r * c)`` are computed exactly
    as ResNeXt's equivalent form: a 1x1 conv to the bottleneck width ``filters // r`` (the paths'
    first convs side by side), a ``kernel_size`` convolution with ``groups=c`` (paths never mix),
    and one 1x1 conv to ``filters`` (a sum of the paths' last convs). So ``c`` must divide
    ``filters // r``. Output width ``filters``; shortcut as in ``ResidualBlock``.
    """

    def __init__(self, filters: int = 32, r: int = 2, c: int = 4, kernel_size: int = 3,
                 **kwargs):
        check_filters(filters)
        width = bottleneck_width(filters, r)
        check_filters(c, "c")
        if width % c:
            divisors = [str(d) for d in range(1, width + 1) if width % d == 0]
            raise ValueError(f"c (cardinality) must divide the bottleneck width filters // r = "
                             f"{filters} // {r} = {width}; accepted: {', '.join(divisors)}; "
                             f"got c={c}")
        super().__init__(filters, r, kernel_size, groups=c, **kwargs)
        self.c = c

    def get_config(self):
        return {**super().get_config(), "c": self.c}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DenseBlock(BlockLayer):
    """DenseNet's dense block (Huang et al. 2017): every layer sees all earlier feature maps.

    ``d`` layers of BN -> ReLU -> ``kernel_size`` conv, each adding ``filters`` channels (the
    growth rate) to the running concatenation; reusing features instead of relearning them makes
    the network narrow and parameter-efficient. Output width: ``input width + d * filters``.
    """

    def __init__(self, filters: int = 32, d: int = 5, kernel_size: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        self.d = check_filters(d, "d")
        self.kernel_size = check_odd_kernel(kernel_size)
        self.norms = [batch_norm() for _ in range(self.d)]
        self.relus = [layers.ReLU() for _ in range(self.d)]
        self.convs = [layers.Conv2D(self.filters, self.kernel_size, padding="same", use_bias=False)
                      for _ in range(self.d)]

    def call(self, x, training=None):
        for norm, relu, conv in zip(self.norms, self.relus, self.convs):
            x = ops.concatenate([x, conv(relu(norm(x, training=training)))], axis=-1)
        return x

    def output_width(self, input_width: int) -> int:
        return input_width + self.d * self.filters

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "d": self.d,
                "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SqueezeExcite(BlockLayer):
    """Squeeze-and-excitation (Hu et al. 2018): reweight channels by global context.

    A convolution weighs every channel the same everywhere; SE pools each channel to one number,
    passes the vector through a bottleneck MLP (``width // rate`` ReLU units, then ``width``
    sigmoid gates) and multiplies the input by the gates. Width unchanged. It has no
    convolution, hence no batch norm; ``rate`` need not divide the width but must leave at least
    one hidden unit, which is checked when the input width is known.
    """

    def __init__(self, rate: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.rate = check_filters(rate, "rate")
        self.pool = layers.GlobalAveragePooling2D(keepdims=True)

    def wire(self, input_shape):
        width = channels_of(input_shape)
        if width // self.rate < 1:
            raise ValueError(f"rate must be between 1 and the input width {width} so that SE keeps "
                             f"width // rate >= 1 hidden units, got rate={self.rate}")
        self.squeeze = layers.Dense(width // self.rate, activation="relu")
        self.excite = layers.Dense(width, activation="sigmoid")

    def call(self, x, training=None):
        return x * self.excite(self.squeeze(self.pool(x)))

    def output_width(self, input_width: int) -> int:
        return input_width

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class NASNetNormalCell(BlockLayer):
    """The NASNet-A normal cell (Zoph et al. 2018), the cell that reinforcement learning found.

    Called on ``[h_prev, h]`` (the outputs of the two previous cells) or on one tensor (used as
    both). Both inputs are first adapted to ``filters`` channels (ReLU -> 1x1 conv -> BN; a
    factorized reduction for ``h_prev`` when it has twice ``h``'s resolution, as after a
    reduction cell), so all five additions add equal widths. Five blocks, concatenated:
    sep5(h) + sep3(h_prev), sep5(h_prev) + sep3(h_prev), avg3(h) + h_prev,
    avg3(h_prev) + avg3(h_prev), sep3(h) + h. Output width ``5 * filters``.
    """

    def __init__(self, filters: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        self.adapt_h = ReLUConvBN(self.filters, 1)
        self.sep5_h = SepConv(self.filters, 5)
        self.sep3_prev_a = SepConv(self.filters, 3)
        self.sep5_prev = SepConv(self.filters, 5)
        self.sep3_prev_b = SepConv(self.filters, 3)
        self.sep3_h = SepConv(self.filters, 3)
        self.avg = layers.AveragePooling2D(3, strides=1, padding="same")

    def wire(self, input_shape):
        prev_shape, h_shape = _pair(input_shape)
        prev_size, h_size = prev_shape[1], h_shape[1]
        if prev_size is None or h_size is None or prev_size == h_size:
            self.adapt_prev = ReLUConvBN(self.filters, 1)
        elif prev_size == 2 * h_size:
            self.adapt_prev = FactorizedReduce(self.filters)
        else:
            raise ValueError(f"inputs must be [h_prev, h] with h_prev of h's resolution or twice "
                             f"it, got shapes {tuple(prev_shape)} and {tuple(h_shape)}")

    def call(self, inputs, training=None):
        h_prev, h = _pair(inputs)
        h_prev = self.adapt_prev(h_prev, training=training)
        h = self.adapt_h(h, training=training)
        blocks = [
            self.sep5_h(h, training=training) + self.sep3_prev_a(h_prev, training=training),
            self.sep5_prev(h_prev, training=training) + self.sep3_prev_b(h_prev, training=training),
            self.avg(h) + h_prev,
            self.avg(h_prev) + self.avg(h_prev),
            self.sep3_h(h, training=training) + h,
        ]
        return ops.concatenate(blocks, axis=-1)

    def output_width(self, input_width: int) -> int:
        return 5 * self.filters

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


def _pair(inputs):
    """``[h_prev, h]`` as given, or one tensor (or shape) used as both."""
    if isinstance(inputs, (list, tuple)) and len(inputs) == 2:
        return inputs[0], inputs[1]
    return inputs, inputs


@keras.saving.register_keras_serializable(package=_PACKAGE)
class InvertedResidual(BlockLayer):
    """MobileNetV2's inverted residual (Sandler et al. 2018), output width ``filters``.

    The reverse of a bottleneck: a 1x1 conv widens the input ``expansion`` times (ReLU6), a cheap
    depthwise ``kernel_size`` conv (stride ``strides``, ReLU6) filters it, and a linear 1x1 conv
    projects to ``filters`` (no activation: ReLU on a narrow tensor destroys information). The
    skip connects the narrow ends and, as in MobileNetV2, exists only when the shape is kept
    (``strides == 1`` and input width == ``filters``); otherwise there is no skip, no projection.
    ``expansion == 1`` drops the widening conv.
    """

    def __init__(self, filters: int = 32, expansion: int = 6, kernel_size: int = 3,
                 strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        self.expansion = check_filters(expansion, "expansion")
        self.kernel_size = check_odd_kernel(kernel_size)
        self.strides = check_strides(strides)
        self.depthwise = layers.DepthwiseConv2D(self.kernel_size, strides=self.strides,
                                                padding="same", use_bias=False)
        self.depthwise_bn = batch_norm()
        self.depthwise_act = _activation("relu6")
        self.project = ConvBNAct(self.filters, 1, activation=None)

    def wire(self, input_shape):
        width = channels_of(input_shape)
        self.expand = layers.Identity() if self.expansion == 1 \
            else ConvBNAct(width * self.expansion, 1, activation="relu6")
        self.has_skip = self.strides == 1 and width == self.filters

    def call(self, x, training=None):
        m = self.expand(x, training=training)
        m = self.depthwise_act(self.depthwise_bn(self.depthwise(m), training=training))
        m = self.project(m, training=training)
        return x + m if self.has_skip else m

    def output_width(self, input_width: int) -> int:
        return self.filters

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "expansion": self.expansion,
                "kernel_size": self.kernel_size, "strides": self.strides}


BLOCKS: dict[str, type[BlockLayer]] = {
    "bottleneck": Bottleneck,
    "naive_inception": NaiveInception,
    "inception": Inception,
    "residual": ResidualBlock,
    "resnext": ResNeXtBlock,
    "dense_block": DenseBlock,
    "se": SqueezeExcite,
    "nasnet_normal_cell": NASNetNormalCell,
    "inverted_residual": InvertedResidual,
}


def get_block(name: str) -> type[BlockLayer]:
    """The block class registered as ``name``; unknown names list the known ones."""
    if name not in BLOCKS:
        raise ValueError(f"unknown block {name!r}; known blocks: {', '.join(sorted(BLOCKS))}")
    return BLOCKS[name]


def op_knobs(block: type[BlockLayer], filters: int, width: int) -> dict:
    """Constructor arguments for ``block`` used as an op of ``filters`` on ``width`` channels.

    A search may give an op any width, so the block's own defaults are capped to what the width
    allows: ``r <= filters``, ``c`` the largest divisor of ``filters // r`` up to its default,
    ``rate <= width``. Chosen by argument name, so the rule is the same for every block.
    """
    defaults = {n: p.default for n, p in inspect.signature(block.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}
    knobs = {}
    if "filters" in defaults:
        knobs["filters"] = filters
    if "r" in defaults:
        knobs["r"] = min(defaults["r"], filters)
    if "c" in defaults:
        inner = filters // knobs["r"]
        knobs["c"] = max(c for c in range(1, defaults["c"] + 1) if inner % c == 0)
    if "rate" in defaults:
        knobs["rate"] = min(defaults["rate"], width)
    return knobs


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BlockOp(CompositeLayer):
    """A block behind the op contract: ``(N, H, W, C)`` -> ``(N, H/strides, W/strides, filters)``.

    Stride 2 first halves the resolution with a factorized reduction to ``filters`` channels
    (blocks themselves keep the resolution); then the block runs with its width set to
    ``filters`` (knobs from ``op_knobs``); a 1x1 conv + BN projects to ``filters`` only when the
    block's output width differs (inceptions, dense block, NASNet cell, SE on another width).
    """

    def __init__(self, block_name: str, filters: int, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        get_block(block_name)
        self.block_name = block_name
        self.filters = check_filters(filters)
        self.strides = check_strides(strides)
        self.reduce = FactorizedReduce(self.filters) if self.strides == 2 else layers.Identity()

    def wire(self, input_shape):
        width = self.filters if self.strides == 2 else channels_of(input_shape)
        block_cls = get_block(self.block_name)
        self.block = block_cls(**op_knobs(block_cls, self.filters, width))
        self.projection = layers.Identity() if self.block.output_width(width) == self.filters \
            else ConvBNAct(self.filters, 1, activation=None)

    def call(self, x, training=None):
        x = self.reduce(x, training=training)
        x = self.block(x, training=training)
        return self.projection(x, training=training)

    def get_config(self):
        return {**super().get_config(), "block_name": self.block_name, "filters": self.filters,
                "strides": self.strides}


def block_op(name: str, filters: int, strides: int = 1) -> BlockOp:
    """Block ``name`` as an op: output ``(N, H/strides, W/strides, filters)`` for any input."""
    return BlockOp(name, filters, strides)


# Every block is also an op (``make_op("resnext", 64, 2)``, the ``article`` space): registered
# here, explicitly, so that ``cells.ops`` never needs to import this module.
for _name in BLOCKS:
    register_op(_name, functools.partial(block_op, _name))

"""The operation registry: every op a cell can put on an edge, behind one factory signature.

``OPS[name](filters, strides)`` returns a Keras layer mapping ``(N, H, W, C_in)`` to
``(N, H / strides, W / strides, filters)`` whatever ``C_in`` is (it is inferred when the layer is
built). One contract for every op is what lets a genotype name ops freely: the cell never has to
know which op changes width or resolution.

Conventions follow NASNet (Zoph et al. 2018) and DARTS (Liu et al. 2019): convolutions are
ReLU -> conv -> batch norm, separable convolutions are applied twice, identity with stride 2 is a
factorized reduction, and pools add a 1x1 projection only when the width must change.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Callable

import keras
from keras import layers, ops

# Short proxy training (a few hundred steps) needs moving statistics that converge: with Keras's
# default momentum of 0.99 a small network scored chance on validation after 3 epochs on 2,000
# CIFAR-10 images, and 0.26-0.35 with 0.9 (measured; docs/architecture.md, "Facts").
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-3

OpFactory = Callable[[int, int], keras.layers.Layer]

_PACKAGE = "nasplay"


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` if it is an int (not a bool) of at least ``minimum``, else a ValueError naming
    the argument: the one integer check of the model code (``nasplay.errors.check_int`` is the
    application layer's, which raises its ``UserError``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_filters(filters, name: str = "filters") -> int:
    """Return ``filters`` as an int, or raise a ValueError naming the argument."""
    return check_int(name, filters)


def check_strides(strides) -> int:
    """Ops work at the same resolution (1) or halve it (2); nothing else appears in a cell."""
    if strides not in (1, 2) or isinstance(strides, bool):
        raise ValueError(f"strides must be 1 or 2, got {strides!r}")
    return int(strides)


def check_odd_kernel(kernel_size, name: str = "kernel_size") -> int:
    """'same' padding keeps a feature map centred only with odd kernels."""
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 1 \
            or kernel_size % 2 == 0:
        raise ValueError(f"{name} must be a positive odd integer (1, 3, 5, ...), got {kernel_size!r}")
    return kernel_size


_AFFINE_NORMS = contextvars.ContextVar("nasplay_affine_norms", default=True)


def batch_norm(name: str | None = None, affine: bool | None = None) -> layers.BatchNormalization:
    """The project's batch norm: one place that sets momentum and epsilon. ``affine=False``:
    no learned scale and offset (a pure normalization); None: affine unless created inside
    :func:`affine_free_norms`."""
    affine = _AFFINE_NORMS.get() if affine is None else affine
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, center=affine,
                                     scale=affine, name=name)


def softmax_classifier(x, num_classes: int, name: str):
    """The project's classifier: logits in the layer policy's dtype, softmax in float32 (mixed
    precision stays stable); every network's head and auxiliary head ends with it."""
    x = layers.Dense(num_classes, name=f"{name}_logits")(x)
    return layers.Activation("softmax", dtype="float32", name=name)(x)


@contextlib.contextmanager
def affine_free_norms():
    """Every batch norm an op creates inside this block, at construction or when it is built
    (identity and pools choose their adapters from the input width), is affine-free: the
    supernet's candidate ops, as in DARTS's search network (``cells.supernet``)."""
    token = _AFFINE_NORMS.set(False)
    try:
        yield
    finally:
        _AFFINE_NORMS.reset(token)


def channels_of(input_shape) -> int:
    return int(input_shape[-1])


def strided_shape(input_shape, strides: int, filters: int) -> tuple:
    """Output shape of a 'same'-padded op: spatial size divided by the stride, rounded up."""
    n, h, w = input_shape[0], input_shape[1], input_shape[2]
    return (n, None if h is None else -(-h // strides), None if w is None else -(-w // strides),
            filters)


def symbolic_inputs(input_shape):
    """KerasTensors for an input shape, or a list of shapes (multi-input layers such as Cell)."""
    if isinstance(input_shape, (list, tuple)) and input_shape and \
            isinstance(input_shape[0], (list, tuple)):
        return [keras.KerasTensor(tuple(s)) for s in input_shape]
    return keras.KerasTensor(tuple(input_shape))


class CompositeLayer(layers.Layer):
    """Base for layers made of sublayers: ``build`` creates every sublayer's weights.

    Keras builds a layer with only ``build(input_shape)`` when it loads a saved model, so a
    composite must build its children there; running ``call`` once on symbolic inputs does that
    for any wiring without repeating the shape arithmetic. Subclasses that choose sublayers from
    the input width (identity, pools) do so in ``wire``, before the symbolic run.
    """

    def wire(self, input_shape) -> None:
        """Create sublayers that depend on the input shape; default: none."""

    def build(self, input_shape):
        self.wire(input_shape)
        self.call(symbolic_inputs(input_shape), training=False)
        self.built = True


@keras.saving.register_keras_serializable(package=_PACKAGE)
class Subsample(layers.Layer):
    """Keep every ``strides``-th row and column.

    Keras refuses ``strides > 1`` together with ``dilation_rate > 1``, so dilated ops run at
    stride 1 and subsample afterwards (the same positions a strided 'same' conv would keep).
    """

    def __init__(self, strides: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.strides = check_strides(strides)

    def call(self, x):
        if self.strides == 1:
            return x
        return x[:, :: self.strides, :: self.strides, :]

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        s = self.strides
        return (n, None if h is None else -(-h // s), None if w is None else -(-w // s), c)

    def get_config(self):
        return {**super().get_config(), "strides": self.strides}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ReLUConvBN(CompositeLayer):
    """ReLU -> convolution(s) -> batch norm, NASNet's ordering for every convolution op.

    ``kernel_size`` is a list of kernels applied in sequence, so ``[(1, 7), (7, 1)]`` is the
    factorized 1x7-then-7x1 convolution; the stride is split over the pair the same way.
    """

    def __init__(self, filters: int, kernel_size=1, strides: int = 1, dilation_rate: int = 1,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        self.strides = check_strides(strides)
        self.dilation_rate = int(dilation_rate)
        kernels = kernel_size if isinstance(kernel_size, (list, tuple)) and \
            isinstance(kernel_size[0], (list, tuple)) else [kernel_size]
        self.kernel_size = [list(k) if isinstance(k, (list, tuple)) else [k, k] for k in kernels]
        for kh, kw in self.kernel_size:
            check_odd_kernel(kh)
            check_odd_kernel(kw)

        self.relu = layers.ReLU()
        self.convs = []
        for kh, kw in self.kernel_size:
            # a (1, k) kernel strides along width, a (k, 1) kernel along height, a square one both
            stride = (self.strides if kh > 1 or kh == kw else 1,
                      self.strides if kw > 1 or kh == kw else 1)
            if self.dilation_rate > 1:
                stride = (1, 1)
            self.convs.append(layers.Conv2D(self.filters, (kh, kw), strides=stride, padding="same",
                                            dilation_rate=self.dilation_rate, use_bias=False))
        self.subsample = Subsample(self.strides) if self.dilation_rate > 1 else layers.Identity()
        self.bn = batch_norm()

    def call(self, x, training=None):
        x = self.relu(x)
        for conv in self.convs:
            x = conv(x)
        x = self.subsample(x)
        return self.bn(x, training=training)

    def compute_output_shape(self, input_shape):
        # declared, so Keras need not trace call() a second time to learn it (faster builds)
        return strided_shape(input_shape, self.strides, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "dilation_rate": self.dilation_rate}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SepConv(CompositeLayer):
    """ReLU -> depthwise-separable conv -> BN, ``repeats`` times (NASNet applies it twice).

    Only the first repeat strides and changes the width; dilation uses stride-1 depthwise
    convolution followed by a strided 1x1 pointwise convolution, which subsamples exactly.
    """

    def __init__(self, filters: int, kernel_size: int = 3, strides: int = 1,
                 dilation_rate: int = 1, repeats: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        self.kernel_size = check_odd_kernel(kernel_size)
        self.strides = check_strides(strides)
        self.dilation_rate = int(dilation_rate)
        self.repeats = check_filters(repeats, "repeats")
        self.stages = []
        for i in range(self.repeats):
            stride = self.strides if i == 0 else 1
            dilated = self.dilation_rate > 1
            self.stages.append([
                layers.ReLU(),
                layers.DepthwiseConv2D(self.kernel_size, strides=1 if dilated else stride,
                                       padding="same", dilation_rate=self.dilation_rate,
                                       use_bias=False),
                layers.Conv2D(self.filters, 1, strides=stride if dilated else 1, use_bias=False),
                batch_norm(),
            ])

    def call(self, x, training=None):
        for relu, depthwise, pointwise, bn in self.stages:
            x = bn(pointwise(depthwise(relu(x))), training=training)
        return x

    def compute_output_shape(self, input_shape):
        # declared, so Keras need not trace call() a second time to learn it (faster builds)
        return strided_shape(input_shape, self.strides, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "strides": self.strides, "dilation_rate": self.dilation_rate,
                "repeats": self.repeats}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FactorizedReduce(CompositeLayer):
    """Halve the resolution without losing half the pixels (NASNet's factorized reduction).

    Two stride-2 1x1 convolutions, the second on the input shifted by one pixel, each give half of
    the output channels; together they see every pixel, where a single strided 1x1 conv would
    drop three quarters of them.

    The shift is a zero pad and a ``keras.ops.slice``, not ``x[:, 1:, 1:, :]``: on TensorFlow's
    CPU the indexing's gradient (``StridedSliceGrad``) took ~4x as long as the slice's (a pad);
    the same values either way (BENCHMARKS.md, "A supernet step").
    """

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        if self.filters < 2:
            raise ValueError(f"filters must be at least 2 for a factorized reduction, got {filters}")
        self.relu = layers.ReLU()
        self.conv_a = layers.Conv2D(self.filters // 2, 1, strides=2, use_bias=False)
        self.conv_b = layers.Conv2D(self.filters - self.filters // 2, 1, strides=2, use_bias=False)
        self.shift = layers.ZeroPadding2D(((0, 1), (0, 1)))
        self.bn = batch_norm()

    def call(self, x, training=None):
        x = self.relu(x)
        a = self.conv_a(x)
        b = self.conv_b(self._shifted(x))
        return self.bn(ops.concatenate([a, b], axis=-1), training=training)

    def _shifted(self, x):
        """``x`` moved up and left by one pixel, zeros entering at the bottom and right."""
        size = [ops.shape(x)[i] if d is None else d for i, d in enumerate(x.shape)]
        return ops.slice(self.shift(x), (0, 1, 1, 0), size)

    def compute_output_shape(self, input_shape):
        # declared, so Keras need not trace call() a second time to learn it (faster builds)
        return strided_shape(input_shape, 2, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class IdentityOp(CompositeLayer):
    """The 'identity' op: a pass-through, or the cheapest adapter when shape must change.

    Stride 2 becomes a factorized reduction; a width change at stride 1 a ReLU-1x1 conv-BN.
    Which one is decided at build time, when the input width is known.
    """

    def __init__(self, filters: int, strides: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        self.strides = check_strides(strides)
        self.adapter = None

    def wire(self, input_shape):
        if self.strides == 2:
            self.adapter = FactorizedReduce(self.filters)
        elif channels_of(input_shape) != self.filters:
            self.adapter = ReLUConvBN(self.filters, 1)

    def call(self, x, training=None):
        if self.adapter is None:
            return x
        return self.adapter(x, training=training)

    def compute_output_shape(self, input_shape):
        return strided_shape(input_shape, self.strides, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


def _same_pads(spatial, pool_size: int, strides: int):
    """TensorFlow's 'same' padding, ``[(before, after)]`` per spatial dimension (the odd pixel
    after), or None where a size is unknown."""
    if any(size is None for size in spatial):
        return None
    pads = []
    for size in spatial:
        total = max((-(-size // strides) - 1) * strides + pool_size - size, 0)
        pads.append((total // 2, total - total // 2))
    return pads


def _average_within(x, pads, pool_size: int, strides: int):
    """A 'same' average pool whose every window averages the pixels it covers inside the image,
    as TensorFlow's does, on every backend. Keras's PyTorch backend pads an uneven 'same'
    window (stride 2 on an even size) by replicating the edge, which enters the average: its
    stride-2 average pools differed from TensorFlow's by up to 0.48 on unit-normal inputs
    (Keras 3.15; keras-team/keras#23233 fixes it upstream the same way). Here the zero-padded
    window sum is divided by the count of image pixels in it."""
    padding = [(0, 0), *pads, (0, 0)]
    ones = ops.ones((1, *x.shape[1:3], 1), dtype=x.dtype)
    sums = ops.average_pool(ops.pad(x, padding), pool_size, strides, padding="valid")
    counts = ops.average_pool(ops.pad(ones, padding), pool_size, strides, padding="valid")
    return sums / counts


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PoolOp(CompositeLayer):
    """A 'same'-padded max or average pool, plus a ReLU-1x1 conv-BN only if the width changes."""

    def __init__(self, filters: int, pool_size: int = 3, strides: int = 1, kind: str = "max",
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = check_filters(filters)
        self.pool_size = check_odd_kernel(pool_size, "pool_size")
        self.strides = check_strides(strides)
        if kind not in ("max", "avg"):
            raise ValueError(f"kind must be 'max' or 'avg', got {kind!r}")
        self.kind = kind
        pool = layers.MaxPooling2D if kind == "max" else layers.AveragePooling2D
        self.pool = pool(self.pool_size, strides=self.strides, padding="same")
        self.projection = None

    def wire(self, input_shape):
        if channels_of(input_shape) != self.filters:
            self.projection = ReLUConvBN(self.filters, 1)

    def call(self, x, training=None):
        pads = _same_pads(x.shape[1:3], self.pool_size, self.strides)
        if self.kind == "avg" and pads is not None and any(a != b for a, b in pads):
            x = _average_within(x, pads, self.pool_size, self.strides)
        else:
            x = self.pool(x)
        if self.projection is not None:
            x = self.projection(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        n, h, w, _ = self.pool.compute_output_shape(input_shape)
        return (n, h, w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "pool_size": self.pool_size,
                "strides": self.strides, "kind": self.kind}


OPS: dict[str, OpFactory] = {
    "identity": lambda f, s: IdentityOp(f, s),
    "conv_1x1": lambda f, s: ReLUConvBN(f, 1, s),
    "conv_3x3": lambda f, s: ReLUConvBN(f, 3, s),
    "conv_1x3_3x1": lambda f, s: ReLUConvBN(f, [(1, 3), (3, 1)], s),
    "conv_1x7_7x1": lambda f, s: ReLUConvBN(f, [(1, 7), (7, 1)], s),
    "dil_conv_3x3": lambda f, s: ReLUConvBN(f, 3, s, dilation_rate=2),
    "dil_sep_conv_3x3": lambda f, s: SepConv(f, 3, s, dilation_rate=2, repeats=1),
    "sep_conv_3x3": lambda f, s: SepConv(f, 3, s),
    "sep_conv_5x5": lambda f, s: SepConv(f, 5, s),
    "sep_conv_7x7": lambda f, s: SepConv(f, 7, s),
    "avg_pool_3x3": lambda f, s: PoolOp(f, 3, s, "avg"),
    "max_pool_3x3": lambda f, s: PoolOp(f, 3, s, "max"),
    "max_pool_5x5": lambda f, s: PoolOp(f, 5, s, "max"),
    "max_pool_7x7": lambda f, s: PoolOp(f, 7, s, "max"),
}
# The 14 primitive ops of NASNet and AmoebaNet; ``cells.blocks`` adds the article's blocks to
# ``OPS`` when ``cells`` is imported, and users add their own with ``register_op``.
PRIMITIVES = tuple(OPS)


def register_op(name: str, factory: OpFactory | None = None, *, overwrite: bool = False):
    """Add an op to the registry: ``register_op("my_op", lambda filters, strides: MyLayer(...))``.

    Also usable as a decorator on a factory. The factory must honour the op contract (output
    ``(N, H/strides, W/strides, filters)``); a name already taken needs ``overwrite=True``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"op name must be a non-empty string, got {name!r}")

    def add(fn: OpFactory) -> OpFactory:
        if not callable(fn):
            raise ValueError(f"factory for op {name!r} must be callable (filters, strides) -> layer")
        if name in OPS and not overwrite:
            raise ValueError(f"op {name!r} is already registered; pass overwrite=True to replace it")
        OPS[name] = fn
        return fn

    return add if factory is None else add(factory)


def get_op(name: str) -> OpFactory:
    """The factory registered as ``name``; unknown names list the known ones."""
    if name in OPS:
        return OPS[name]
    raise ValueError(f"unknown op {name!r}; known ops: {', '.join(sorted(OPS))} "
                     f"(add your own with cells.register_op)")


def make_op(name: str, filters: int, strides: int = 1) -> keras.layers.Layer:
    """Build op ``name`` with the op contract, validating the arguments first."""
    check_filters(filters)
    check_strides(strides)
    return get_op(name)(filters, strides)

"""The classic blocks: documented widths, hand-counted parameters, save/load, shape-bug fixes."""

import keras
import numpy as np
import pytest

import cells
from cells.blocks import (BLOCKS, BlockOp, Bottleneck, ConvBNAct, DenseBlock, Inception,
                          InvertedResidual, NaiveInception, NASNetNormalCell, ResidualBlock,
                          ResNeXtBlock, SqueezeExcite, block_op, get_block, op_knobs)
from cells.ops import FactorizedReduce, ReLUConvBN

ARTICLE_OPS = ["bottleneck", "inception", "residual", "resnext", "dense_block", "se",
               "inverted_residual"]

# Output width with default knobs (filters=32, d=5) for an input of width c, as documented.
DEFAULT_WIDTH = {
    "bottleneck": lambda c: 32,
    "naive_inception": lambda c: 3 * 32 + c,
    "inception": lambda c: 4 * 32,
    "residual": lambda c: 32,
    "resnext": lambda c: 32,
    "dense_block": lambda c: c + 5 * 32,
    "se": lambda c: c,
    "nasnet_normal_cell": lambda c: 5 * 32,
    "inverted_residual": lambda c: 32,
}

# Small configurations for the slower checks (save/load).
SMALL = {
    "bottleneck": dict(filters=8, r=2),
    "naive_inception": dict(filters=4),
    "inception": dict(filters=8, r=2),
    "residual": dict(filters=8, r=2),
    "resnext": dict(filters=8, r=2, c=2),
    "dense_block": dict(filters=4, d=2),
    "se": dict(rate=4),
    "nasnet_normal_cell": dict(filters=4),
    "inverted_residual": dict(filters=8, expansion=2),
}


def rand(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def params(block, in_channels):
    block.build((None, 8, 8, in_channels))
    return block.count_params()


# Hand-count terms: a conv without bias, and batch norm (gamma, beta, moving mean, moving var).
def conv(k, c_in, c_out, groups=1):
    return k * k * (c_in // groups) * c_out


def bn(c):
    return 4 * c


def dense(n_in, n_out):
    return n_in * n_out + n_out


def sep_conv(k, c_in, c_out):
    """cells.ops.SepConv: twice ReLU -> depthwise k x k -> pointwise 1x1 -> BN."""
    return (k * k * c_in + c_in * c_out + bn(c_out)) + (k * k * c_out + c_out * c_out + bn(c_out))


def test_registry_has_the_nine_blocks():
    assert set(BLOCKS) == set(DEFAULT_WIDTH)


@pytest.mark.parametrize("name", sorted(BLOCKS))
@pytest.mark.parametrize("in_channels", [16, 32, 40])
def test_default_block_output_width(name, in_channels):
    block = BLOCKS[name]()
    y = block(rand(2, 8, 8, in_channels), training=False)
    expected = DEFAULT_WIDTH[name](in_channels)
    assert tuple(y.shape) == (2, 8, 8, expected)
    assert block.output_width(in_channels) == expected


# --- parameter counts worked out by hand -------------------------------------------------------

def test_bottleneck_params():
    # 6 -> 8 channels, r=2: inner width 8 // 2 = 4
    reduce = conv(1, 6, 4) + bn(4)
    spatial = conv(3, 4, 4) + bn(4)
    expand = conv(1, 4, 8) + bn(8)
    assert params(Bottleneck(8, r=2), 6) == reduce + spatial + expand == 264


def test_naive_inception_params():
    # 6 channels in, filters=4 per branch; the max pool has no weights
    branch1 = conv(1, 6, 4) + bn(4)
    branch3 = conv(3, 6, 4) + bn(4)
    branch5 = conv(5, 6, 4) + bn(4)
    assert params(NaiveInception(4), 6) == branch1 + branch3 + branch5 == 888


def test_inception_params():
    # 6 channels in, filters=8, r=4: reductions to 8 // 4 = 2 channels
    branch1 = conv(1, 6, 8) + bn(8)
    branch3 = conv(1, 6, 2) + bn(2) + conv(3, 2, 8) + bn(8)
    branch5 = conv(1, 6, 2) + bn(2) + conv(5, 2, 8) + bn(8)
    pool_proj = conv(1, 6, 8) + bn(8)
    assert params(Inception(8, r=4), 6) == branch1 + branch3 + branch5 + pool_proj == 808


def test_residual_params_with_and_without_projection():
    body = (conv(1, 6, 4) + bn(4)) + (conv(3, 4, 4) + bn(4)) + (conv(1, 4, 8) + bn(8))
    projection = conv(1, 6, 8) + bn(8)
    assert params(ResidualBlock(8, r=2), 6) == body + projection == 344
    same_width_body = (conv(1, 8, 4) + bn(4)) + (conv(3, 4, 4) + bn(4)) + (conv(1, 4, 8) + bn(8))
    assert params(ResidualBlock(8, r=2), 8) == same_width_body == 272


def test_resnext_params_use_a_grouped_convolution():
    # 8 -> 16 channels, r=2, c=4: bottleneck width 8 = 4 paths of 2 channels
    reduce = conv(1, 8, 8) + bn(8)
    grouped = conv(3, 8, 8, groups=4) + bn(8)      # 9 * 2 * 8: each path sees only its 2 channels
    expand = conv(1, 8, 16) + bn(16)
    projection = conv(1, 8, 16) + bn(16)
    assert params(ResNeXtBlock(16, r=2, c=4), 8) == reduce + grouped + expand + projection == 656


def test_dense_block_params():
    # 6 channels in, growth rate 4, depth 3: layer i sees 6 + 4 * i channels
    layers = [bn(c_in) + conv(3, c_in, 4) for c_in in (6, 10, 14)]
    assert params(DenseBlock(4, d=3), 6) == sum(layers) == 1200


def test_se_params():
    # 16 channels, rate 4: 4 hidden units
    squeeze = dense(16, 4)
    excite = dense(4, 16)
    assert params(SqueezeExcite(rate=4), 16) == squeeze + excite == 148


def test_nasnet_normal_cell_params():
    # one 6-channel tensor used as h_prev and h, filters=8
    adapt_prev = conv(1, 6, 8) + bn(8)
    adapt_h = conv(1, 6, 8) + bn(8)
    sep5s = 2 * sep_conv(5, 8, 8)       # sep5(h), sep5(h_prev)
    sep3s = 3 * sep_conv(3, 8, 8)       # sep3(h_prev) twice, sep3(h); pools have no weights
    assert params(NASNetNormalCell(8), 6) == adapt_prev + adapt_h + sep5s + sep3s == 2352


def test_inverted_residual_params():
    # 6 -> 8 channels, expansion 2: hidden width 12
    expand = conv(1, 6, 12) + bn(12)
    depthwise = 3 * 3 * 12 + bn(12)
    project = conv(1, 12, 8) + bn(8)
    assert params(InvertedResidual(8, expansion=2), 6) == expand + depthwise + project == 404


def test_inverted_residual_expansion_1_has_no_expand_conv():
    depthwise = 3 * 3 * 8 + bn(8)
    project = conv(1, 8, 8) + bn(8)
    assert params(InvertedResidual(8, expansion=1), 8) == depthwise + project == 200


# --- the shape-bug fixes -----------------------------------------------------------------------

def zero_last_bn(bn_layer):
    """Make a branch output exactly zero: BN's gamma and beta set to 0."""
    bn_layer.gamma.assign(np.zeros(bn_layer.gamma.shape, "float32"))
    bn_layer.beta.assign(np.zeros(bn_layer.beta.shape, "float32"))


@pytest.mark.parametrize("cls", [ResidualBlock, ResNeXtBlock])
def test_residual_projects_shortcut_only_when_width_changes(cls):
    wider = cls(16)
    y = wider(rand(2, 8, 8, 12), training=False)
    assert tuple(y.shape) == (2, 8, 8, 16)
    assert isinstance(wider.shortcut, ConvBNAct)
    same = cls(16)
    same.build((None, 8, 8, 16))
    assert isinstance(same.shortcut, keras.layers.Identity)


@pytest.mark.parametrize("cls", [ResidualBlock, ResNeXtBlock])
def test_residual_identity_shortcut_adds_the_input(cls):
    block = cls(16)
    x = rand(2, 8, 8, 16)
    block.build(x.shape)
    zero_last_bn(block.expand.bn)
    np.testing.assert_allclose(np.asarray(block(x, training=False)), np.maximum(x, 0), atol=1e-6)


def test_resnext_middle_conv_is_grouped_by_cardinality():
    block = ResNeXtBlock(32, r=2, c=4)
    block.build((None, 8, 8, 32))
    assert block.conv.conv.groups == 4
    assert tuple(block.conv.conv.kernel.shape) == (3, 3, 16 // 4, 16)


@pytest.mark.parametrize("in_channels,strides,has_skip", [(8, 1, True), (6, 1, False),
                                                          (8, 2, False)])
def test_inverted_residual_skips_only_when_shape_is_kept(in_channels, strides, has_skip):
    block = InvertedResidual(8, expansion=2, strides=strides)
    x = rand(2, 8, 8, in_channels)
    y = block(x, training=False)
    assert tuple(y.shape) == (2, 8 // strides, 8 // strides, 8)
    assert block.has_skip is has_skip


def test_inverted_residual_skip_adds_the_input():
    block = InvertedResidual(8, expansion=2)
    x = rand(2, 8, 8, 8)
    block.build(x.shape)
    zero_last_bn(block.project.bn)
    np.testing.assert_allclose(np.asarray(block(x, training=False)), x, atol=1e-6)


def test_nasnet_cell_adapts_inputs_of_different_widths_and_resolutions():
    cell = NASNetNormalCell(8)
    y = cell([rand(2, 8, 8, 6), rand(2, 4, 4, 10)], training=False)
    assert tuple(y.shape) == (2, 4, 4, 5 * 8)
    assert isinstance(cell.adapt_prev, FactorizedReduce)
    same = NASNetNormalCell(8)
    y = same([rand(2, 4, 4, 6), rand(2, 4, 4, 10)], training=False)
    assert tuple(y.shape) == (2, 4, 4, 5 * 8)
    assert isinstance(same.adapt_prev, ReLUConvBN)


def test_dense_block_keeps_its_input_as_the_first_channels():
    x = rand(2, 8, 8, 6)
    y = np.asarray(DenseBlock(4, d=3)(x, training=False))
    assert y.shape == (2, 8, 8, 6 + 3 * 4)
    np.testing.assert_array_equal(y[..., :6], x)


def test_se_scales_each_channel_by_a_gate_in_0_1():
    x = np.abs(rand(2, 8, 8, 16)) + 0.1
    y = np.asarray(SqueezeExcite(rate=4)(x))
    gates = y / x
    assert y.shape == x.shape
    assert np.all((gates > 0) & (gates < 1))
    # one gate per (image, channel), shared by every pixel
    np.testing.assert_allclose(gates, gates[:, :1, :1, :] * np.ones_like(gates), rtol=1e-5)


# --- save / load -------------------------------------------------------------------------------

def randomize_weights(model, seed=2):
    """Non-default values everywhere (BN statistics included), so a lost weight would show."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        w.assign(rng.uniform(0.5, 1.5, size=w.shape).astype("float32"))


def assert_round_trip(model, inputs, path):
    randomize_weights(model)
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(inputs, training=False)),
                               np.asarray(model(inputs, training=False)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_block_saves_and_loads_with_identical_predictions(tmp_path, name):
    inputs = keras.Input((8, 8, 12))
    model = keras.Model(inputs, BLOCKS[name](**SMALL[name])(inputs))
    assert_round_trip(model, rand(2, 8, 8, 12, seed=1), tmp_path / f"{name}.keras")


def test_nasnet_cell_with_two_inputs_saves_and_loads(tmp_path):
    h_prev, h = keras.Input((8, 8, 6)), keras.Input((4, 4, 10))
    model = keras.Model([h_prev, h], NASNetNormalCell(4)([h_prev, h]))
    assert_round_trip(model, [rand(2, 8, 8, 6), rand(2, 4, 4, 10)], tmp_path / "cell.keras")


@pytest.mark.parametrize("name", ["dense_block", "resnext", "se"])
def test_block_op_saves_and_loads(tmp_path, name):
    inputs = keras.Input((8, 8, 6))
    model = keras.Model(inputs, block_op(name, 8, 2)(inputs))
    assert_round_trip(model, rand(2, 8, 8, 6, seed=3), tmp_path / f"{name}_op.keras")


# --- block ops ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BLOCKS))
@pytest.mark.parametrize("strides", [1, 2])
def test_block_op_keeps_the_op_contract(name, strides):
    y = cells.make_op(name, 8, strides)(rand(2, 8, 8, 6), training=False)
    assert tuple(y.shape) == (2, 8 // strides, 8 // strides, 8)


@pytest.mark.parametrize("name", ["bottleneck", "inception", "resnext", "se"])
@pytest.mark.parametrize("strides", [1, 2])
def test_block_op_fits_knobs_to_a_narrow_width(name, strides):
    # filters=6: r=4 leaves 1 channel, ResNeXt's width 3 takes c=3, SE's rate drops to the width
    y = cells.make_op(name, 6, strides)(rand(2, 8, 8, 8), training=False)
    assert tuple(y.shape) == (2, 8 // strides, 8 // strides, 6)


def test_article_ops_resolve_to_block_ops():
    for name in ARTICLE_OPS:
        assert isinstance(cells.get_op(name)(8, 1), BlockOp)


def test_block_op_projects_only_when_the_block_changes_width():
    residual = block_op("residual", 8, 1)
    residual.build((None, 8, 8, 6))
    dense_op = block_op("dense_block", 8, 1)
    dense_op.build((None, 8, 8, 8))
    assert isinstance(residual.projection, keras.layers.Identity)
    assert isinstance(dense_op.projection, ConvBNAct)


def test_op_knobs_fit_the_width():
    assert op_knobs(ResNeXtBlock, 12, 12) == {"filters": 12, "r": 2, "c": 3}
    assert op_knobs(Bottleneck, 2, 2) == {"filters": 2, "r": 2}
    assert op_knobs(SqueezeExcite, 8, 4) == {"rate": 4}
    assert op_knobs(SqueezeExcite, 64, 64) == {"rate": 16}


# --- bad input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(set(BLOCKS) - {"se"}))
@pytest.mark.parametrize("bad", [0, -4, 2.5])
def test_bad_filters_name_the_argument(name, bad):
    with pytest.raises(ValueError, match="filters must be a positive integer"):
        BLOCKS[name](filters=bad)


@pytest.mark.parametrize("cls,kwargs,message", [
    (Bottleneck, {"r": 0}, "r must be a positive integer"),
    (Inception, {"r": -1}, "r must be a positive integer"),
    (ResidualBlock, {"r": 64}, "r must be between 1 and filters=32"),
    (ResNeXtBlock, {"c": 0}, "c must be a positive integer"),
    (DenseBlock, {"d": 0}, "d must be a positive integer"),
    (SqueezeExcite, {"rate": 0}, "rate must be a positive integer"),
    (InvertedResidual, {"expansion": 0}, "expansion must be a positive integer"),
    (InvertedResidual, {"strides": 3}, "strides must be 1 or 2"),
])
def test_bad_knob_names_the_argument(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [Bottleneck, ResidualBlock, ResNeXtBlock, DenseBlock,
                                 InvertedResidual])
def test_even_kernel_rejected(cls):
    with pytest.raises(ValueError, match=r"kernel_size must be a positive odd integer.*got 4"):
        cls(kernel_size=4)


def test_cardinality_must_divide_the_bottleneck_width():
    with pytest.raises(ValueError, match=r"c \(cardinality\) must divide the bottleneck width "
                                         r"filters // r = 32 // 2 = 16; "
                                         r"accepted: 1, 2, 4, 8, 16; got c=3"):
        ResNeXtBlock(32, r=2, c=3)


def test_se_rate_must_leave_a_hidden_unit():
    with pytest.raises(ValueError, match="rate must be between 1 and the input width 8"):
        SqueezeExcite(rate=16)(rand(1, 4, 4, 8))


def test_nasnet_cell_rejects_unrelated_resolutions():
    with pytest.raises(ValueError, match="h_prev of h's resolution or twice it"):
        NASNetNormalCell(8)([rand(1, 8, 8, 4), rand(1, 3, 3, 4)])


def test_unknown_block_lists_known_names():
    with pytest.raises(ValueError, match="unknown block 'vgg'; known blocks: bottleneck, "
                                         "dense_block, inception"):
        get_block("vgg")
    with pytest.raises(ValueError, match="unknown block 'vgg'"):
        block_op("vgg", 8, 1)
    with pytest.raises(ValueError, match="unknown op 'vgg'.*resnext"):
        cells.make_op("vgg", 8, 1)


def test_block_op_rejects_bad_strides():
    with pytest.raises(ValueError, match="strides must be 1 or 2"):
        block_op("residual", 8, 3)

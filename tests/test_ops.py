"""The op contract: every op maps (N, H, W, C_in) to (N, H/stride, W/stride, filters)."""

import keras
import numpy as np
import pytest

import cells
from cells.ops import OPS, PRIMITIVES, FactorizedReduce, IdentityOp, PoolOp, ReLUConvBN, SepConv
from search_space import NB201_OPS

EXPECTED_OPS = {
    "identity", "conv_1x1", "conv_3x3", "conv_1x3_3x1", "conv_1x7_7x1", "dil_conv_3x3",
    "dil_sep_conv_3x3", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "avg_pool_3x3",
    "max_pool_3x3", "max_pool_5x5", "max_pool_7x7",
}


def test_registry_has_exactly_the_issue_names_the_blocks_and_nb201s_ops():
    assert set(PRIMITIVES) == EXPECTED_OPS
    assert set(OPS) == EXPECTED_OPS | set(cells.BLOCKS) | set(NB201_OPS)


@pytest.mark.parametrize("name", sorted(EXPECTED_OPS | {"none"}))
@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("in_channels", [6, 8])
def test_op_output_shape(name, strides, in_channels):
    x = np.random.default_rng(0).normal(size=(2, 8, 8, in_channels)).astype("float32")
    y = cells.make_op(name, 8, strides)(x, training=False)
    assert tuple(y.shape) == (2, 8 // strides, 8 // strides, 8)


def test_identity_is_pass_through_when_shape_is_kept():
    x = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3)
    op = IdentityOp(3, 1)
    np.testing.assert_array_equal(np.asarray(op(x)), x)
    assert op.count_params() == 0


def test_identity_stride_2_is_a_factorized_reduction():
    op = IdentityOp(8, 2)
    op.build((None, 8, 8, 4))
    assert isinstance(op.adapter, FactorizedReduce)


def test_pool_projects_only_when_width_changes():
    same = PoolOp(4, 3, 1, "avg")
    same.build((None, 8, 8, 4))
    wider = PoolOp(8, 3, 1, "avg")
    wider.build((None, 8, 8, 4))
    assert same.projection is None and same.count_params() == 0
    assert wider.projection is not None


@pytest.mark.parametrize("size, strides", [(8, 2), (7, 2), (8, 1), (6, 2)])
def test_average_pool_averages_the_pixels_inside_the_image(size, strides):
    # by hand: the mean over each 3x3 window's pixels inside the image, TensorFlow's 'same'
    x = np.random.default_rng(size).normal(size=(1, size, size, 1)).astype("float32")
    y = np.asarray(PoolOp(1, 3, strides, "avg")(x))
    out = -(-size // strides)
    before = max((out - 1) * strides + 3 - size, 0) // 2
    padded = np.pad(x[0, :, :, 0], 3, constant_values=np.nan)
    for i in range(out):
        for j in range(out):
            top, left = i * strides - before + 3, j * strides - before + 3
            expected = np.nanmean(padded[top:top + 3, left:left + 3])
            np.testing.assert_allclose(y[0, i, j, 0], expected, rtol=1e-5, atol=1e-6)


def test_parameter_counts_by_hand():
    # ReLU-conv3x3-BN from 4 to 8 channels: 3*3*4*8 weights (no bias) + BN (4 * 8)
    conv = ReLUConvBN(8, 3, 1)
    conv.build((None, 8, 8, 4))
    assert conv.count_params() == 3 * 3 * 4 * 8 + 4 * 8
    # sep 3x3 twice, 4 -> 8: depthwise 9*4 + pointwise 4*8 + BN 4*8, then 9*8 + 8*8 + 4*8
    sep = SepConv(8, 3, 1)
    sep.build((None, 8, 8, 4))
    assert sep.count_params() == (9 * 4 + 4 * 8 + 32) + (9 * 8 + 8 * 8 + 32)
    # factorized reduction 4 -> 8: two 1x1 convs 4 -> 4 and BN on 8
    fr = FactorizedReduce(8)
    fr.build((None, 8, 8, 4))
    assert fr.count_params() == 2 * 4 * 4 + 4 * 8


@pytest.mark.parametrize("bad", [0, -3, 2.5, "8"])
def test_bad_filters_name_the_argument(bad):
    with pytest.raises(ValueError, match="filters"):
        cells.make_op("conv_3x3", bad, 1)


def test_bad_strides():
    with pytest.raises(ValueError, match="strides must be 1 or 2"):
        cells.make_op("conv_3x3", 8, 3)


def test_even_kernel_rejected():
    with pytest.raises(ValueError, match="kernel_size must be a positive odd"):
        SepConv(8, kernel_size=4)


def test_unknown_op_lists_known_names():
    with pytest.raises(ValueError, match="unknown op 'conv_9x9'.*sep_conv_3x3"):
        cells.make_op("conv_9x9", 8, 1)


def test_register_op_in_one_line(registries):
    cells.register_op("test_relu_proj", lambda f, s: ReLUConvBN(f, 1, s))
    y = cells.make_op("test_relu_proj", 5, 2)(np.zeros((1, 4, 4, 3), "float32"))
    assert tuple(y.shape) == (1, 2, 2, 5)
    with pytest.raises(ValueError, match="already registered"):
        cells.register_op("test_relu_proj", lambda f, s: keras.layers.Identity())


@pytest.mark.parametrize("name", ["identity", "sep_conv_5x5", "avg_pool_3x3", "conv_1x7_7x1"])
def test_op_saves_and_loads_with_identical_predictions(tmp_path, name):
    import keras

    inputs = keras.Input((8, 8, 4))
    outputs = cells.make_op(name, 6, 2)(inputs)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 4)).astype("float32")
    path = tmp_path / "op.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [8, 7])
def test_factorized_reduce_reads_the_shifted_pixels(size):
    """Channels [:half] come from the even pixels, [half:] from the odd ones (shifted by one,
    zeros past the edge), both through their own 1x1 kernel: checked against numpy."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, size, size, 3)).astype("float32")
    fr = FactorizedReduce(6)
    fr.build(x.shape)
    ka = rng.normal(size=(1, 1, 3, 3)).astype("float32")
    kb = rng.normal(size=(1, 1, 3, 3)).astype("float32")
    fr.conv_a.kernel.assign(ka)
    fr.conv_b.kernel.assign(kb)
    relu = np.maximum(x, 0.0)
    shifted = np.zeros_like(relu)
    shifted[:, :-1, :-1, :] = relu[:, 1:, 1:, :]
    a = relu[:, ::2, ::2, :] @ ka[0, 0]
    b = shifted[:, ::2, ::2, :] @ kb[0, 0]
    expected = np.concatenate([a, b], axis=-1) / np.sqrt(1.0 + fr.bn.epsilon)  # fresh BN
    got = keras.ops.convert_to_numpy(fr(x, training=False))
    assert got.shape == (2, (size + 1) // 2, (size + 1) // 2, 6)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

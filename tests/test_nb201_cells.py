"""NAS-Bench-201's ops, cell and network (cells.nb201): counts, arithmetic, saving, dispatch."""

import json
import warnings

import keras
import numpy as np
import pytest

import cells
from cells import EdgeCell, ResidualReduction, Zero, build_network, build_nb201_network
from cells.ops import OPS, IdentityOp, PoolOp, ReLUConvBN
from search_space import NB201_OPS, EdgeGenotype, get_space, load_genotype

F, SIZE = 4, 8   # small everywhere: 2 cores, no GPU


def uniform(op: str) -> EdgeGenotype:
    """The cell with ``op`` on all six edges."""
    return EdgeGenotype(nodes=((op,), (op, op), (op, op, op)))


# every op once, and a node (2) whose only non-zero input is node 0
MIXED = load_genotype("|nor_conv_3x3~0|+|skip_connect~0|none~1|+"
                      "|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|")


def images(size=SIZE, batch=2, channels=F, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, size, size, channels)).astype("float32")


def trainable(model) -> int:
    """Trainable parameters: Keras's batch norm keeps its moving statistics as weights too."""
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def as_numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


# -- the ops ---------------------------------------------------------------------------------

def test_every_nb201_op_is_registered_and_the_same_ops_are_aliases():
    assert set(NB201_OPS) <= set(OPS)
    assert OPS["skip_connect"] is OPS["identity"]
    assert OPS["nor_conv_1x1"] is OPS["conv_1x1"]
    assert OPS["nor_conv_3x3"] is OPS["conv_3x3"]


@pytest.mark.parametrize("strides", [1, 2])
@pytest.mark.parametrize("size, channels", [(8, F), (7, 3)])
def test_none_is_zeros_of_the_op_shape(strides, size, channels):
    x = images(size=size, channels=channels)
    op = cells.make_op("none", F, strides)
    y = as_numpy(op(x))
    out = -(-size // strides)
    assert y.shape == op.compute_output_shape(x.shape) == (2, out, out, F)
    assert not y.any()
    assert isinstance(op, Zero) and op.count_params() == 0


def test_skip_connect_is_the_input():
    x = images()
    op = cells.make_op("skip_connect", F, 1)
    np.testing.assert_array_equal(as_numpy(op(x)), x)
    assert isinstance(op, IdentityOp) and op.count_params() == 0


def _fresh_bn(y, op):
    """A fresh batch norm in inference mode: divides by sqrt(1 + epsilon)."""
    return y / np.sqrt(1.0 + op.bn.epsilon)


def test_nor_conv_1x1_is_relu_conv_bn():
    x = images()
    op = cells.make_op("nor_conv_1x1", 6, 1)
    op.build(x.shape)
    kernel = np.random.default_rng(1).normal(size=(1, 1, F, 6)).astype("float32")
    op.convs[0].kernel.assign(kernel)
    expected = _fresh_bn(np.maximum(x, 0) @ kernel[0, 0], op)
    np.testing.assert_allclose(as_numpy(op(x, training=False)), expected, rtol=1e-5, atol=1e-5)
    assert op.count_params() == F * 6 + 4 * 6       # no bias; BN: scale, offset and 2 moving


def test_nor_conv_3x3_pads_one_pixel_of_zeros():
    x = images(size=5)
    op = cells.make_op("nor_conv_3x3", 3, 1)
    op.build(x.shape)
    kernel = np.random.default_rng(2).normal(size=(3, 3, F, 3)).astype("float32")
    op.convs[0].kernel.assign(kernel)
    padded = np.pad(np.maximum(x, 0), ((0, 0), (1, 1), (1, 1), (0, 0)))
    expected = np.zeros((2, 5, 5, 3), "float32")
    for i in range(5):
        for j in range(5):
            expected[:, i, j] = np.einsum("nhwc,hwcd->nd", padded[:, i:i + 3, j:j + 3], kernel)
    np.testing.assert_allclose(as_numpy(op(x, training=False)), _fresh_bn(expected, op),
                               rtol=1e-4, atol=1e-4)
    assert isinstance(op, ReLUConvBN) and op.convs[0].use_bias is False


def test_avg_pool_3x3_leaves_the_padding_out_of_the_average():
    # PyTorch's count_include_pad=False: a corner averages 4 pixels, an edge 6, the inside 9
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    op = cells.make_op("avg_pool_3x3", 1, 1)
    y = as_numpy(op(x))[0, :, :, 0]
    grid = x[0, :, :, 0]
    assert y[0, 0] == pytest.approx(grid[:2, :2].mean())
    assert y[0, 1] == pytest.approx(grid[:2, :3].mean())
    assert y[1, 1] == pytest.approx(grid[:3, :3].mean())
    assert isinstance(op, PoolOp) and op.projection is None and op.count_params() == 0


def test_residual_reduction_shortcut_is_pool_then_1x1_conv():
    x = images(size=6)
    block = ResidualReduction(6)
    block.build(x.shape)
    # no bias, no norm on the shortcut; the block's BN params: 2 x (2 scale/offset + 2 moving)
    assert block.count_params() == 9 * F * 6 + 9 * 6 * 6 + F * 6 + 2 * 4 * 6
    rng = np.random.default_rng(3)
    kernel = rng.normal(size=(1, 1, F, 6)).astype("float32")
    block.shortcut.kernel.assign(kernel)
    block.conv_b.convs[0].kernel.assign(np.zeros((3, 3, 6, 6), "float32"))  # the block gives 0
    pooled = x.reshape(2, 3, 2, 3, 2, F).mean(axis=(2, 4))
    np.testing.assert_allclose(as_numpy(block(x, training=False)), pooled @ kernel[0, 0],
                               rtol=1e-5, atol=1e-5)


def test_residual_reduction_on_an_odd_size_keeps_the_paths_equal():
    y = ResidualReduction(F)(images(size=7), training=False)
    assert tuple(y.shape) == (2, 4, 4, F)


# -- the cell --------------------------------------------------------------------------------

def test_cell_computes_the_dag():
    """node 1 = x (skip), node 2 = node 1 (skip) + none, node 3 = skip(2) + none + none: x."""
    genotype = EdgeGenotype(nodes=(("skip_connect",), ("none", "skip_connect"),
                                   ("none", "none", "skip_connect")))
    x = images()
    np.testing.assert_array_equal(as_numpy(EdgeCell(genotype, F)(x)), x)
    doubled = EdgeGenotype(nodes=(("skip_connect",), ("skip_connect", "none"),
                                  ("none", "skip_connect", "skip_connect")))
    np.testing.assert_allclose(as_numpy(EdgeCell(doubled, F)(x)), 2 * x)


def test_none_only_cell_gives_zeros():
    x = images()
    cell = EdgeCell(uniform("none"), F)
    y = as_numpy(cell(x, training=True))
    assert y.shape == x.shape and not y.any()
    assert cell.count_params() == 0


@pytest.mark.parametrize("channels", [F, 3])
def test_cell_output_shape(channels):
    cell = EdgeCell(MIXED, F)
    x = images(channels=channels)
    y = cell(x, training=False)
    assert tuple(y.shape) == cell.compute_output_shape(x.shape) == (2, SIZE, SIZE, F)


def test_cell_accepts_its_dict_and_its_config_is_json():
    cell = EdgeCell(MIXED.to_dict(), F)
    assert cell.genotype == MIXED
    config = json.loads(json.dumps(cell.get_config()))
    assert EdgeCell.from_config(config).genotype == MIXED


def test_cell_saves_and_loads_with_equal_outputs(tmp_path):
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(F, 3, padding="same")(inputs)
    x = EdgeCell(MIXED, F, name="cell")(x)
    model = keras.Model(inputs, x)
    data = images(channels=3)
    model(data, training=True)  # moves the moving statistics off their initial values
    expected = as_numpy(model(data, training=False))
    model.save(tmp_path / "cell.keras")
    loaded = keras.saving.load_model(tmp_path / "cell.keras")
    assert loaded.get_layer("cell").genotype == MIXED
    np.testing.assert_allclose(as_numpy(loaded(data, training=False)), expected,
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("bad, match", [("conv_9x9", "unknown op 'conv_9x9'"), (3, "nodes")])
def test_bad_cells_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        EdgeCell({"space": "nb201", "nodes": [[bad], ["none", "none"],
                                              ["none", "none", "none"]]}, F)
    with pytest.raises(ValueError, match="filters"):
        EdgeCell(MIXED, 0)


# -- the network -----------------------------------------------------------------------------

@pytest.mark.parametrize("op, expected", [("nor_conv_3x3", 1_531_546), ("none", 73_306)])
def test_parameter_counts_are_nas_bench_201s(op, expected):
    # N = 5, C = 16: build_network's defaults for an edge genotype
    assert trainable(build_network(uniform(op))) == expected


def test_network_layout_and_dispatch():
    model = build_network(MIXED.to_dict(), filters=F, cells_per_stage=2,
                          input_shape=(SIZE, SIZE, 3), name="tiny")
    blocks = [layer for layer in model.layers if isinstance(layer, (EdgeCell, ResidualReduction))]
    assert [type(b).__name__ for b in blocks] == ["EdgeCell"] * 2 + (
        ["ResidualReduction"] + ["EdgeCell"] * 2) * 2
    assert [b.filters for b in blocks] == [F] * 2 + [2 * F] * 3 + [4 * F] * 3
    assert model.get_layer("stem_conv").filters == F and model.name == "tiny"
    y = as_numpy(model(images(channels=3), training=False))
    assert y.shape == (2, 10)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


def test_default_cells_per_stage_is_five_for_nb201():
    model = build_network(MIXED, filters=2, input_shape=(SIZE, SIZE, 3))
    assert sum(isinstance(layer, EdgeCell) for layer in model.layers) == 15
    assert model.name == "nb201_network"


def test_none_only_cells_output_zeros_and_the_network_still_trains():
    model = build_nb201_network(uniform("none"), filters=F, cells_per_stage=1,
                                input_shape=(SIZE, SIZE, 3))
    probe = keras.Model(model.inputs, [model.get_layer(f"cell_{k}").output for k in (0, 2, 4)])
    assert not any(as_numpy(out).any() for out in probe([images(channels=3)], training=True))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.train_on_batch(images(channels=3), np.array([0, 1]))
    assert not [w for w in caught if "Gradients do not exist" in str(w.message)]


@pytest.mark.parametrize("kwargs, match", [
    ({"auxiliary_head": True}, "auxiliary_head"), ({"drop_path_rate": 0.2}, "drop_path_rate"),
    ({"drop_path_rate": 1.5}, "drop_path_rate"), ({"stem_multiplier": 3}, "stem_multiplier"),
    ({"cells_per_stage": -1}, "cells_per_stage"), ({"filters": 0}, "filters"),
    ({"num_classes": 1}, "num_classes"), ({"input_shape": (8, 8)}, "input_shape"),
    ({"dropout_rate": 1.0}, "dropout_rate"), ({"seed": 1.5}, "seed"),
])
def test_options_nb201_has_no_place_for_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match) as caught:
        build_network(MIXED, **{"filters": 2, "cells_per_stage": 0, **kwargs})
    assert "\n" not in str(caught.value)


def test_options_that_apply_are_taken():
    model = build_network(MIXED, filters=2, cells_per_stage=0, stem_multiplier=1,
                          drop_path_rate=0.0, dropout_rate=0.5, seed=1, input_shape=(SIZE, SIZE, 3))
    assert model.get_layer("dropout").rate == 0.5


def test_sampled_nb201_networks_run():
    rng = np.random.default_rng(0)
    space = get_space("nb201")
    for _ in range(2):
        model = build_network(space.sample(rng), filters=2, cells_per_stage=1,
                              input_shape=(SIZE, SIZE, 3))
        assert tuple(model(images(channels=3), training=False).shape) == (2, 10)


def test_mixed_precision_keeps_float32_probabilities():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = build_network(MIXED, filters=F, cells_per_stage=1, input_shape=(9, 9, 3))
        y = model(images(size=9, channels=3), training=True)
        assert "float32" in str(y.dtype)
        assert {layer.compute_dtype for layer in model.layers
                if isinstance(layer, (EdgeCell, ResidualReduction))} == {"bfloat16"}
    finally:
        keras.config.set_dtype_policy("float32")

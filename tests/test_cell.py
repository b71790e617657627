"""Cell and build_network: wiring, shapes, drop-path, serialization, published cells."""

import json

import keras
import numpy as np
import pytest

import cells
from cells import Cell, DropPath, EdgeCell, build_network
from cells.ops import FactorizedReduce, ReLUConvBN
from search_space.edge_genotype import EdgeGenotype
from search_space.genotype import Block, CellSpec, Genotype
from search_space.published import PUBLISHED
from search_space.spaces import SPACES

# small everywhere: 2 cores, no GPU
F, N, SIZE = 4, 1, 16

# A two-block cell: block 0 reads both inputs, block 1 reads block 0 and h_prev.
TINY = CellSpec((Block((0, 1), ("sep_conv_3x3", "identity")),
                 Block((1, 2), ("avg_pool_3x3", "conv_3x3"))))
TINY_GENOTYPE = Genotype(normal=TINY, reduction=TINY)


def images(size=SIZE, batch=2, channels=3, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, size, size, channels)).astype("float32")


def small_network(genotype, **kwargs):
    kwargs = {"filters": F, "cells_per_stage": N, "input_shape": (SIZE, SIZE, 3), **kwargs}
    return build_network(genotype, **kwargs)


def space_names():
    names = sorted(SPACES)
    try:
        import cells.blocks  # noqa: F401  (the article space's ops)
    except ImportError:
        names = [n for n in names if n != "article"]
    return names


# -- sampled genotypes of every space --------------------------------------------------------

def check_cells_of(genotype, x):
    """Both cells of ``genotype`` run on ``[x, x]`` with the shape they announce; an edge
    genotype's one cell (``nb201``) runs on ``x`` and keeps its size."""
    if isinstance(genotype, EdgeGenotype):
        cell = EdgeCell(genotype, F)
        y = cell(x, training=False)
        assert tuple(y.shape) == cell.compute_output_shape(x.shape) == (*x.shape[:3], F)
        return
    for spec, reduction in ((genotype.normal, False), (genotype.reduction, True)):
        cell = Cell(spec, F, reduction=reduction)
        y = cell([x, x], training=False)
        expected = cell.compute_output_shape([x.shape, x.shape])
        assert tuple(y.shape) == expected
        size = x.shape[1] // 2 if reduction else x.shape[1]
        assert expected[1:3] == (size, size)


# Ten sampled networks per space run in the slow test below; by default two genotypes per space
# are checked cell by cell (a network costs 2.5 cells' build time) and one network end to end.
@pytest.mark.parametrize("space", space_names())
def test_sampled_cells_run_with_the_shape_they_announce(space):
    rng = np.random.default_rng(0)
    for _ in range(2):
        check_cells_of(SPACES[space].sample(rng), images(size=8, channels=6))


def test_sampled_network_forward_pass():
    genotype = SPACES["nasnet"].sample(np.random.default_rng(1))
    y = np.asarray(small_network(genotype, num_classes=7)(images(), training=False))
    assert y.shape == (2, 7)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("space", space_names())
def test_many_sampled_networks_forward_pass(space):
    rng = np.random.default_rng(2)
    for _ in range(10):
        model = small_network(SPACES[space].sample(rng))
        assert tuple(model(images(), training=False).shape) == (2, 10)
        keras.backend.clear_session()


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_cells_build(name):
    check_cells_of(PUBLISHED[name], images(size=8, channels=6))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_networks_build(name):
    model = small_network(PUBLISHED[name])
    assert tuple(model(images(), training=False).shape) == (2, 10)


# -- the cell's wiring -----------------------------------------------------------------------

def test_reduction_cell_halves_resolution():
    x = images(channels=5)
    y = Cell(TINY, F, reduction=True)([x, x])
    assert tuple(y.shape) == (2, SIZE // 2, SIZE // 2, F)  # one loose end: block 1


def test_output_concatenates_loose_ends_only():
    # blocks 0 and 1 are both loose ends; no block reads input 0, yet it is not in the output
    spec = CellSpec((Block((1, 1), ("conv_1x1", "identity")),
                     Block((1, 1), ("avg_pool_3x3", "max_pool_3x3"))))
    assert spec.concat == (2, 3)
    x = images(channels=3)
    cell = Cell(spec, F)
    assert tuple(cell([x, x]).shape) == (2, SIZE, SIZE, 2 * F)
    assert cell.output_channels == 2 * F


def test_prev_prev_twice_as_large_is_factorized_reduced():
    cell = Cell(TINY, F)
    y = cell([images(size=16, channels=6), images(size=8, channels=10)])
    assert tuple(y.shape) == (2, 8, 8, F)
    assert isinstance(cell.preprocess0, FactorizedReduce)
    same = Cell(TINY, F)
    same([images(size=8), images(size=8)])
    assert isinstance(same.preprocess0, ReLUConvBN)


def test_an_unread_input_gets_no_projection_and_every_weight_a_gradient():
    import tensorflow as tf  # the test backend; the cell itself is backend-agnostic

    # Neither block reads h_prev_prev (input 0): no projection for it, and no weight of the
    # network is left without a gradient (Keras would warn about each one while training).
    reads_h_prev_only = CellSpec((Block((1, 1), ("sep_conv_3x3", "identity")),
                                  Block((1, 2), ("avg_pool_3x3", "conv_3x3"))))
    cell = Cell(reads_h_prev_only, F)
    cell([images(size=16, channels=6), images(size=8, channels=10)])
    assert cell.preprocess0 is None and isinstance(cell.preprocess1, ReLUConvBN)
    full = Cell(TINY, F)
    full([images(size=16, channels=6), images(size=8, channels=10)])
    assert cell.count_params() < full.count_params()

    model = small_network(Genotype(normal=reads_h_prev_only, reduction=TINY))
    with tf.GradientTape() as tape:
        loss = keras.ops.mean(model(images(), training=True))
    grads = tape.gradient(loss, model.trainable_variables)
    assert [v.path for v, g in zip(model.trainable_variables, grads) if g is None] == []


def test_mismatched_input_sizes_are_refused():
    with pytest.raises(ValueError, match="same spatial size, or h_prev_prev twice"):
        Cell(TINY, F)([images(size=16), images(size=4)])


def test_cell_needs_two_inputs():
    with pytest.raises(ValueError, match=r"\[h_prev_prev, h_prev\]"):
        Cell(TINY, F)(images())


def test_concat_combine_doubles_the_state_and_downstream_ops_adapt():
    spec = CellSpec((Block((0, 1), ("conv_3x3", "identity"), "concat"),
                     Block((2, 2), ("sep_conv_3x3", "identity"))))
    assert spec.concat == (3,)
    x = images(channels=3)
    cell = Cell(spec, F)
    assert tuple(cell([x, x]).shape) == (2, SIZE, SIZE, F)  # identity adapted 2F -> F
    loose_concat = CellSpec((Block((0, 1), ("conv_3x3", "identity"), "concat"),))
    assert tuple(Cell(loose_concat, F)([x, x]).shape) == (2, SIZE, SIZE, 2 * F)


def test_cell_accepts_its_dict_and_config_is_json():
    cell = Cell(TINY.to_dict(), F, reduction=True, drop_path_rate=0.1, seed=3)
    assert cell.spec == TINY
    config = json.loads(json.dumps(cell.get_config()))
    assert Cell.from_config(config).spec == TINY
    assert Cell(Genotype.from_dict(TINY_GENOTYPE.to_dict()).normal.to_dict()["blocks"], F).spec == TINY


# -- drop-path -------------------------------------------------------------------------------

def test_drop_path_drops_whole_samples_and_rescales():
    x = np.ones((256, 2, 2, 3), "float32")
    y = np.asarray(DropPath(0.5, seed=0)(x, training=True))
    per_sample = y.reshape(256, -1)
    assert set(np.unique(per_sample)) <= {0.0, 2.0}
    assert np.all(per_sample.min(axis=1) == per_sample.max(axis=1))
    assert 0.3 < (per_sample[:, 0] == 0).mean() < 0.7
    np.testing.assert_array_equal(np.asarray(DropPath(0.5)(x, training=False)), x)


def test_drop_path_only_in_training_and_not_on_identity():
    x = images(channels=F)
    cell = Cell(TINY, F, drop_path_rate=0.5, seed=0)
    first = np.asarray(cell([x, x], training=False))
    np.testing.assert_array_equal(np.asarray(cell([x, x], training=False)), first)
    trained = [np.asarray(cell([x, x], training=True)) for _ in range(3)]
    assert any(not np.allclose(a, b) for a, b in zip(trained, trained[1:]))
    drops = [d for pair in cell.drop_paths for d in pair]
    assert [d is None for d in drops] == [op == "identity" for b in TINY.blocks for op in b.ops]
    assert all(d is None for pair in Cell(TINY, F).drop_paths for d in pair)


# -- the network -----------------------------------------------------------------------------

def test_network_layout_and_dict_genotype():
    model = small_network(TINY_GENOTYPE.to_dict(), cells_per_stage=2, filters=6,
                          stem_multiplier=2, name="tiny")
    cell_layers = [layer for layer in model.layers if isinstance(layer, Cell)]
    assert [c.reduction for c in cell_layers] == [False, False, True, False, False, True,
                                                  False, False]
    assert [c.filters for c in cell_layers] == [6, 6, 12, 12, 12, 24, 24, 24]
    assert model.get_layer("stem_conv").filters == 12
    assert model.name == "tiny"
    assert model.output_shape == (None, 10)


def test_auxiliary_head_is_a_second_output():
    model = small_network(TINY_GENOTYPE, auxiliary_head=True, drop_path_rate=0.2,
                          dropout_rate=0.3, seed=0)
    main, aux = model(images(), training=False)
    assert tuple(main.shape) == tuple(aux.shape) == (2, 10)


def test_mixed_precision_keeps_float32_probabilities():
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = small_network(TINY_GENOTYPE)
        y = model(images(), training=False)
        assert y.dtype == "float32" or str(y.dtype).endswith("float32")
        assert any(layer.compute_dtype == "float16" for layer in model.layers
                   if isinstance(layer, Cell))
    finally:
        keras.config.set_dtype_policy("float32")


def test_cell_in_a_functional_model_saves_and_reloads(tmp_path):
    """What a user does with a found cell: drop it into their own model."""
    genotype = PUBLISHED["amoebanet-a"]
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = cells.Cell(genotype.normal, 8)([x, x])
    x = cells.Cell(genotype.reduction, 8, reduction=True, drop_path_rate=0.1)([x, x])
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    data = images(size=8)
    expected = model.predict(data, verbose=0)
    model.save(tmp_path / "user.keras")
    loaded = keras.saving.load_model(tmp_path / "user.keras")
    np.testing.assert_array_equal(loaded.predict(data, verbose=0), expected)


# -- bad arguments ---------------------------------------------------------------------------

@pytest.mark.parametrize("argument, value", [
    ("num_classes", 1), ("num_classes", "10"), ("filters", 1), ("filters", 2.5),
    ("cells_per_stage", -1), ("cells_per_stage", True), ("stem_multiplier", 0),
    ("drop_path_rate", 1.0), ("dropout_rate", -0.1), ("input_shape", (32, 32)),
])
def test_bad_network_arguments_name_the_argument(argument, value):
    with pytest.raises(ValueError, match=argument):
        build_network(TINY_GENOTYPE, **{argument: value})


def test_bad_genotype():
    with pytest.raises(ValueError, match="genotype must be"):
        build_network("nasnet-a")
    with pytest.raises(ValueError, match="normal"):
        build_network({"space": "nasnet", "reduction": []})


@pytest.mark.parametrize("kwargs, match", [
    ({"filters": 1}, "filters"), ({"filters": 0}, "filters"),
    ({"reduction": 1}, "reduction"), ({"drop_path_rate": 2}, "drop_path_rate"),
    ({"seed": 1.5}, "seed"),
])
def test_bad_cell_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Cell(TINY, **{"filters": F, **kwargs})


def test_unknown_op_lists_known_ops():
    spec = CellSpec((Block((0, 1), ("conv_9x9", "identity")),))
    with pytest.raises(ValueError, match="unknown op 'conv_9x9'.*sep_conv_3x3"):
        Cell(spec, F)


# -- the papers' sizes -----------------------------------------------------------------------

# name -> (cells per stage N, filters F, the paper's parameter count); see benchmarks/param_counts.py
PAPER_SIZES = {"nasnet-a": (6, 32, 3.3e6), "amoebanet-a": (6, 36, 3.2e6),
               "enas": (5, 36, 4.6e6), "darts-v2": (6, 36, 3.3e6)}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PAPER_SIZES))
def test_published_parameter_counts_near_the_papers(name):
    n, f, paper = PAPER_SIZES[name]
    model = build_network(PUBLISHED[name], filters=f, cells_per_stage=n)
    count = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert 0.7 * paper < count < 1.3 * paper

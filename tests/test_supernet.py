"""cells.supernet: one model, every candidate; one trace; only the chosen ops; exact extraction.

A tiny space (3 ops, 2 blocks) at 8x8 keeps graphs small; the registered spaces are checked
eagerly (an eager switch runs only the chosen branch, so no graph of every op is traced).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from cells.supernet import SuperNet, check_space
from cells.supernet_paths import _pairs
from search_space import Block, CellSpec, Genotype, SearchSpace, get_space

# not registered: a SuperNet takes the space itself
TINY = SearchSpace("tiny_supernet", ops=("identity", "sep_conv_3x3", "max_pool_3x3"), num_blocks=2)
SHAPE = (8, 8, 3)


def tiny_net(**overrides):
    import keras

    keras.utils.set_random_seed(0)
    settings = dict(num_classes=3, filters=4, cells_per_stage=1, input_shape=SHAPE)
    return SuperNet(TINY, **{**settings, **overrides})


def images(n=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *SHAPE)).astype("float32")


def genotype(normal, reduction):
    """A tiny-space genotype from ((inputs, ops), (inputs, ops)) per cell."""
    cells = [CellSpec(tuple(Block(i, o) for i, o in blocks)) for blocks in (normal, reduction)]
    return Genotype(space=TINY.name, normal=cells[0], reduction=cells[1])


# normal cell reads only h_prev (input 0 unread), block 0 is read (one loose end); the reduction
# cell's block 1 reads block 0 (stride 1) and an input (stride 2): both op sets of a reduction
READS_ONE_INPUT = genotype([((1, 1), ("sep_conv_3x3", "identity")),
                            ((1, 2), ("max_pool_3x3", "sep_conv_3x3"))],
                           [((0, 1), ("identity", "max_pool_3x3")),
                            ((0, 2), ("sep_conv_3x3", "identity"))])
TWO_LOOSE_ENDS = genotype([((0, 1), ("max_pool_3x3", "identity")),
                           ((0, 0), ("sep_conv_3x3", "identity"))],
                          [((1, 1), ("sep_conv_3x3", "sep_conv_3x3")),
                           ((0, 1), ("max_pool_3x3", "identity"))])


def recalibrate(net, x, arch):
    """Give the path's batch norms this batch's statistics (as the scorer does)."""
    net([x, arch], training=True, bn_momentum=0.0)


def test_refuses_a_space_whose_blocks_concatenate():
    with pytest.raises(ValueError) as info:
        check_space("nasnet")
    message = str(info.value)
    assert "\n" not in message and "amoebanet" in message and "darts" in message
    with pytest.raises(ValueError):
        SuperNet("nasnet", filters=4, cells_per_stage=0, input_shape=SHAPE)


@pytest.mark.parametrize("options", [{}, {"loose_mean": True}], ids=["default", "loose-mean"])
@pytest.mark.parametrize("g", [READS_ONE_INPUT, TWO_LOOSE_ENDS], ids=["one-input", "two-loose"])
def test_extract_predicts_as_the_supernet(g, options):
    net = tiny_net(**options)
    x, arch = images(), net.encode(g)
    recalibrate(net, images(16, seed=1), arch)
    # the head norm (which the standalone network lacks) is not the identity: extract folds it
    assert not np.allclose(np.asarray(net.head_bn.moving_variance), 1.0)
    expected = np.asarray(net([x, arch], training=False))
    model = net.extract(g)
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, atol=1e-5)
    assert net.path_params(g) == model.count_params()


@pytest.mark.parametrize("options", [{}, {"affine_ops": True}, {"loose_mean": True}],
                         ids=["default", "affine", "loose-mean"])
def test_extract_carries_every_trained_weight(options):
    """Weights moved away from their initial values (as training moves them) reach the right
    standalone variables, with the candidate ops' batch norms affine or affine-free, and the
    head's loose-end mean folded into the classifier."""
    net = tiny_net(**options)
    rng = np.random.default_rng(3)
    for variable in net.trainable_variables:
        variable.assign(np.asarray(variable) + rng.normal(0.0, 0.1, variable.shape))
    g = TWO_LOOSE_ENDS
    x, arch = images(), net.encode(g)
    recalibrate(net, images(16, seed=1), arch)
    model = net.extract(g)
    np.testing.assert_allclose(np.asarray(model(x, training=False)),
                               np.asarray(net([x, arch], training=False)), atol=1e-5)
    assert net.path_params(g) == model.count_params()


def _candidate_op_norms(net):
    return [bn for cell in net.super_cells for op in cell.candidate_layers()
            for bn in op._flatten_layers() if bn.__class__.__name__ == "BatchNormalization"]


def test_candidate_ops_batch_norms_are_affine_free_by_default():
    free, affine = tiny_net(), tiny_net(affine_ops=True)
    norms = _candidate_op_norms(free)
    assert norms and not any(bn.scale or bn.center for bn in norms)
    assert all(bn.scale and bn.center for bn in _candidate_op_norms(affine))
    assert free.super_cells[0].preprocess1.bn.scale  # shared by every path: keeps its affine
    # each candidate op's norm lost exactly its scale and shift, nothing else went
    assert len(affine.trainable_variables) - len(free.trainable_variables) == 2 * len(norms)


@pytest.mark.parametrize("space_name", ["amoebanet", "darts", pytest.param(
    "article", marks=pytest.mark.slow)])  # article's 15 ops x 2 cells: ~50 s to build
def test_extract_in_registered_spaces(space_name):
    import keras

    keras.utils.set_random_seed(0)
    space = get_space(space_name)
    net = SuperNet(space, num_classes=3, filters=4, cells_per_stage=0, input_shape=SHAPE)
    g = space.sample(np.random.default_rng(1))
    x, arch = images(), net.encode(g)
    recalibrate(net, images(16, seed=1), arch)  # eager: only the chosen branches run
    model = net.extract(g)
    np.testing.assert_allclose(np.asarray(model(x, training=False)),
                               np.asarray(net([x, arch], training=False)), atol=1e-5)
    assert net.path_params(g) == model.count_params()


@pytest.mark.parametrize("options", [{}, {"loose_mean": True}], ids=["default", "loose-mean"])
def test_one_trace_scores_every_genotype(options):
    net = tiny_net(**options)
    predict = tf.function(lambda x, a: net([x, a], training=False))
    rng = np.random.default_rng(0)
    before = net.call_count
    outputs = [np.asarray(predict(images(), net.encode(TINY.sample(rng)))) for _ in range(4)]
    assert net.call_count - before == 1
    assert not all(np.allclose(outputs[0], o) for o in outputs[1:])  # the paths do differ


def _unchosen_layers(net, g):
    chosen = {id(layer) for layer, _, _ in _pairs(net, g)}
    everything = []
    for cell in net.super_cells:
        everything += [cell.preprocess0, cell.preprocess1, *cell.candidate_layers()]
    return [layer for layer in everything if id(layer) not in chosen]


def test_a_path_does_not_read_unchosen_weights():
    net = tiny_net()
    g = READS_ONE_INPUT
    x, arch = images(), net.encode(g)
    recalibrate(net, images(16, seed=1), arch)
    before = np.asarray(net([x, arch], training=False))
    rng = np.random.default_rng(5)
    unchosen = _unchosen_layers(net, g)
    assert any(cell.preprocess0 in unchosen for cell in net.super_cells)  # an unread input
    for layer in unchosen:
        layer.set_weights([rng.normal(size=w.shape).astype("float32") * 10
                           for w in layer.get_weights()])
    np.testing.assert_array_equal(np.asarray(net([x, arch], training=False)), before)


def test_update_groups_cover_each_variable_once_and_flag_the_path():
    net = tiny_net()
    g = READS_ONE_INPUT
    groups = net.update_groups(net.encode(g))
    members = [id(v) for _, group in groups for v, _ in group]
    assert sorted(members) == sorted(id(v) for v in net.trainable_variables)
    used = {id(v) for flag, group in groups if flag is None or bool(flag) for v, _ in group}
    path = {id(v) for layer, _, _ in _pairs(net, g) for v in layer.trainable_variables}
    assert used == path


def test_loose_mean_divides_the_classifier_input_by_the_last_cells_loose_ends():
    """The last cell is a normal one: READS_ONE_INPUT leaves one loose end there, TWO_LOOSE_ENDS
    two; the head scale is 1 / that count with ``loose_mean``, else 1, and the logits follow."""
    plain, mean = tiny_net(), tiny_net(loose_mean=True)
    assert not plain.super_cells[-1].reduction
    for g, count in ((READS_ONE_INPUT, 1), (TWO_LOOSE_ENDS, 2)):
        arch = mean.encode(g)
        assert float(np.asarray(mean.head_scale(arch))) == pytest.approx(1.0 / count)
        assert float(np.asarray(plain.head_scale(arch))) == 1.0
    x, arch = images(), mean.encode(TWO_LOOSE_ENDS)  # same weights (seeded), halved logits
    logits = [_logits(net, x, arch) for net in (plain, mean)]
    np.testing.assert_allclose(logits[1] - logits[1].mean(-1, keepdims=True),
                               0.5 * (logits[0] - logits[0].mean(-1, keepdims=True)), atol=1e-5)


def _logits(net, x, arch):
    """Log-probabilities up to a constant per row (the softmax's input, shifted)."""
    return np.log(np.asarray(net([x, arch], training=False), dtype="float64"))


def test_masks_cover_the_loose_ends_of_the_previous_cell():
    net = tiny_net()
    g = READS_ONE_INPUT  # normal cell: block 0 is read, so only block 1's channels are loose
    groups = net.update_groups(net.encode(g))
    reduction = net.super_cells[1]  # reads the normal cell (h_prev) through preprocess1
    kernel = reduction.preprocess1.convs[0].kernel
    mask = next(m for _, group in groups for v, m in group if v is kernel)
    expected = np.repeat([0.0, 1.0], net.filters)  # 4 channels per block
    np.testing.assert_array_equal(np.asarray(mask).reshape(-1), expected)
    # and the masked rows are not read: changing them leaves the path's output as it was
    x, arch = images(), net.encode(g)
    recalibrate(net, images(16, seed=1), arch)
    before = np.asarray(net([x, arch], training=False))
    values = np.asarray(kernel)
    values[:, :, expected == 0, :] = 100.0
    kernel.assign(values)
    np.testing.assert_array_equal(np.asarray(net([x, arch], training=False)), before)


def test_bad_arguments_name_the_field():
    with pytest.raises(ValueError, match="filters"):
        SuperNet(TINY, filters=1, input_shape=SHAPE)
    with pytest.raises(ValueError, match="cells_per_stage"):
        SuperNet(TINY, filters=4, cells_per_stage=-1, input_shape=SHAPE)
    with pytest.raises(ValueError, match="tiny_supernet"):
        tiny_net().encode(get_space("darts").sample(np.random.default_rng(0)))


JAX_SCRIPT = """
import numpy as np
from cells.supernet import SuperNet
from search_space import SearchSpace, register_space
space = register_space(SearchSpace("tiny_jax", ops=("identity", "sep_conv_3x3", "max_pool_3x3"),
                                   num_blocks=2))
net = SuperNet(space, num_classes=3, filters=4, cells_per_stage=1, input_shape=(8, 8, 3))
x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype("float32")
for seed in range(2):
    g = space.sample(np.random.default_rng(seed))
    expected = np.asarray(net([x, net.encode(g)], training=False))
    np.testing.assert_allclose(np.asarray(net.extract(g)(x, training=False)), expected, atol=1e-5)
import keras
print(keras.backend.backend())
"""


def test_the_supernet_is_plain_keras_jax_runs_it():
    """Model code is backend-agnostic: under JAX the switch is lax.switch, same predictions."""
    import os
    import subprocess
    import sys

    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("jax")

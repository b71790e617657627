"""One-shot search on the ``nb201`` space: ``cells.supernet_nb201.EdgeSuperNet`` (every op on
every edge of NAS-Bench-201's cells), its exact extraction, the path's variables, the TensorFlow
steps, and ``nasplay.scorers.oneshot.supernet`` training and scoring it end to end.

Tiny: 4 filters, one cell per stage, 8x8 images (the real network is 16 filters, 5 cells).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from proxy_helpers import write_image_folder

from cells.supernet import SuperNet, check_space
from cells.supernet_nb201 import EdgeSuperNet
from nasplay.errors import UserError
from nasplay.scorers.oneshot import checkpoint as ckpt
from nasplay.scorers.oneshot import engine_tf as oneshot_tf
from nasplay.scorers.oneshot.supernet import (OneShotConfig, OneShotScorer, cached_scorer,
                                              train_supernet)
from search_space import get_space

NB201 = get_space("nb201")
SHAPE = (8, 8, 3)
REPO = Path(__file__).resolve().parents[1]
# every op on some edge; node 3 reads node 1 through `none`, node 2 through a pool
EVERY_OP = NB201.from_arch_str("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+"
                               "|avg_pool_3x3~0|none~1|avg_pool_3x3~2|")
ALL_NONE = NB201.from_arch_str("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
CONVS = NB201.from_arch_str("|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                            "|nor_conv_1x1~0|skip_connect~1|nor_conv_3x3~2|")


def tiny_net(**overrides):
    import keras

    keras.utils.set_random_seed(0)
    settings = dict(num_classes=3, filters=4, cells_per_stage=1, input_shape=SHAPE)
    return EdgeSuperNet(NB201, **{**settings, **overrides})


def images(n=6, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *SHAPE)).astype("float32")


def recalibrate(net, arch):
    """The path's batch norms get one batch's statistics (as the scorer does)."""
    net([images(16, seed=1), arch], training=True, bn_momentum=0.0)


def path_variables(net, g) -> set[int]:
    return {id(v) for layer, _ in net._pairs(g) for v in layer.trainable_variables}


# -- the model -------------------------------------------------------------------------------


@pytest.mark.parametrize("options", [{}, {"affine_ops": True}], ids=["affine-free", "affine"])
@pytest.mark.parametrize("g", [EVERY_OP, ALL_NONE, CONVS], ids=["every-op", "all-none", "convs"])
def test_extract_predicts_as_the_supernet(g, options):
    """Weights moved off their initial values (as training moves them) reach the standalone
    ``cells.build_network(g)``, whose inference outputs are the supernet's on that path."""
    net = tiny_net(**options)
    rng = np.random.default_rng(3)
    for variable in net.trainable_variables:
        variable.assign(np.asarray(variable) + rng.normal(0.0, 0.1, variable.shape))
    x, arch = images(), net.encode(g)
    recalibrate(net, arch)
    model = net.extract(g)
    expected = np.asarray(net([x, arch], training=False))
    np.testing.assert_allclose(np.asarray(model(x, training=False)), expected, atol=1e-6)
    assert net.path_params(g) == model.count_params()


def test_candidate_ops_batch_norms_are_affine_free_by_default():
    def candidate_norms(net):
        return [bn for cell in net.super_cells for per_edge in cell.candidates()
                for op in per_edge for bn in op._flatten_layers()
                if bn.__class__.__name__ == "BatchNormalization"]

    free, affine = tiny_net(), tiny_net(affine_ops=True)
    assert candidate_norms(free) and not any(bn.scale or bn.center
                                             for bn in candidate_norms(free))
    assert all(bn.scale and bn.center for bn in candidate_norms(affine))
    assert free.head_bn.scale and free.stages[1].conv_a.bn.scale  # on every path: affine
    # a cell per stage, 6 edges, 2 ops with a norm each (the two convolutions)
    assert len(candidate_norms(free)) == 3 * 6 * 2


def test_update_groups_cover_each_variable_once_and_flag_exactly_the_path():
    net = tiny_net()
    for g in (EVERY_OP, ALL_NONE, CONVS):
        groups = net.update_groups(net.encode(g))
        members = [id(v) for _, group in groups for v, _ in group]
        assert sorted(members) == sorted(id(v) for v in net.trainable_variables)
        assert all(mask is None for _, group in groups for _, mask in group)
        used = {id(v) for flag, group in groups if flag is None or bool(flag) for v, _ in group}
        assert used == path_variables(net, g)


def test_a_path_does_not_read_unchosen_weights():
    net = tiny_net()
    g = EVERY_OP
    x, arch = images(), net.encode(g)
    recalibrate(net, arch)
    before = np.asarray(net([x, arch], training=False))
    path = path_variables(net, g)
    rng = np.random.default_rng(5)
    unchosen = [v for v in net.trainable_variables if id(v) not in path]
    assert unchosen
    for v in unchosen:
        v.assign(rng.normal(size=v.shape).astype("float32") * 10)
    np.testing.assert_array_equal(np.asarray(net([x, arch], training=False)), before)


def test_one_trace_scores_every_genotype():
    import tensorflow as tf

    net = tiny_net()
    predict = tf.function(lambda x, a: net([x, a], training=False))
    rng = np.random.default_rng(0)
    before = net.call_count
    outputs = [np.asarray(predict(images(), net.encode(NB201.sample(rng)))) for _ in range(4)]
    assert net.call_count - before == 1
    assert not all(np.allclose(outputs[0], o) for o in outputs[1:])  # the paths do differ


def test_supernet_kinds_refuse_each_others_spaces_in_one_line():
    assert check_space("nb201") is NB201
    with pytest.raises(ValueError) as info:
        check_space("nasnet")
    assert "nb201" in str(info.value) and "darts" in str(info.value)
    with pytest.raises(ValueError, match="edges") as info:
        SuperNet("nb201", filters=4, cells_per_stage=0, input_shape=SHAPE)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="amoebanet"):
        EdgeSuperNet("amoebanet", filters=4, cells_per_stage=0, input_shape=SHAPE)
    with pytest.raises(ValueError, match="loose_mean"):
        tiny_net(loose_mean=True)
    with pytest.raises(ValueError, match="nb201"):
        tiny_net().encode(get_space("darts").sample(np.random.default_rng(0)))
    net = ckpt.new_supernet("nb201", num_classes=3, filters=4, cells_per_stage=0,
                            input_shape=SHAPE)
    assert isinstance(net, EdgeSuperNet) and net.arch_length == 6
    assert isinstance(ckpt.new_supernet("darts", num_classes=3, filters=4, cells_per_stage=0,
                                        input_shape=SHAPE), SuperNet)


# -- training on TensorFlow ------------------------------------------------------------------


def test_training_steps_move_only_the_paths_weights_and_momentum():
    net = tiny_net()
    optimizer = oneshot_tf.MaskedSGD(net.trainable_variables, 0.9, 3e-4)
    optimizer.learning_rate.assign(0.1)
    train_step, _ = oneshot_tf.compile_steps(net, optimizer, batch_size=8)
    rng = np.random.default_rng(0)
    x, y = images(8), rng.integers(0, 3, 8).astype("int32")
    losses = [float(train_step(x, y, net.encode(NB201.sample(rng)))[0]) for _ in range(3)]
    assert all(np.isfinite(losses))
    g = CONVS
    before = {id(v): v.numpy() for v in net.trainable_variables}
    slots = optimizer.slot_arrays()
    train_step(x, y, net.encode(g))
    assert net.call_count == 1  # one trace for every path
    path = path_variables(net, g)
    moved = {id(v) for v in net.trainable_variables if not np.array_equal(v.numpy(),
                                                                          before[id(v)])}
    assert moved and moved <= path
    for variable, slot, old in zip(optimizer.variables, optimizer.slot_arrays(), slots):
        if id(variable) not in path:
            np.testing.assert_array_equal(slot, old)


def _standalone_counterparts(net, model, g):
    """``[(supernet variable, standalone variable)]`` of ``g``'s path: the same layers in the same
    order, less the standalone candidate norms' scale and shift (the supernet's are affine-free,
    so they have nothing to pair with)."""
    pairs = []
    for source, locator in net._pairs(g):
        target = model.get_layer(locator[0])
        if len(locator) == 3:
            target = target.edge_ops[locator[1]][locator[2]]
        mine, theirs = list(source.trainable_variables), list(target.trainable_variables)
        if len(theirs) != len(mine):
            theirs = [v for v in theirs if not v.path.endswith(("gamma", "beta"))]
        assert [tuple(v.shape) for v in mine] == [tuple(v.shape) for v in theirs], locator
        pairs += zip(mine, theirs)
    return pairs


def test_a_training_step_moves_the_path_by_the_standalone_networks_gradient():
    """The traced step (switches, fused batch norms, masked SGD) is plain SGD on the standalone
    network of the path: with no momentum or decay, every weight of the path moves by
    -lr x its gradient in ``cells.build_network(g)`` (extracted before the step), two cells a
    stage deep. A defect in the supernet's gradients would show here, not only as a poor
    ranking."""
    import keras
    import tensorflow as tf

    g = EVERY_OP
    net = tiny_net(cells_per_stage=2)
    x, y = images(8, seed=4), np.random.default_rng(4).integers(0, 3, 8).astype("int32")
    model = net.extract(g)
    pairs = _standalone_counterparts(net, model, g)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            y, model(x, training=True)))
    grads = dict(zip([id(v) for v in model.trainable_variables],
                     tape.gradient(loss, model.trainable_variables)))
    optimizer = oneshot_tf.MaskedSGD(net.trainable_variables, 0.0, 0.0)
    lr = 0.01
    optimizer.learning_rate.assign(lr)
    train_step, _ = oneshot_tf.compile_steps(net, optimizer, batch_size=8)
    before = [np.asarray(mine) for mine, _ in pairs]
    step_loss, _ = train_step(x, y, net.encode(g))
    np.testing.assert_allclose(float(step_loss), float(loss), rtol=1e-5)
    assert len(pairs) >= 20
    for (mine, theirs), old in zip(pairs, before):
        expected = -lr * np.asarray(grads[id(theirs)])
        np.testing.assert_allclose(np.asarray(mine) - old, expected, rtol=2e-3,
                                   atol=1e-6 * lr + 1e-3 * np.abs(expected).max(),
                                   err_msg=mine.path)


# -- nasplay.scorers.oneshot.supernet end to end
# --------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NASPLAY_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield write_image_folder(tmp_path_factory.mktemp("images"), per_class=24, size=8)


def tiny_config(folder, **overrides) -> OneShotConfig:
    settings = dict(data=str(folder), train_size=48, val_size=32, epochs=2, batch_size=8,
                    filters=4, cells_per_stage=1, recalibration_batches=2, cpus=2)
    return OneShotConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def trained(folder, tmp_path_factory):
    config = tiny_config(folder)
    directory = tmp_path_factory.mktemp("supernet")
    supernet = train_supernet(NB201.name, config, directory, verbose=0)
    return config, directory, supernet


def test_oneshot_trains_an_nb201_supernet_and_scores_its_genotypes(trained):
    import keras

    config, directory, supernet = trained
    assert isinstance(supernet, EdgeSuperNet)
    meta = json.loads((directory / ckpt.META_FILE).read_text())
    assert meta["space"] == "nb201" and meta["epochs_done"] == 2
    assert all(np.isfinite(h["loss"]) for h in meta["history"])
    scorer = cached_scorer(directory, config, NB201.name)  # loaded from the checkpoint
    assert isinstance(scorer.supernet, EdgeSuperNet) and scorer.supernet is not supernet
    for a, b in zip(scorer.supernet.get_weights(), supernet.get_weights()):
        np.testing.assert_array_equal(a, b)
    metrics = scorer.score(EVERY_OP)  # leaves the path's recalibrated statistics in place
    model = scorer.supernet.extract(EVERY_OP)
    assert metrics["params"] == model.count_params()
    probs = np.asarray(model.predict(scorer.x_val, verbose=0))
    assert metrics["oneshot_accuracy"] == np.mean(probs.argmax(-1) == scorer.y_val)
    loss = keras.losses.sparse_categorical_crossentropy(scorer.y_val, probs)
    np.testing.assert_allclose(metrics["oneshot_loss"], float(np.mean(loss)), rtol=1e-4)
    assert scorer.score(CONVS)["oneshot_accuracy"] >= 0.0
    assert scorer.score(EVERY_OP)["oneshot_accuracy"] == metrics["oneshot_accuracy"]


@pytest.mark.slow  # traces the fine-tuning's training step: ~22 s here
def test_finetuned_nb201_scores_restore_the_inherited_weights(trained):
    config, _, supernet = trained
    scorer = OneShotScorer(supernet, config.replace(finetune_steps=2))
    before = [w.copy() for w in supernet.get_weights()]
    first = scorer.score(CONVS)
    assert 0.0 < first["oneshot_finetune_loss"] < 10.0
    assert scorer.score(CONVS)["oneshot_accuracy"] == first["oneshot_accuracy"]
    trainable = {id(v) for v in supernet.trainable_variables}
    for variable, value in zip(supernet.weights, before):
        if id(variable) in trainable:  # the moving statistics are the last path's, by design
            np.testing.assert_array_equal(np.asarray(variable), value)


def test_grow_from_copies_each_stages_cell_into_every_cell_of_the_stage():
    import keras

    shallow, deep = tiny_net(), tiny_net(cells_per_stage=3)
    rng = np.random.default_rng(5)
    for variable in shallow.weights:  # trained-looking weights and statistics
        variable.assign(np.asarray(variable) + rng.normal(0.0, 0.1, variable.shape))
    deep.grow_from(shallow)
    for mine, theirs in zip(deep._by_stage(), shallow._by_stage(), strict=True):
        assert len(mine["cells"]) == 3 and len(theirs["cells"]) == 1
        for cell in mine["cells"]:
            for a, b in zip(cell.weights, theirs["cells"][0].weights, strict=True):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        if theirs["reduction"] is not None:
            for a, b in zip(mine["reduction"].weights, theirs["reduction"].weights, strict=True):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for name in ("stem_conv", "stem_bn", "head_bn", "classifier"):
        for a, b in zip(getattr(deep, name).weights, getattr(shallow, name).weights, strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # the cells are copies, not one layer: training one leaves the others
    deep.super_cells[1].weights[0].assign(np.zeros(deep.super_cells[1].weights[0].shape))
    assert np.abs(np.asarray(deep.super_cells[0].weights[0])).sum() > 0
    with pytest.raises(ValueError, match="filters"):
        tiny_net(filters=8, cells_per_stage=3).grow_from(shallow)
    with pytest.raises(ValueError, match="cannot seed"):
        shallow.grow_from(deep)
    keras.backend.clear_session()


def test_shallow_epochs_train_a_one_cell_supernet_then_grow_it(folder, tmp_path, monkeypatch):
    """``shallow_epochs``: the one-cell supernet trains (and is kept) in DIR/shallow, the deep
    one starts from it; a finished run is loaded, not grown again."""
    from nasplay.scorers.oneshot.train import SHALLOW_DIR, shallow_config

    grown = []
    original = EdgeSuperNet.grow_from

    def spy(self, shallow):
        grown.append([np.asarray(w).copy() for w in shallow.get_weights()])
        return original(self, shallow)

    monkeypatch.setattr(EdgeSuperNet, "grow_from", spy)
    config = tiny_config(folder, cells_per_stage=2, shallow_epochs=2, shallow_learning_rate=0.1,
                         epochs=1, learning_rate=0.02)
    directory = tmp_path / "grown"
    supernet = train_supernet(NB201.name, config, directory, verbose=0)
    assert supernet.cells_per_stage == 2 and len(grown) == 1
    shallow_meta = ckpt.read_meta(directory / SHALLOW_DIR)
    assert (shallow_meta["cells_per_stage"], shallow_meta["epochs_done"],
            shallow_meta["learning_rate"]) == (1, 2, 0.1)
    assert shallow_config(config).cells_per_stage == 1
    shallow = ckpt.read(directory / SHALLOW_DIR)
    for a, b in zip(grown[0], shallow.weights, strict=True):  # it grew from the trained one
        np.testing.assert_array_equal(a, b)
    meta = ckpt.read_meta(directory)
    assert (meta["cells_per_stage"], meta["shallow_epochs"], meta["epochs_done"]) == (2, 2, 1)
    train_supernet(NB201.name, config, directory, verbose=0)   # finished: loaded as it is
    assert len(grown) == 1
    scorer = OneShotScorer(ckpt.load_supernet(directory), config)
    assert 0.0 <= scorer.score(CONVS)["oneshot_accuracy"] <= 1.0


def test_growing_in_one_call_gives_the_supernet_grown_from_a_separate_shallow_one(folder,
                                                                                  tmp_path):
    """``benchmarks/nb201_oneshot.py --deepen-from DIR`` (a shallow supernet trained on its own,
    grown into an epoch-0 checkpoint, trained on) and ``shallow_epochs`` (both phases in one
    call) train the same weights: BENCHMARKS.md's figure came from the first, users get the
    second."""
    sys.path.insert(0, str(REPO))
    from benchmarks.nb201_oneshot import deepen
    from nasplay.scorers.oneshot.train import shallow_config

    config = tiny_config(folder, cells_per_stage=2, shallow_epochs=1, epochs=1,
                         learning_rate=0.02)
    one_call = train_supernet(NB201.name, config, tmp_path / "one", verbose=0)
    train_supernet(NB201.name, shallow_config(config), tmp_path / "shallow", verbose=0)
    deepen(tmp_path / "shallow", config, tmp_path / "two")
    two_steps = train_supernet(NB201.name, config, tmp_path / "two", verbose=0)
    for a, b in zip(one_call.get_weights(), two_steps.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("space, overrides, message", [
    ("nb201", {"cells_per_stage": 1, "shallow_epochs": 2}, "nothing to grow into"),
    ("nb201", {"cells_per_stage": 2, "shallow_epochs": -1}, "shallow_epochs must be"),
    ("nb201", {"cells_per_stage": 2, "shallow_epochs": 1, "shallow_learning_rate": 0.0},
     "shallow_learning_rate must be"),
    ("amoebanet", {"cells_per_stage": 2, "shallow_epochs": 1}, "spaces of ops on edges"),
])
def test_bad_shallow_settings_are_refused_in_one_line_before_anything_is_written(
        folder, tmp_path, space, overrides, message):
    with pytest.raises(UserError, match=message) as info:
        train_supernet(space, tiny_config(folder, **overrides), tmp_path / "s", verbose=0)
    assert "\n" not in str(info.value) and not (tmp_path / "s").exists()


def test_loose_mean_is_refused_for_nb201_before_anything_is_written(folder, tmp_path):
    with pytest.raises(UserError, match="loose_mean") as info:
        train_supernet(NB201.name, tiny_config(folder, loose_mean=True), tmp_path / "s",
                       verbose=0)
    assert "\n" not in str(info.value) and not (tmp_path / "s").exists()


TORCH_SCRIPT = """
import numpy as np
from cells.supernet_nb201 import EdgeSuperNet
from nasplay.scorers.oneshot import engine_torch as oneshot_torch
from search_space import get_space
import keras
keras.utils.set_random_seed(0)
space = get_space("nb201")
net = EdgeSuperNet(space, num_classes=3, filters=4, cells_per_stage=1, input_shape=(8, 8, 3))
optimizer = oneshot_torch.MaskedSGD(net.trainable_variables, 0.9, 3e-4)
optimizer.learning_rate.assign(0.1)
train_step, _ = oneshot_torch.compile_steps(net, optimizer)
rng = np.random.default_rng(0)
x = rng.normal(size=(8, 8, 8, 3)).astype("float32")
y = rng.integers(0, 3, 8).astype("int32")
train_step(x, y, net.encode(space.sample(rng)))
g = space.from_arch_str("|nor_conv_1x1~0|+|nor_conv_3x3~0|none~1|+|avg_pool_3x3~0|"
                        "skip_connect~1|nor_conv_3x3~2|")
before = {id(v): keras.ops.convert_to_numpy(v) for v in net.trainable_variables}
loss, _ = train_step(x, y, net.encode(g))
path = {id(v) for layer, _ in net._pairs(g) for v in layer.trainable_variables}
moved = {id(v) for v in net.trainable_variables
         if not np.array_equal(keras.ops.convert_to_numpy(v), before[id(v)])}
assert np.isfinite(float(loss)) and moved and moved <= path, (len(moved), len(moved - path))
recalibrate, predict = oneshot_torch.compile_scoring(net)
recalibrate(x, net.encode(g), 0.0)
np.testing.assert_allclose(keras.ops.convert_to_numpy(net.extract(g)(x, training=False)),
                           predict(x, net.encode(g)), atol=1e-5)
print(keras.backend.backend())
"""


@pytest.mark.slow  # a child process importing Keras on PyTorch: ~20 s here
def test_the_torch_engine_trains_and_extracts_an_nb201_supernet():
    """Plain Keras: on PyTorch (eager, only the chosen branches run) a step moves only the
    path's weights and the extracted network predicts as the supernet."""
    pytest.importorskip("torch")
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(REPO), *sys.path])}
    done = subprocess.run([sys.executable, "-c", TORCH_SCRIPT], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("torch")

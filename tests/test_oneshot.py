"""nasplay.scorers.oneshot.supernet: settings, supernet training (masked SGD, repeatable,
resumable), checkpoints and their checks, scoring with BN recalibration, the process-wide scorer
cache.

Fast tests train a tiny space (2 ops, 2 blocks, two reduction cells, 4 filters) on a synthetic
8x8 image folder; CIFAR-10 and a real ``kill -9`` are in slow tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from proxy_helpers import write_image_folder

from nasplay.scorers.oneshot import checkpoint as ckpt
from nasplay.scorers.oneshot import engine_tf as oneshot_tf
from nasplay.scorers.oneshot import train as oneshot_train
from nasplay.errors import UserError
from nasplay.scorers.oneshot.supernet import (OneShotConfig, OneShotScorer, cached_scorer,
                                              expected_meta, load_supernet, train_supernet)
from search_space import SearchSpace, get_space

TINY = SearchSpace("tiny_oneshot", ops=("identity", "conv_3x3"), num_blocks=2)


@pytest.fixture(scope="module", autouse=True)
def tiny_space(module_registries):
    """TINY registered for this module's tests (train_supernet looks it up by name)."""
    return module_registries(TINY)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NASPLAY_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield write_image_folder(tmp_path_factory.mktemp("images"), per_class=24, size=8)


def tiny_config(folder, **overrides) -> OneShotConfig:
    settings = dict(data=str(folder), train_size=48, val_size=32, epochs=2, batch_size=8,
                    filters=4, cells_per_stage=0, recalibration_batches=2, cpus=2)
    return OneShotConfig(**{**settings, **overrides})


@pytest.fixture(scope="module")
def trained_once(folder, tmp_path_factory):
    """One uninterrupted tiny training, shared by the module's tests (through ``trained``)."""
    config = tiny_config(folder)
    directory = tmp_path_factory.mktemp("supernet")
    supernet = train_supernet(TINY.name, config, directory, verbose=0)
    return config, directory, supernet


@pytest.fixture
def trained(trained_once):
    """``(config, directory, supernet)`` of that training. A score recalibrates the batch norms
    of its path in place, so the supernet's weights are put back after each test: the tests that
    compare weights with it pass whichever tests scored before them."""
    supernet = trained_once[2]
    weights = supernet.get_weights()
    yield trained_once
    supernet.set_weights(weights)


@pytest.mark.parametrize("field, value", [
    ("epochs", 0), ("batch_size", 0), ("sampler", "greedy"), ("learning_rate", 0.0),
    ("momentum", 1.0), ("weight_decay", -1e-4), ("filters", 1), ("recalibration_batches", 0),
    ("train_size", 4), ("finetune_steps", -1), ("finetune_learning_rate", 0.0),
    ("affine_ops", "no"), ("loose_mean", 1)])
def test_check_names_the_field(folder, field, value):
    with pytest.raises(UserError) as info:
        tiny_config(folder, **{field: value}).check()
    assert field in str(info.value) and "\n" not in str(info.value)


def test_a_concatenating_space_is_refused_in_one_line(folder, tmp_path):
    with pytest.raises(UserError) as info:
        train_supernet("nasnet", tiny_config(folder), tmp_path / "s", verbose=0)
    assert "nasnet" in str(info.value) and "\n" not in str(info.value)


def test_checkpoint_records_what_was_trained(trained):
    config, directory, _ = trained
    meta = json.loads((directory / ckpt.META_FILE).read_text())
    assert meta["epochs_done"] == config.epochs == len(meta["history"])
    assert {k: meta[k] for k in expected_meta(TINY.name, config)} == \
        expected_meta(TINY.name, config)
    assert ckpt.read(directory).meta == meta


def test_resumed_training_ends_with_the_uninterrupted_weights(trained, tmp_path, monkeypatch):
    config, _, supernet = trained
    directory = tmp_path / "interrupted"
    epoch = oneshot_train._Steps.epoch

    def stop_in_the_second_epoch(self, e):
        if e == 1:
            raise KeyboardInterrupt  # as a kill would, after epoch 1's checkpoint
        return epoch(self, e)

    monkeypatch.setattr(oneshot_train._Steps, "epoch", stop_in_the_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(TINY.name, config, directory, verbose=0)
    assert ckpt.read(directory).meta["epochs_done"] == 1
    monkeypatch.setattr(oneshot_train._Steps, "epoch", epoch)
    resumed = train_supernet(TINY.name, config, directory, verbose=0)
    for a, b in zip(resumed.get_weights(), supernet.get_weights()):
        np.testing.assert_array_equal(a, b)  # same seed, same data order, same paths


def test_a_finished_run_is_loaded_not_trained_again(trained, monkeypatch):
    config, directory, supernet = trained

    def fail(*args):
        raise AssertionError("trained again")

    monkeypatch.setattr(oneshot_train._Steps, "epoch", fail)
    loaded = train_supernet(TINY.name, config, directory, verbose=0)
    for a, b in zip(loaded.get_weights(), supernet.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_resume_refuses_other_training_settings(trained):
    config, directory, _ = trained
    with pytest.raises(UserError, match="learning_rate"):
        train_supernet(TINY.name, config.replace(learning_rate=0.1), directory, verbose=0)


@pytest.mark.parametrize("change, field", [
    ({"space": "darts"}, "space"), ({"filters": 8}, "filters"), ({"data": "/elsewhere"}, "data"),
    ({"train_size": 64}, "train_size")])
def test_load_refuses_another_space_width_or_data(trained, change, field):
    config, directory, _ = trained
    expect = {**expected_meta(TINY.name, config), **change}
    with pytest.raises(UserError, match=field) as info:
        load_supernet(directory, expect=expect)
    assert "\n" not in str(info.value)


def test_load_refuses_missing_partial_and_corrupt_checkpoints(trained, tmp_path):
    _, directory, _ = trained
    with pytest.raises(UserError, match="no such directory"):
        load_supernet(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="missing"):
        load_supernet(tmp_path / "empty")
    partial = tmp_path / "partial"
    partial.mkdir()
    checkpoint = ckpt.read(directory)
    meta = {**checkpoint.meta, "epochs_done": 1}
    supernet = load_supernet(directory)
    ckpt.save(partial, supernet, checkpoint.slots, meta)
    with pytest.raises(UserError, match="1 of 2 epochs"):
        load_supernet(partial)
    assert load_supernet(partial, allow_partial=True) is not None
    older = tmp_path / "older"  # a supernet of an earlier format (before the head norm)
    older.mkdir()
    ckpt.save(older, supernet, checkpoint.slots, {**checkpoint.meta, "format": ckpt.FORMAT - 1})
    with pytest.raises(UserError, match="format") as info:
        load_supernet(older)
    assert "\n" not in str(info.value) and "train a new one" in str(info.value)
    (partial / ckpt.WEIGHTS_FILE).write_bytes(b"not a zip file")
    with pytest.raises(UserError, match="corrupt") as info:
        load_supernet(partial)
    assert "\n" not in str(info.value)


def test_a_supernet_saved_before_affine_ops_loads_with_affine_ops(folder, tmp_path):
    """Checkpoints written before the field existed had affine candidate ops: they load as such,
    and a run with today's default (affine-free) refuses to resume them."""
    config = tiny_config(folder, epochs=1, affine_ops=True)
    directory = tmp_path / "old"
    trained = train_supernet(TINY.name, config, directory, verbose=0)
    assert trained.affine_ops
    checkpoint = ckpt.read(directory)
    later = ("affine_ops", "loose_mean")  # fields added to format 2 since
    old_meta = {k: v for k, v in checkpoint.meta.items() if k not in later}
    ckpt.save(directory, trained, checkpoint.slots, old_meta)
    assert not set(later) & set(json.loads((directory / ckpt.META_FILE).read_text()))
    loaded = load_supernet(directory)
    assert loaded.affine_ops and len(loaded.weights) == len(trained.weights)
    assert not loaded.loose_mean  # as every supernet before the option
    for a, b in zip(loaded.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(UserError, match="affine_ops") as info:
        train_supernet(TINY.name, config.replace(affine_ops=False), directory, verbose=0)
    assert "\n" not in str(info.value)


def _variables(supernet):
    return {id(v): v.numpy() for v in supernet.trainable_variables}


def test_unchosen_weights_and_their_momentum_do_not_move():
    import keras

    from cells.supernet import SuperNet
    from cells.supernet_paths import _pairs

    keras.utils.set_random_seed(0)
    supernet = SuperNet(TINY, num_classes=4, filters=4, cells_per_stage=0, input_shape=(8, 8, 3))
    optimizer = oneshot_tf.MaskedSGD(supernet.trainable_variables, 0.9, 3e-4)
    optimizer.learning_rate.assign(0.1)
    train_step, _ = oneshot_tf.compile_steps(supernet, optimizer)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 4, 8).astype("int32")
    for _ in range(2):  # momentum on every op of some path
        train_step(x, y, supernet.encode(TINY.sample(rng)))
    g = TINY.sample(rng)
    before, slots = _variables(supernet), optimizer.slot_arrays()
    train_step(x, y, supernet.encode(g))
    path = {id(v) for layer, _, _ in _pairs(supernet, g) for v in layer.trainable_variables}
    moved = {k for k, v in _variables(supernet).items() if not np.array_equal(v, before[k])}
    assert moved and moved <= path
    for variable, slot, old in zip(optimizer.variables, optimizer.slot_arrays(), slots):
        if id(variable) not in path:
            np.testing.assert_array_equal(slot, old)


def test_masked_sgd_is_keras_sgd_on_used_variables_and_rows_only():
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    start = [rng.normal(size=(3, 2)).astype("float32") for _ in range(3)]
    used, unused, rows = (keras.Variable(a) for a in start)
    optimizer = oneshot_tf.MaskedSGD([used, unused, rows], momentum=0.9, weight_decay=0.1)
    row_mask = tf.constant([[1.0], [0.0], [1.0]])  # the middle row is not read by this path
    reference = [a.copy() for a in start]
    buffers = [np.zeros_like(a) for a in start]
    for lr in (0.5, 0.3, 0.1):  # a schedule: the learning rate changes
        grads = [rng.normal(size=(3, 2)).astype("float32") for _ in range(3)]
        grads[1] = np.zeros_like(grads[1])  # an unchosen branch's gradient is zero
        grads[2][1] = 0.0
        optimizer.learning_rate.assign(lr)
        optimizer.apply([tf.constant(g) for g in grads],
                        [(None, [(used, None)]), (tf.constant(False), [(unused, None)]),
                         (tf.constant(True), [(rows, row_mask)])])
        for k in (0, 2):  # Keras's SGD(nesterov) after decoupled decay, on the kept rows
            keep = slice(None) if k == 0 else [0, 2]
            reference[k][keep] -= lr * 0.1 * reference[k][keep]
            buffers[k][keep] = 0.9 * buffers[k][keep] - lr * grads[k][keep]
            reference[k][keep] += 0.9 * buffers[k][keep] - lr * grads[k][keep]
        for k, variable in enumerate((used, unused, rows)):
            np.testing.assert_allclose(np.asarray(variable), reference[k], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(unused), start[1])
    np.testing.assert_array_equal(np.asarray(rows)[1], start[2][1])
    assert not np.array_equal(np.asarray(used), start[0])


def test_a_fused_batch_norm_computes_what_keras_batch_norm_does():
    import keras
    import tensorflow as tf

    from nasplay.runtime._internals.fused_batch_norm import fuse_batch_norms

    rng = np.random.default_rng(0)
    x = tf.constant(3.0 * rng.normal(size=(6, 5, 5, 4)) + 1.0, tf.float32)
    norms = []
    for _ in range(2):
        norm = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3)
        norm.build(x.shape)
        norm.gamma.assign(rng.normal(size=4).astype("float32"))
        norm.beta.assign(np.arange(4, dtype="float32"))
        norms.append(norm)
    keras_norm, fused_norm = norms
    fused_norm.gamma.assign(keras_norm.gamma)
    fused_norm.beta.assign(keras_norm.beta)
    model = keras.Sequential([keras.Input((5, 5, 4)), fused_norm])
    assert fuse_batch_norms(model) == 1
    assert fuse_batch_norms(model) == 0  # once is enough
    results = []
    for norm in norms:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = norm(x, training=True)
            loss = tf.reduce_sum(y * tf.range(4, dtype=tf.float32))
        grads = tape.gradient(loss, [x, norm.gamma, norm.beta])
        norm.momentum = tf.constant(0.0)  # the recalibration's first batch: a tensor momentum
        norm(x * 2.0, training=True)
        norm.momentum = 0.9
        results.append([y, *grads, norm.moving_mean, norm.moving_variance,
                        norm(x, training=False)])
    for keras_value, fused_value in zip(*results):
        np.testing.assert_allclose(np.asarray(fused_value), np.asarray(keras_value),
                                   rtol=1e-4, atol=1e-4)
    # the moving variance is the batch's biased one, as Keras keeps it
    np.testing.assert_allclose(np.asarray(fused_norm.moving_variance),
                               np.var(2.0 * np.asarray(x), axis=(0, 1, 2)), rtol=1e-4)


def test_a_batch_norm_fused_for_inference_normalizes_with_the_moving_statistics():
    import keras
    import tensorflow as tf

    from nasplay.runtime._internals.fused_batch_norm import fuse_batch_norms

    rng = np.random.default_rng(1)
    x = tf.constant(2.0 * rng.normal(size=(6, 5, 5, 4)) - 1.0, tf.float32)
    norms = []
    for _ in range(2):
        norm = keras.layers.BatchNormalization(epsilon=1e-3)
        norm.build(x.shape)
        norms.append(norm)
    for a, b in zip(*(n.weights for n in norms)):
        value = rng.uniform(0.5, 2.0, size=a.shape).astype("float32")
        a.assign(value)
        b.assign(value)
    keras_norm, fused_norm = norms
    model = keras.Sequential([keras.Input((5, 5, 4)), fused_norm])
    assert fuse_batch_norms(model) == 1  # training mode only: inference stays Keras's
    assert fuse_batch_norms(model, inference=True) == 1
    assert fuse_batch_norms(model, inference=True) == 0
    graph = tf.function(lambda v: fused_norm(v, training=False)).get_concrete_function(
        tf.TensorSpec(x.shape)).graph.as_graph_def()
    assert "FusedBatchNormV3" in [n.op for n in graph.node]
    expected = np.asarray(keras_norm(x, training=False))
    np.testing.assert_allclose(np.asarray(fused_norm(x, training=False)), expected,
                               rtol=1e-5, atol=1e-5)
    assert not np.allclose(expected, np.asarray(x))  # the statistics did something


def test_the_traced_training_step_runs_fused_batch_norms():
    import keras
    import tensorflow as tf

    from cells.supernet import SuperNet

    keras.utils.set_random_seed(0)
    supernet = SuperNet(TINY, num_classes=4, filters=4, cells_per_stage=0, input_shape=(8, 8, 3))
    optimizer = oneshot_tf.MaskedSGD(supernet.trainable_variables, 0.9, 3e-4)
    train_step, _ = oneshot_tf.compile_steps(supernet, optimizer, batch_size=8)
    graph = train_step.get_concrete_function().graph.as_graph_def()
    types = [n.op for n in graph.node] + [n.op for f in graph.library.function
                                          for n in f.node_def]
    assert types.count("FusedBatchNormV3") > 10 and "FusedBatchNormGradV3" in types
    assert types.count("SquaredDifference") == 1  # Keras's own moments: the 2-D head norm only


def test_a_recomputed_max_pool_gradient_is_keras_max_pool_gradient_inside_switches():
    import keras
    import tensorflow as tf

    from nasplay.runtime._internals.max_pool_grad import recompute_max_pool_grads

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, 7, 7, 3)), tf.float32)
    pools = [keras.layers.MaxPooling2D(3, strides=s, padding="same") for s in (1, 2, 2)]
    model = keras.Sequential([keras.Input((7, 7, 3)), pools[0], pools[1]])
    assert recompute_max_pool_grads(model) == 2
    assert recompute_max_pool_grads(model) == 0  # once is enough
    keras_pool = pools[2]  # the same pool, left as Keras has it

    @tf.function
    def grads(pool, outer, inner):
        with tf.GradientTape() as tape:
            tape.watch(x)
            # a switch inside a switch, as in a reduction cell of the supernet
            y = tf.switch_case(outer, [lambda: tf.switch_case(inner, [lambda: pool(x * 2.0),
                                                                       lambda: x]),
                                       lambda: x * 3.0])
            loss = tf.reduce_sum(y * tf.range(3, dtype=tf.float32))
        return y, tape.gradient(loss, x)

    changed, unchanged = (grads(pool, tf.constant(0), tf.constant(0))
                          for pool in (pools[1], keras_pool))
    for a, b in zip(changed, unchanged):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    assert np.count_nonzero(np.asarray(changed[1])) > 0


def test_the_training_step_runs_without_memory_scheduling():
    import tensorflow as tf
    from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
    from tensorflow.python.eager import context

    from nasplay.runtime._internals.graph_options import WithoutMemoryScheduling

    def memory_optimization():
        config = config_pb2.ConfigProto()
        config.ParseFromString(context.context().function_call_options.config_proto_serialized)
        return config.graph_options.rewrite_options.memory_optimization

    before = memory_optimization()
    step = WithoutMemoryScheduling(lambda value: (memory_optimization(), value * 2))
    seen, doubled = step(tf.constant(3.0))
    assert seen == rewriter_config_pb2.RewriterConfig.NO_MEM_OPT != before
    assert float(doubled) == 6.0
    assert memory_optimization() == before  # the thread's options restored
    with pytest.raises(ZeroDivisionError):
        WithoutMemoryScheduling(lambda: 1 / 0)()
    assert memory_optimization() == before  # restored after an error too

    traced = WithoutMemoryScheduling(tf.function(lambda v: v + 1.0))
    assert float(traced(tf.constant(1.0))) == 2.0
    assert traced.get_concrete_function(tf.TensorSpec((), tf.float32)) is not None


def test_scores_do_not_depend_on_what_was_scored_before(trained):
    config, _, supernet = trained
    scorer = OneShotScorer(supernet, config)
    genotypes = [TINY.sample(np.random.default_rng(s)) for s in range(3)]
    first = scorer.score(genotypes[0])
    traces = supernet.call_count
    others = [scorer.score(g) for g in genotypes[1:]]
    again = scorer.score(genotypes[0])
    assert supernet.call_count == traces  # the recalibration and predict graphs serve them all
    assert again["oneshot_accuracy"] == first["oneshot_accuracy"]
    assert 0.0 <= first["oneshot_accuracy"] <= 1.0 and first["val_size"] == config.val_size
    assert "oneshot_finetune_loss" not in first  # recorded only when the path is fine-tuned
    assert first["rss_mb"] > 100     # the process's resident memory, recorded with each score
    assert [m["params"] for m in others] == [supernet.extract(g).count_params()
                                            for g in genotypes[1:]]


def test_finetuning_moves_only_the_path_then_restores_every_weight(trained):
    from cells.supernet_paths import _pairs

    config, _, supernet = trained
    scorer = OneShotScorer(supernet, config.replace(finetune_steps=3))
    g = TINY.sample(np.random.default_rng(5))
    arch = supernet.encode(g)
    before = _variables(supernet)
    with scorer.finetuned(arch):
        during = _variables(supernet)
    path = {id(v) for layer, _, _ in _pairs(supernet, g) for v in layer.trainable_variables}
    moved = {k for k in before if not np.array_equal(before[k], during[k])}
    assert moved and moved <= path
    with pytest.raises(RuntimeError, match="interrupted"):  # an error mid-score restores too
        with scorer.finetuned(arch):
            raise RuntimeError("interrupted")
    for k, value in _variables(supernet).items():
        np.testing.assert_array_equal(value, before[k])
    assert not any(np.any(slot) for slot in scorer._finetune.optimizer.slot_arrays())


def test_finetuned_scores_are_repeatable_and_traced_once(trained):
    config, _, supernet = trained
    scorer = OneShotScorer(supernet, config.replace(finetune_steps=2))
    genotypes = [TINY.sample(np.random.default_rng(s)) for s in range(3)]
    first = scorer.score(genotypes[0])
    traces = supernet.call_count
    for g in genotypes[1:]:
        scorer.score(g)
    again = scorer.score(genotypes[0])
    assert again["oneshot_accuracy"] == first["oneshot_accuracy"]
    # the fine-tuning's mean training loss (a training-speed estimate) repeats too
    assert 0.0 < first["oneshot_finetune_loss"] < 10.0
    assert again["oneshot_finetune_loss"] == first["oneshot_finetune_loss"]
    assert supernet.call_count == traces  # the training step is traced once, like the scoring


def test_the_score_reports_the_extracted_networks_accuracy_and_loss(trained):
    import keras

    config, _, supernet = trained
    scorer = OneShotScorer(supernet, config)
    g = TINY.sample(np.random.default_rng(7))
    metrics = scorer.score(g)  # leaves the path's recalibrated statistics in place
    probs = np.asarray(supernet.extract(g).predict(scorer.x_val, verbose=0))
    loss = keras.losses.sparse_categorical_crossentropy(scorer.y_val, probs)
    np.testing.assert_allclose(metrics["oneshot_loss"], float(np.mean(loss)), rtol=1e-4)
    assert metrics["oneshot_accuracy"] == np.mean(probs.argmax(-1) == scorer.y_val)


def test_cached_scorer_loads_once_per_process(trained):
    config, directory, _ = trained
    scorer = cached_scorer(directory, config, TINY.name)
    assert cached_scorer(directory, config, TINY.name) is scorer
    with pytest.raises(UserError, match="space"):
        cached_scorer(directory, config, "darts")


def test_the_trace_is_announced_once_before_the_first_step(folder, tmp_path, capsys):
    """TensorFlow's first step traces every branch for minutes on a CPU: the user is told why
    nothing moves, once per process, not at every epoch."""
    train_supernet(TINY.name, tiny_config(folder), tmp_path, verbose=2)
    out = capsys.readouterr().out
    assert out.count(oneshot_tf.FIRST_STEP_NOTE) == 1
    assert out.index("supernet epoch 1/2") < out.index(oneshot_tf.FIRST_STEP_NOTE) < out.index(
        "supernet epoch 2/2")


def test_controller_sampler_trains_on_the_controllers_paths(folder, tmp_path):
    config = tiny_config(folder, sampler="controller", epochs=1)
    train_supernet(TINY.name, config, tmp_path, verbose=0)
    state = ckpt.read(tmp_path).controller_state
    steps = config.train_size // config.batch_size
    assert state["num_completed"] == steps and not state["pending"]


KILL_SCRIPT = """
import sys
from nasplay.scorers.oneshot.supernet import OneShotConfig, train_supernet
from search_space import SearchSpace, register_space
register_space(SearchSpace("tiny_oneshot", ops=("identity", "conv_3x3"), num_blocks=2))
config = OneShotConfig(**__import__("json").loads(sys.argv[2]))
train_supernet("tiny_oneshot", config, sys.argv[1], verbose=0)
"""


@pytest.mark.slow
def test_kill_9_during_training_resumes_from_the_last_epoch(folder, tmp_path):
    config = tiny_config(folder, epochs=6, train_size=64)
    reference = train_supernet(TINY.name, config, tmp_path / "whole", verbose=0)
    directory = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(directory),
                              json.dumps(config.to_dict())], env=env)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and child.poll() is None:
            meta = ckpt.read_meta(directory) if directory.is_dir() else None
            if meta and 2 <= meta.get("epochs_done", 0) < config.epochs:
                break
            time.sleep(0.2)
        assert child.poll() is None, "the training ended before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    done = ckpt.read(directory).meta["epochs_done"]
    assert 2 <= done < config.epochs
    resumed = train_supernet(TINY.name, config, directory, verbose=0)
    for a, b in zip(resumed.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_cifar10_supernet_scores_candidates(shared_cifar, tmp_path):
    """Real data end to end, small: darts, 2 reduction cells, 512 images, 1 epoch."""
    space = get_space("darts")
    config = OneShotConfig(data=str(shared_cifar), train_size=512, val_size=200, epochs=1,
                           filters=4, cells_per_stage=0, cpus=2)
    supernet = train_supernet(space.name, config, tmp_path, verbose=0)
    scorer = cached_scorer(tmp_path, config, space.name)
    scores = [scorer.score(space.sample(np.random.default_rng(s)))["oneshot_accuracy"]
              for s in range(3)]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scorer.supernet.num_classes == supernet.num_classes == 10

"""nasplay.scorers.proxy.training and nasplay.runtime.devices: metrics, determinism, divergence,
caching, device settings.

Fast tests train the smallest network (filters 4, no normal cells) on a synthetic 8x8 image
folder; the CIFAR-10 test is marked slow.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
from proxy_helpers import tiny_config, write_image_folder

from cells import BN_MOMENTUM
from nasplay.errors import UserError
from nasplay.runtime import devices
from nasplay.runtime._internals import fused_sgd
from nasplay.scorers.proxy import training as proxy
from nasplay.scorers.proxy.flops import count_flops
from search_space import PUBLISHED, get_space

GENOTYPE = PUBLISHED["darts-v2"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    return write_image_folder(root, per_class=16, size=8)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NASPLAY_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def tiny_run(folder):
    """One tiny training shared by the tests that only read its results."""
    config = tiny_config(folder)
    model, metrics = proxy.train(GENOTYPE, config)
    return config, model, metrics


def test_metrics_report_what_was_run(tiny_run):
    config, model, metrics = tiny_run
    assert 0.0 <= metrics["val_accuracy"] <= 1.0
    assert 0.0 <= metrics["train_accuracy"] <= 1.0
    assert metrics["train_size"] == 32 and metrics["val_size"] == 16
    assert metrics["epochs"] == 1 and metrics["seed"] == 0
    assert metrics["params"] == model.count_params()
    assert metrics["flops"] == count_flops(model) > 0
    for key in ("train_seconds", "build_seconds", "first_step_seconds", "steady_epoch_seconds",
                "eval_seconds"):
        assert metrics[key] > 0, key


def test_same_seed_gives_same_weights_and_metrics(folder, tiny_run):
    """Same metrics, and the same weights up to float32 rounding: TensorFlow's CPU kernels do
    not promise bitwise-equal sums from run to run (on 2026-12-02's 2-core AMD EPYC VM about
    half the runs of this test differed by up to 1.2e-7, a few ulps, with oneDNN on or off).
    Another seed moves them by far more (the next test)."""
    config, first_model, first = tiny_run
    model, again = proxy.train(GENOTYPE, config)
    timing = {k for k in first if k.endswith("_seconds")}
    assert {k: v for k, v in again.items() if k not in timing} == \
        {k: v for k, v in first.items() if k not in timing}
    for a, b in zip(first_model.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_tensorflow_trains_with_fused_norms_unless_told_not_to(folder, tiny_run):
    """``fused_norms`` (the default) runs the cells' batch norms as TensorFlow's fused kernel,
    Keras's arithmetic: off, Keras's own ops train the same network to nearly the same weights."""
    config, fused_model, _ = tiny_run
    norms = [layer for layer in fused_model._flatten_layers()
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(getattr(n, "_nasplay_fused", False) for n in norms)
    model, _ = proxy.train(GENOTYPE, config.replace(fused_norms=False))
    assert not any(getattr(layer, "_nasplay_fused", False) for layer in model._flatten_layers())
    for a, b in zip(fused_model.get_weights(), model.get_weights()):  # one epoch of 4 steps
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_another_seed_gives_other_initial_weights(folder, tiny_run):
    config, first_model, _ = tiny_run
    model, _ = proxy.train(GENOTYPE, config.replace(seed=1))
    assert any(not np.array_equal(a, b)
               for a, b in zip(first_model.get_weights(), model.get_weights()))


def test_repeats_score_a_candidate_by_the_mean_of_its_seeded_trainings(folder, monkeypatch):
    """``repeats=3``: trainings with seeds and subsets 0, 1 and 2, the held-out scores averaged,
    the times summed, the rest the first training's."""
    calls = []

    def fake_train(genotype, config, data=None, callbacks=()):
        calls.append((config.seed, config.subset_seed, config.repeats))
        i = config.seed
        return None, {"val_accuracy": 0.1 * (i + 1), "val_loss": 2.0 - i, "neg_val_loss": i - 2.0,
                      "train_accuracy": 0.5, "train_seconds": 1.0 + i, "params": 100,
                      "seed": config.seed, "subset_seed": config.subset_seed}

    monkeypatch.setattr(proxy, "train", fake_train)
    metrics = proxy.evaluate(GENOTYPE, tiny_config(folder, repeats=3))
    assert calls == [(0, 0, 3), (1, 1, 3), (2, 2, 3)]
    assert metrics["val_accuracy"] == pytest.approx(0.2)
    assert (metrics["val_loss"], metrics["neg_val_loss"]) == pytest.approx((1.0, -1.0))
    assert metrics["train_seconds"] == pytest.approx(6.0)
    assert (metrics["seed"], metrics["subset_seed"], metrics["params"]) == (0, 0, 100)
    assert (metrics["repeats"], metrics["val_accuracy_sd"]) == (3, pytest.approx(0.1))


def test_size_prior_adds_its_weight_per_doubling_of_the_parameters():
    """sized_neg_val_loss = neg_val_loss + B * log2(params): a network twice the size gains B;
    B = 0 leaves the loss as it is."""
    small = proxy.with_size_prior({"neg_val_loss": -1.5, "params": 1024}, 0.05)
    large = proxy.with_size_prior({"neg_val_loss": -1.5, "params": 2048}, 0.05)
    assert small["sized_neg_val_loss"] == pytest.approx(-1.5 + 0.05 * 10)
    assert large["sized_neg_val_loss"] - small["sized_neg_val_loss"] == pytest.approx(0.05)
    plain = proxy.with_size_prior({"neg_val_loss": -1.5, "params": 1024}, 0.0)
    assert plain["sized_neg_val_loss"] == -1.5


def test_size_prior_is_applied_to_the_mean_of_repeated_trainings(folder, monkeypatch):
    def fake_train(genotype, config, data=None, callbacks=()):
        i = config.seed
        return None, {"val_accuracy": 0.5, "val_loss": 2.0 - i, "neg_val_loss": i - 2.0,
                      "params": 4096, "seed": i}

    monkeypatch.setattr(proxy, "train", fake_train)
    metrics = proxy.evaluate(GENOTYPE, tiny_config(folder, repeats=2, size_prior=0.1))
    assert metrics["neg_val_loss"] == pytest.approx(-1.5)
    assert metrics["sized_neg_val_loss"] == pytest.approx(-1.5 + 0.1 * 12)


def test_repeated_trainings_run_end_to_end(folder, tiny_run):
    _, _, one = tiny_run
    both = proxy.evaluate(GENOTYPE, tiny_config(folder, repeats=2))
    assert both["repeats"] == 2 and both["seed"] == 0 and both["params"] == one["params"]
    assert 0.0 <= both["val_accuracy"] <= 1.0 and np.isfinite(both["val_loss"])
    assert both["val_accuracy_sd"] >= 0.0
    assert both["sized_neg_val_loss"] == both["neg_val_loss"]     # the default prior is 0


def test_one_training_is_scored_by_its_own_metrics():
    run = {"val_accuracy": 0.25, "val_loss": 1.5, "train_seconds": 3.0, "seed": 7}
    assert proxy.mean_of_repeats([run]) == {**run, "repeats": 1, "val_accuracy_sd": 0.0}


def test_nan_loss_raises_a_clear_error(folder):
    with pytest.raises(proxy.TrainingDiverged, match="diverged.*lower the learning rate"):
        proxy.evaluate(GENOTYPE, tiny_config(folder, learning_rate=1e30, cosine=False))


def test_fused_sgd_matches_keras_sgd():
    def train(optimizer_class, weight_decay):  # momentum, Nesterov, schedule, weight decay
        keras.utils.set_random_seed(0)
        inputs = keras.Input((5,))
        hidden = keras.layers.Dense(4, activation="relu")(inputs)
        model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
        schedule = keras.optimizers.schedules.CosineDecay(0.1, 10)
        model.compile(optimizer=optimizer_class(schedule, momentum=0.9, nesterov=True,
                                                weight_decay=weight_decay),
                      loss="sparse_categorical_crossentropy", jit_compile=False)
        x = np.random.default_rng(0).normal(size=(32, 5)).astype("float32")
        model.fit(x, np.arange(32) % 3, batch_size=8, epochs=2, verbose=0, shuffle=False)
        return model.get_weights()

    expected = train(keras.optimizers.SGD, 0.01)
    got = train(fused_sgd.fused_sgd_class(), 0.01)
    for a, b in zip(expected, got):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_subsets_are_cached_per_source_sizes_and_seed(folder):
    config = tiny_config(folder)
    first = proxy.subsets(config)
    assert proxy.subsets(config) is first
    other = proxy.subsets(config.replace(subset_seed=1))
    assert other is not first
    assert not np.array_equal(other.y_train, first.y_train) or \
        not np.array_equal(other.x_train, first.x_train)


def test_subset_larger_than_the_data_is_a_user_error(folder):
    with pytest.raises(UserError, match="larger than"):
        proxy.subsets(tiny_config(folder, train_size=60, val_size=16))


@pytest.mark.parametrize("field, value", [("epochs", 0), ("batch_size", 0), ("filters", -1),
                                          ("learning_rate", 0.0), ("drop_path", 1.0),
                                          ("train_size", 4), ("size_prior", -0.1),
                                          ("size_prior", float("nan")), ("size_prior", "0.05")])
def test_config_check_names_the_field(field, value):
    config = proxy.ProxyConfig(**{field: value})
    with pytest.raises(UserError, match=field):
        config.check()


def test_gpu_defaults_are_larger():
    cpu, gpu = proxy.ProxyConfig(), proxy.ProxyConfig.for_gpu(epochs=2)
    assert gpu.gpus and gpu.epochs == 2
    assert gpu.train_size > cpu.train_size and gpu.filters > cpu.filters


def test_cells_use_fast_converging_batch_norm(tiny_run):
    _, model, _ = tiny_run
    momenta = {layer.momentum for layer in model._flatten_layers()
               if isinstance(layer, keras.layers.BatchNormalization)}
    assert BN_MOMENTUM == 0.9 and momenta == {0.9}


def test_cpu_devices_never_use_xla_or_mixed_precision():
    settings = devices.configure(cpus=2, gpus=False)
    assert not settings.jit_compile and not settings.mixed_precision and settings.gpus == 0
    assert settings.backend == "tensorflow" and settings.dtype_policy == "float32"
    assert keras.mixed_precision.dtype_policy().name == "float32"


def test_mixed_precision_on_the_cpu_is_refused_in_one_line():
    with pytest.raises(UserError, match="mixed precision needs a GPU") as info:
        devices.configure(cpus=2, gpus=False, mixed_precision=True)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("capability, policy", [((9, 0), "mixed_bfloat16"),
                                                ((8, 0), "mixed_bfloat16"),
                                                ((7, 5), "mixed_float16"),
                                                (None, "mixed_float16")])
def test_gpus_get_bfloat16_where_they_compute_it(capability, policy):
    assert devices._dtype_policy(None, 1, capability) == policy
    assert devices._dtype_policy(False, 1, capability) == "float32"


def test_reset_sets_the_dtype_policy_again(monkeypatch):
    # clear_session() resets the global policy; reset() must restore the configured one
    mixed = devices.DeviceSettings(cpus=None, inter_op_threads=None, gpus=1,
                                   mixed_precision=True, jit_compile=True,
                                   dtype_policy="mixed_float16")
    monkeypatch.setattr(devices, "_current", mixed)
    try:
        devices.reset()
        assert keras.mixed_precision.dtype_policy().name == "mixed_float16"
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


@pytest.mark.slow
def test_cifar_subset_scores_clearly_above_chance(shared_cifar):
    # this cell with the default network scored 0.36 after 2 epochs on 2,000 images (fidelity
    # benchmark) and 0.47 after 4 on 2,500; chance is 0.1
    config = proxy.ProxyConfig(data=str(shared_cifar), train_size=2000, val_size=500, epochs=3)
    metrics = proxy.evaluate(get_space("nasnet").sample(np.random.default_rng(0)), config)
    assert metrics["val_accuracy"] > 0.2


def test_nb201_genotype_trains_and_is_scored(folder):
    """NAS-Bench-201's network (an edge genotype, given as its cell string) through the same
    proxy: metrics, parameters and multiply-adds of the network that ran."""
    from search_space import load_genotype

    genotype = load_genotype("|nor_conv_3x3~0|+|skip_connect~0|none~1|+"
                             "|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|")
    model, metrics = proxy.train(genotype, tiny_config(folder, cells_per_stage=1))
    assert 0.0 <= metrics["val_accuracy"] <= 1.0 and metrics["train_size"] == 32
    assert metrics["params"] == model.count_params()
    assert metrics["flops"] == count_flops(model) > 0
    assert model.name == "nb201_network"
    with pytest.raises(ValueError, match="auxiliary_head"):
        proxy.train(genotype, tiny_config(folder, auxiliary_head=True))


@pytest.mark.parametrize("metric", ["val_accuracy", "neg_val_loss", "sized_neg_val_loss"])
def test_asha_epoch_reports_give_the_search_metric_as_the_final_result_does(folder, metric):
    """An epoch's report (ASHA) carries the search's metric computed as the final metrics
    compute it: a loss metric gets the negated loss, not the accuracy."""
    from nasplay.engine.trial import TrialContext
    from nasplay.scorers.proxy import scorer

    reports = []

    class Ctx(TrialContext):
        def report(self, metrics):
            reports.append(dict(metrics))

    options = {**tiny_config(folder, epochs=2, size_prior=0.05).to_dict()}
    for key in ("cpus", "gpus", "mixed_precision"):
        options.pop(key)
    ctx = Ctx(trial_id="t", step=0, options=options, cpus=2, gpus=0, mixed_precision=None,
              metric=metric, report_epochs=True)
    final = scorer.score(GENOTYPE, ctx)
    assert len(reports) == 1 and reports[0]["epoch"] == 1
    first = reports[0]
    expected = {"val_accuracy": first["val_accuracy"], "neg_val_loss": -first["val_loss"],
                "sized_neg_val_loss": -first["val_loss"] + 0.05 * np.log2(first["params"])}
    assert first[metric] == pytest.approx(expected[metric])
    assert 0.0 <= first["val_accuracy"] <= 1.0 and first["val_loss"] > 0
    assert (first[metric] < 0) == (final[metric] < 0)           # the same kind of value

"""The NASWOT zero-cost score: finite, deterministic by seed, tells different cells apart."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nasplay.scorers.zero_cost.naswot import (ZeroCostConfig, evaluate, log_det, naswot_kernel,
                                              naswot_score)
from search_space.spaces import get_space

TINY = ZeroCostConfig(batch_size=8, filters=4, cells_per_stage=1, input_shape=(16, 16, 3))


@pytest.fixture(scope="module")
def two_genotypes():
    rng = np.random.default_rng(0)
    space = get_space("nasnet")
    first = space.sample(rng)
    return first, space.mutate(first, rng)


@pytest.fixture(scope="module")
def scores(two_genotypes):
    """Scores of the first genotype (twice) and of its mutant: three network builds in all."""
    first, mutant = two_genotypes
    return naswot_score(first, TINY), naswot_score(first, TINY), naswot_score(mutant, TINY)


def test_score_is_a_finite_float_and_differs_between_cells(scores):
    first, _, mutant = scores
    assert isinstance(first, float) and math.isfinite(first) and math.isfinite(mutant)
    assert first != mutant


def test_score_is_deterministic_by_seed(scores):
    assert scores[0] == scores[1]


def test_another_seed_gives_another_score(two_genotypes, scores):
    other = ZeroCostConfig(**{**TINY.__dict__, "seed": 1})
    assert naswot_score(two_genotypes[0], other) != scores[0]


def test_metrics_have_params_and_timing(two_genotypes):
    images = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    metrics = evaluate(two_genotypes[0], TINY, images=images)
    assert metrics["params"] > 0 and metrics["units"] > 0 and metrics["score_seconds"] > 0


def test_kernel_counts_agreements_and_identical_codes_are_singular():
    codes = np.array([[1, 0, 1], [1, 1, 0]])
    np.testing.assert_array_equal(naswot_kernel(codes), [[3, 1], [1, 3]])
    assert log_det(naswot_kernel(np.array([[1, 0], [1, 0]]))) == -math.inf


@pytest.mark.parametrize("field, value", [("batch_size", 1), ("filters", True),
                                          ("cells_per_stage", -1), ("num_classes", 2.5)])
def test_config_refuses_bad_sizes_naming_the_field(field, value):
    from nasplay.errors import UserError

    with pytest.raises(UserError, match=f"ZeroCostConfig.{field} must be an integer"):
        ZeroCostConfig(**{field: value})


def test_nb201_genotypes_are_scored():
    """NAS-Bench-201's network (an edge genotype) is probed at its cells, its residual
    reductions and its head's batch norm; different cells score differently."""
    from nasplay.scorers.zero_cost.naswot import activation_model
    from search_space import load_genotype

    conv = load_genotype("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
                         "|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")
    mixed = load_genotype("|nor_conv_3x3~0|+|skip_connect~0|none~1|+"
                          "|avg_pool_3x3~0|nor_conv_1x1~1|none~2|")
    first, second = evaluate(conv, TINY), evaluate(mixed.to_dict(), TINY)
    assert math.isfinite(first["naswot"]) and math.isfinite(second["naswot"])
    assert first["naswot"] != second["naswot"] and first["params"] > second["params"]
    import cells

    network = cells.build_network(conv, filters=4, cells_per_stage=1, input_shape=(16, 16, 3))
    assert len(activation_model(network).outputs) == 1 + 3 + 2 + 1  # stem, cells, reductions, head


def test_kernel_by_popcount_equals_the_papers_two_products():
    codes = np.random.default_rng(0).random((16, 1000)) > 0.5
    c = codes.astype(np.float64)
    np.testing.assert_array_equal(naswot_kernel(codes), c @ c.T + (1 - c) @ (1 - c).T)


def test_every_relu_codes_are_the_papers_and_read_more_units(two_genotypes):
    """codes='relus' reads every ReLU layer (the paper's definition), one code array a layer:
    a finite score from more units than the stem and cell outputs give."""
    import cells
    from nasplay.scorers.zero_cost.naswot import relu_codes

    relus = ZeroCostConfig(**{**TINY.__dict__, "codes": "relus"})
    outputs = evaluate(two_genotypes[0], TINY)
    every = evaluate(two_genotypes[0], relus)
    assert math.isfinite(every["naswot"]) and every["naswot"] != outputs["naswot"]
    assert every["units"] > outputs["units"]
    network = cells.build_network(two_genotypes[0], filters=4, cells_per_stage=1,
                                  input_shape=(16, 16, 3))
    import keras

    count = sum(isinstance(layer, keras.layers.ReLU) for layer in _all_layers(network))
    assert len(relu_codes(network, np.zeros((2, 16, 16, 3), "float32"))) == count


def _all_layers(network):
    from nasplay.runtime._internals import layer_calls

    return [layer for _, layer in layer_calls.walk(network, network.name)]


def test_config_refuses_unknown_codes():
    from nasplay.errors import UserError

    with pytest.raises(UserError, match="ZeroCostConfig.codes must be one of outputs, relus"):
        ZeroCostConfig(codes="all")


def test_a_run_saved_before_codes_or_probe_existed_keeps_outputs_codes_on_its_data():
    from nasplay.scorers import SCORERS

    assert SCORERS["zero-cost"].added_since == {"codes": "outputs", "probe": "data"}


def test_config_refuses_an_unknown_probe():
    from nasplay.errors import UserError

    with pytest.raises(UserError, match="ZeroCostConfig.probe must be one of data, noise"):
        ZeroCostConfig(probe="images")


def test_probe_noise_ignores_the_runs_images(two_genotypes, tmp_path, monkeypatch):
    """``--probe noise``: the scorer never loads the run's images and scores as without data;
    ``--probe data`` scores on them."""
    from nasplay.engine.trial import TrialContext
    from nasplay.scorers.zero_cost import scorer

    loaded = []

    def fake_load(data, n, repeats, seed):
        loaded.append(data)
        images = np.random.default_rng(7).uniform(0, 255, (n, 16, 16, 3)).astype("float32")
        return type("Sets", (), {"x_train": images})()

    monkeypatch.setattr("nasplay.data.subsets.load_subsets", fake_load)
    options = {**TINY.__dict__, "input_shape": list(TINY.input_shape)}

    def score(probe, data):
        ctx = TrialContext(trial_id="t", step=0, options={**options, "probe": probe, "data": data},
                           cpus=1, gpus=0, mixed_precision=None, metric="naswot",
                           report_epochs=False)
        return scorer.score(two_genotypes[0], ctx)["naswot"]

    noise = score("noise", "somewhere")
    assert loaded == []
    assert noise == score("data", None)                      # no data: noise either way
    assert score("data", "somewhere") != noise and loaded == ["somewhere"]

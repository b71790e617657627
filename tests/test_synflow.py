"""The synflow zero-cost score: the formula on tiny networks checked in numpy, batch norms made the
identity, data free, deterministic; the scorer registered, TensorFlow only, refusing --data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nasplay.scorers.synflow import measure as synflow
from nasplay.scorers.synflow.measure import SynflowConfig, linearize, logits_model, synflow_sum

TINY = SynflowConfig(filters=4, cells_per_stage=1, input_shape=(16, 16, 3))
NB201 = ("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+"
         "|avg_pool_3x3~0|nor_conv_3x3~1|none~2|")


def _values(weights) -> list[np.ndarray]:
    import keras

    return [keras.ops.convert_to_numpy(w).astype(np.float64) for w in weights]


def test_two_dense_layers_match_the_formula_in_numpy():
    """R = 1^T |W1| |W2| 1; dR/dW1[i, j] = (|W2| 1)_j, dR/dW2[j, k] = (1^T |W1|)_j."""
    import keras

    inputs = keras.Input((5,))
    hidden = keras.layers.Dense(4, use_bias=False)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, use_bias=False)(hidden))
    weights = linearize(model, np.random.default_rng(0))
    w1, w2 = _values(weights)
    assert (w1 >= 0).all() and (w2 >= 0).all()
    expected = (np.abs(w1 * np.outer(np.ones(5), w2.sum(axis=1))).sum()
                + np.abs(w2 * np.outer(w1.sum(axis=0), np.ones(3))).sum())
    assert synflow_sum(model, weights, (5,)) == pytest.approx(expected, rel=1e-5)
    # each layer of a bias-free chain contributes R itself (Euler: R is linear in each layer)
    assert expected == pytest.approx(2 * w1.sum(axis=0) @ w2.sum(axis=1))


def test_conv_batch_norm_dense_matches_numpy_with_the_norm_as_identity():
    """A 3x3 'valid' convolution on a 5x5 ones image, a batch norm, global average pooling and
    a dense layer: every output pixel of channel c is s_c = sum |K[..., c]|, the norm passes it
    unchanged (made the identity), so R = sum_c,k s_c |W[c, k]| and the score is 2 R."""
    import keras

    inputs = keras.Input((5, 5, 2))
    x = keras.layers.Conv2D(3, 3, padding="valid", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization(epsilon=1e-3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4)(x))
    weights = linearize(model, np.random.default_rng(1))
    kernel, dense_kernel, bias = _values(weights)
    assert not bias.any()  # zero biases stay zero: they add nothing
    r = kernel.sum(axis=(0, 1, 2)) @ dense_kernel.sum(axis=1)
    assert synflow_sum(model, weights, (5, 5, 2)) == pytest.approx(2 * r, rel=1e-5)


def test_he_init_scales_by_fan_in():
    import keras

    inputs = keras.Input((400,))
    model = keras.Model(inputs, keras.layers.Dense(50, use_bias=False)(inputs))
    (kernel,) = _values(linearize(model, np.random.default_rng(0), "he"))
    # |N(0, 2/400)| has mean sqrt(2/400) * sqrt(2/pi)
    assert kernel.mean() == pytest.approx(math.sqrt(2 / 400) * math.sqrt(2 / math.pi), rel=0.02)


@pytest.fixture(scope="module")
def genotypes():
    from search_space import get_space, load_genotype

    return get_space("nasnet").sample(np.random.default_rng(0)), load_genotype(NB201)


def test_score_is_finite_deterministic_and_data_free(genotypes):
    nasnet, _ = genotypes
    rng = np.random.default_rng(0)
    first = synflow.evaluate(nasnet, TINY, images=rng.integers(0, 256, (8, 16, 16, 3)))
    second = synflow.evaluate(nasnet, TINY, images=rng.standard_normal((8, 16, 16, 3)))
    assert math.isfinite(first["synflow"]) and first["params"] > 0
    assert first["synflow"] == second["synflow"] == synflow.synflow_score(nasnet, TINY)


def test_nb201_network_runs_in_float64_and_the_policy_is_restored(genotypes):
    import keras

    _, nb201 = genotypes
    before = keras.config.dtype_policy().name
    deep = synflow.synflow_score(nb201, SynflowConfig(filters=4, cells_per_stage=5))
    shallow = synflow.synflow_score(nb201, TINY)
    assert keras.config.dtype_policy().name == before
    assert math.isfinite(deep) and deep > shallow  # more, longer paths


def test_a_cell_of_zeros_only_scores_minus_infinity():
    from search_space import load_genotype

    none = load_genotype("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert synflow.synflow_score(none, TINY) == -math.inf


def test_logits_are_read_before_the_softmax(genotypes):
    import cells

    network = cells.build_network(genotypes[1], filters=4, cells_per_stage=1,
                                  input_shape=(16, 16, 3))
    assert logits_model(network).outputs[0].shape[-1] == 10
    assert logits_model(network).layers[-1].name == "predictions_logits"


@pytest.mark.parametrize("field, value", [("filters", 1), ("cells_per_stage", -1),
                                          ("init", "xavier")])
def test_config_refuses_bad_settings_naming_the_field(field, value):
    from nasplay.errors import UserError

    with pytest.raises(UserError, match=f"SynflowConfig.{field} must be"):
        SynflowConfig(**{field: value})


def test_scorer_is_registered_tensorflow_only_and_data_free():
    from nasplay.scorers import SCORERS, default_metric

    scorer = SCORERS["synflow"]
    assert scorer.metric == default_metric("synflow") == "synflow"
    assert scorer.backends == ("tensorflow",) and "data" not in scorer.passthrough
    assert isinstance(scorer.defaults(False), SynflowConfig)


@pytest.mark.parametrize("argv, message", [
    (["--data", "cifar10"], "--data does not apply to the synflow scorer"),
    (["--epochs", "3"], "--epochs does not apply to the synflow scorer"),
    (["--backend", "jax"], "the synflow scorer runs on the tensorflow backend only, not jax"),
])
def test_flags_that_do_not_apply_are_refused(tmp_path, refused, argv, message):
    refused(message, "--run-dir", tmp_path / "new", "--searcher", "random", "--space", "nb201",
            "--trials", 3, "--scorer", "synflow", *argv)
    assert not (tmp_path / "new").exists()

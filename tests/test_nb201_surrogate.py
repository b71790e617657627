"""The deep rung's model on NAS-Bench-201 (``benchmarks/nb201_surrogate.py``): the fit recovers
a known model, and a replay returns what its pick rule says."""

import numpy as np
import pytest

from benchmarks import nb201_surrogate as surrogate


@pytest.fixture(scope="module")
def cells():
    from nasplay.scorers.nb201.table import table

    entries = sorted(table().entries, key=lambda e: e.rank)
    rng = np.random.default_rng(0)
    top = entries[:1000:5]                  # the fit needs cells near every knot, the top too
    return top + [entries[i] for i in rng.choice(range(1000, len(entries)), 300, replace=False)]


def synthetic_rows(cells, slope=2.0, sd=0.01, size_effect=0.0, seed=1):
    """-loss = offset + slope * truth + size_effect * log2(params) + noise, params exact."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, e in enumerate(cells):
        n3, n1 = surrogate.conv_counts(e.arch_str)
        params = 1000 + 50 * n3 + 10 * n1
        source = f"run {k % 3}"
        rows.append({"source": source, "arch": e.arch_str, "truth": e.val_accuracy,
                     "params": params,
                     "y": 0.3 * (k % 3) + slope * e.val_accuracy
                     + size_effect * np.log2(params) + rng.normal(0, sd)})
    return rows


def test_fit_recovers_the_slope_the_spread_and_the_parameter_formula(cells):
    fitted = surrogate.fit(synthetic_rows(cells))
    f = np.interp([0.7, 0.8], fitted["knots"], fitted["f"])
    assert (f[1] - f[0]) / 0.1 == pytest.approx(2.0, abs=0.1)
    assert all(0.005 < sd < 0.015 for sd in fitted["sd"])
    assert fitted["params_formula"] == pytest.approx([1000, 50, 10])
    assert abs(fitted["residual_slope_per_doubling"]) < 0.01


def test_fit_sees_a_loss_that_itself_favours_size(cells):
    fitted = surrogate.fit(synthetic_rows(cells, size_effect=0.5))
    assert fitted["residual_slope_per_doubling"] > 0.05


def noiseless_model(cells):
    fitted = surrogate.fit(synthetic_rows(cells, sd=0.0))
    return surrogate.Model(fitted, scale=0.0)


def test_a_noiseless_replay_returns_the_best_cell_it_visited(cells):
    model = noiseless_model(cells)
    recipe = surrogate.Recipe(population=10, tournament=5, size_prior=0.0, pick="first")
    runs = [surrogate.replay(model, recipe, seed, trials=40) for seed in range(3)]
    assert all(r["rank"] == r["best_visited"] for r in runs)


def test_the_params_pick_returns_the_largest_of_the_best_six(cells):
    model = noiseless_model(cells)
    recipe = surrogate.Recipe(population=10, tournament=5, size_prior=0.0, pick="params")
    first = surrogate.replay(model, surrogate.Recipe(10, 5, 0.0, "first"), 0, trials=40)
    params = surrogate.replay(model, recipe, 0, trials=40)
    assert params["best_visited"] == first["best_visited"]     # the same search
    by_rank = {int(r): i for i, r in enumerate(model.rank)}
    assert model.log2p[by_rank[params["rank"]]] >= model.log2p[by_rank[first["rank"]]]


def test_wilson_interval_holds_the_share_and_stays_in_0_1():
    for hits, n in ((0, 10), (3, 10), (10, 10)):
        low, high = surrogate.wilson(hits, n)
        assert 0.0 <= low <= hits / n <= high <= 1.0
    s = surrogate.summarize([1, 2, 50, 100], [1, 1, 2, 3])
    assert s["top30_share"] == 0.5 and s["median_of_3_top30"] == pytest.approx(0.5)


def test_the_size_prior_on_measured_rows_follows_what_size_says():
    """Where the truth grows with size and the loss does not see it, a prior raises the rank
    correlation; where size says nothing, a large prior lowers it."""
    rng = np.random.default_rng(3)
    rows = []
    for k in range(60):
        params = int(rng.integers(10_000, 300_000))
        loss = rng.normal()
        rows.append({"source": "sized", "y": loss, "params": params,
                     "truth": loss + 2.0 * np.log2(params)})
        rows.append({"source": "flat", "y": loss, "params": params,
                     "truth": loss + 0.01 * rng.normal()})
    got = surrogate.sized_on_measured(rows)
    sized, flat = got["sized"]["spearman"], got["flat"]["spearman"]
    assert sized["0.12"] > sized["0.0"] and got["sized"]["cells"] == 60
    assert flat["0.12"] < flat["0.0"]

"""The NAS-Bench-201 searcher study (benchmarks.nb201_searchers): its statistics and a smoke run."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import nb201_searchers as study

REPO = Path(__file__).resolve().parents[1]


def test_mann_whitney_without_ties_by_hand():
    # x all below y: U = 0; mean n1 n2 / 2 = 12.5; variance 5 * 5 * 11 / 12 = 275 / 12;
    # z = (0 - 12.5 + 0.5) / sqrt(275 / 12) = -2.50672; p = erfc(2.50672 / sqrt 2) = 0.012186
    result = study.mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert result["U"] == 0.0 and result["prob_superiority"] == 0.0
    assert result["z"] == pytest.approx(-12.0 / math.sqrt(275 / 12))
    assert result["p"] == pytest.approx(0.0121858, abs=1e-6)
    # symmetric: swapping the samples gives U' = n1 n2 - U and the same p
    swapped = study.mann_whitney_u([6, 7, 8, 9, 10], [1, 2, 3, 4, 5])
    assert swapped["U"] == 25.0 and swapped["z"] == pytest.approx(-result["z"])
    assert swapped["p"] == pytest.approx(result["p"])


def test_mann_whitney_with_ties_by_hand():
    # x = 1, 2, 2 and y = 2, 3: ranks 1, 3, 3 | 3, 5 (the three 2s share rank 3), so
    # U = 7 - 3 * 4 / 2 = 1; ties: 3^3 - 3 = 24, variance 3 * 2 / 12 * (6 - 24 / 20) = 2.4;
    # z = (1 - 3 + 0.5) / sqrt(2.4) = -0.968246; p = erfc(0.968246 / sqrt 2) = 0.332922
    result = study.mann_whitney_u([1, 2, 2], [2, 3])
    assert result["U"] == 1.0
    assert result["z"] == pytest.approx(-1.5 / math.sqrt(2.4))
    assert result["p"] == pytest.approx(0.332922, abs=1e-6)
    assert study.mann_whitney_u([4, 4, 4], [4, 4])["p"] == 1.0  # all tied: no evidence
    assert list(study.average_ranks([3, 1, 3, 2, 3])) == [4.0, 1.0, 4.0, 2.0, 4.0]


def test_mann_whitney_agrees_with_scipy_where_scipy_is_installed():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for _ in range(50):
        n1, n2 = rng.integers(2, 40, size=2)
        x = rng.integers(0, 6, n1).astype(float)  # many ties, as best-so-far accuracies have
        y = rng.integers(0, 6, n2) + rng.integers(0, 2)
        ours = study.mann_whitney_u(x, y)
        theirs = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
        assert ours["U"] == pytest.approx(theirs.statistic)
        assert ours["p"] == pytest.approx(theirs.pvalue, rel=1e-9)


def test_t_critical_and_the_summary():
    assert study.t_critical(2) == 4.303 and study.t_critical(30) == 2.042
    assert study.t_critical(99) == pytest.approx(1.98422, abs=1e-4)  # beyond the table
    assert study.t_critical(10 ** 6) == pytest.approx(1.95996, abs=1e-4)
    s = study.summary([1.0, 2.0, 3.0])
    assert (s["mean"], s["std"], s["median"]) == (2.0, 1.0, 2.0)
    assert s["ci95"] == pytest.approx([2.0 - 4.303 / math.sqrt(3), 2.0 + 4.303 / math.sqrt(3)])


def test_parse_spec():
    assert study.parse_spec("controller:learning_rate=0.05:algorithm=ppo") == (
        "controller:learning_rate=0.05:algorithm=ppo", "controller",
        {"learning_rate": 0.05, "algorithm": "ppo"})
    with pytest.raises(ValueError, match="not key=value"):
        study.parse_spec("evolution:20")


def _check_results(out: Path, searchers, seeds=3, budget=30):
    results = json.loads(out.read_text())
    assert list(results["searchers"]) == searchers
    assert results["budgets"] == [10, 25, 30] and results["budget"] == budget
    for run in results["searchers"].values():
        for key in ("val", "test", "rank"):
            assert len(run["raw"][key]["30"]) == seeds
        assert 0.0 < run["per_budget"]["30"]["val"]["mean"] <= results["table"]["best_val"]
        assert all(1 <= r <= 15_625 for r in run["raw"]["rank"]["30"])
        assert len(run["curve"]["mean"]) == budget
        # best-so-far never decreases, and the returned cell's rank never worsens
        assert np.all(np.diff(run["curve"]["mean"]) >= 0)
    assert set(results["tests"]) == {f"{name} vs random" for name in searchers[1:]}
    assert out.with_suffix(".png").stat().st_size > 10_000
    return results


def test_smoke_run_of_random_search_and_evolution(tmp_path, capsys):
    out = tmp_path / "study.json"
    assert study.main(["--smoke", "--searchers", "random,evolution", "--quiet",
                       "--out", str(out)]) == 0
    results = _check_results(out, ["random", "evolution"])
    # the runs use distinct generators: evolution's first samples are not random search's
    assert results["searchers"]["evolution"]["searcher_seeds"] != \
        results["searchers"]["random"]["searcher_seeds"]
    assert "Mann-Whitney" in capsys.readouterr().out


def test_smoke_grid(tmp_path):
    out = tmp_path / "grid.json"
    assert study.main(["--smoke", "--grid", "--out", str(out)]) == 0
    grid = json.loads(out.read_text())["grid"]
    assert grid["budgets"] == [20, 30]
    assert [row["label"] for row in grid["rows"]] == ["random", "for_budget rule", "previous rule",
                                                       "P=10 S=2", "P=10 S=5"]
    rule = grid["rows"][1]["settings"]
    assert rule == {"20": {"population_size": 10, "sample_size": 5},
                    "30": {"population_size": 10, "sample_size": 5}}
    assert grid["rows"][2]["settings"]["30"] == {"population_size": 10, "sample_size": 2}


@pytest.mark.slow
def test_smoke_run_with_the_controller_in_a_child_process(tmp_path):
    import subprocess

    out = tmp_path / "study.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.nb201_searchers", "--smoke", "--quiet",
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = _check_results(out, ["random", "evolution", "controller"])
    assert results["searchers"]["controller"]["config"]["batch_size"] >= 1
    assert results["machine"]["threads"] == 1

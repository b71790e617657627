"""The searchers against NAS-Bench-201's ground truth: every candidate scored by the table.

Random search, regularized evolution and the RL controller each search the ``nb201`` space
(15,625 cells) through the ask/tell loop, one worker, scored by the shipped CIFAR-10 table's
validation accuracy (``nasplay.scorers.nb201.table``); a searcher never sees the test accuracy.
For every seed and every reported budget (10, 25, 50, 100, 200, 500 candidates) it records:

- the best validation accuracy seen so far;
- the cell the run would return there (the best by validation seen so far, first of equals):
  its test accuracy and its true rank among the 15,625 (1 = the best validation accuracy).

Reported: mean, std and the 95% interval of the mean (Student's t) over seeds, how many seeds
return the best cell itself, and a two-sided Mann-Whitney U test (normal approximation with the
tie correction and a continuity correction, in numpy) of each searcher against random search on
the best validation accuracy and on the returned cell's test accuracy, per budget. Writes the
tables to stdout, the results (per-seed values too) to ``--out`` (JSON) and the best-so-far
curves with 95% bands next to it (same name, ``.png``).

Seeds: run k of every searcher is seed ``--first-seed + k`` plus its algorithm's offset
(``SEED_OFFSETS``), so that random search and evolution (whose initial population is drawn as
random search draws) are independent samples, and variants of one algorithm are paired.

Searchers are given as ``name[:key=value...]`` (``controller:learning_rate=0.05:batch_size=5``);
``evolution`` is ``RegularizedEvolution.for_budget(space, --budget)``, as ``nasplay search``
makes it, the others ``make_searcher(name, space, max_trials=--budget)``.

    python -m benchmarks.nb201_searchers                     # 100 seeds x 500, the three searchers
    python -m benchmarks.nb201_searchers --grid              # evolution: population x tournament
    python -m benchmarks.nb201_searchers --smoke --out /tmp/x.json   # 3 seeds x 30, for a test

``--grid`` runs aging evolution with every population/tournament pair of ``--populations`` and
``--tournaments`` for ``--grid-budgets`` (one run to the largest budget per seed: a search's
proposals do not depend on its budget) next to random search, the budget rule of
``for_budget`` and the rule it had before this study (``previous_budget_rule``), each of these
sized for and run to each budget; it writes ``nb201_evolution_grid.json``.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.common import REPO, RESULTS
from benchmarks.nb201_truth import average_ranks  # noqa: E402  (the benchmarks' shared rank helper)
from search_space import get_space  # noqa: E402
from searchers import RegularizedEvolution, make_searcher  # noqa: E402

BUDGETS = (10, 25, 50, 100, 200, 500)
DEFAULT_SEARCHERS = "random,evolution,controller"
GRID_BUDGETS = (100, 200, 500, 1000)
GRID_POPULATIONS = (10, 20, 30, 50, 100)
GRID_TOURNAMENTS = (2, 5, 10, 15, 25, 50)


def previous_budget_rule(trials: int) -> dict:
    """``for_budget``'s sizes before this study: population ``trials // 5`` between 10 and 100,
    tournament a quarter of it (the grid's baseline row)."""
    population = max(10, min(100, trials // 5))
    return {"population_size": population, "sample_size": min(population, max(2, population // 4))}


# ---------------------------------------------------------------------------------------------
# statistics (numpy and math only: scipy is no dependency of the project)

# Student's t, two-sided 95% (the 0.975 quantile), degrees of freedom 1..30.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_Z975 = 1.959963984540054


def t_critical(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom: a table up to 30,
    beyond it the Cornish-Fisher expansion around the normal quantile (error below 1e-4)."""
    if df < 1:
        return math.nan
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return (z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)
            + (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / (384 * df ** 3))


def summary(values) -> dict:
    """Mean, sample std, the half-width of the mean's 95% interval (t), median, min, max, n."""
    x = np.asarray(values, dtype=np.float64)
    n = len(x)
    std = float(x.std(ddof=1)) if n > 1 else 0.0
    half = t_critical(n - 1) * std / math.sqrt(n) if n > 1 else math.nan
    mean = float(x.mean())
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half],
            "median": float(np.median(x)), "min": float(x.min()), "max": float(x.max())}


def mann_whitney_u(x, y, continuity: bool = True) -> dict:
    """Two-sided Mann-Whitney U test of samples ``x`` and ``y`` by the normal approximation.

    U is x's statistic (the number of pairs with x above y, ties counting one half); its
    variance is corrected for ties, n1 n2 / 12 * ((n + 1) - sum(t^3 - t) / (n (n - 1))), and
    with ``continuity`` |U - mean| is reduced by 0.5 (as scipy's ``mannwhitneyu(...,
    method="asymptotic")``). Returns U, z (positive when x tends to be larger), the p-value and
    the probability of superiority U / (n1 n2). All-tied samples give z = 0 and p = 1.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("mann_whitney_u: both samples need at least one value")
    ranks = average_ranks(np.concatenate([x, y]))
    u = float(ranks[:n1].sum() - n1 * (n1 + 1) / 2.0)
    n = n1 + n2
    _, counts = np.unique(np.concatenate([x, y]), return_counts=True)
    ties = float((counts ** 3 - counts).sum())
    variance = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    mean = n1 * n2 / 2.0
    if variance <= 0:
        return {"U": u, "z": 0.0, "p": 1.0, "prob_superiority": u / (n1 * n2)}
    deviation = u - mean
    if continuity:
        deviation = math.copysign(max(abs(deviation) - 0.5, 0.0), deviation)
    z = deviation / math.sqrt(variance)
    p = min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))
    return {"U": u, "z": z, "p": p, "prob_superiority": u / (n1 * n2)}


# ---------------------------------------------------------------------------------------------
# the searches


class Oracle:
    """The table as a scorer: validation accuracy for the searcher, the rest for the report."""

    def __init__(self):
        from nasplay.scorers.nb201.table import table

        self.table = table()
        self.space = get_space("nb201")
        self.rows = {e.arch_str: (e.val_accuracy, e.test_accuracy, e.rank) for e in self.table.entries}
        vals = np.asarray([e.val_accuracy for e in self.table.entries])
        best = self.table.best()
        self.info = {"cells": len(self.table), "best_val": best.val_accuracy,
                     "best_test": best.test_accuracy, "best_arch": best.arch_str,
                     "mean_val": float(vals.mean()), "file": str(self.table.path.relative_to(REPO))}

    def __call__(self, genotype) -> tuple[float, float, int]:
        return self.rows[self.space.to_arch_str(genotype)]


def parse_spec(text: str) -> tuple[str, str, dict]:
    """``name[:key=value...]`` -> (label, name, settings); values as Python literals."""
    name, *parts = text.strip().split(":")
    settings = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ValueError(f"searcher {text!r}: {part!r} is not key=value")
        try:
            settings[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            settings[key] = value
    return text.strip(), name, settings


# Seed offsets per algorithm: random search and evolution draw their first samples alike from a
# generator of the same seed, which would tie the samples the U test takes to be independent.
# Variants of one algorithm share its seeds (paired, so their differences are the settings').
SEED_OFFSETS = {"random": 0, "evolution": 1_000_000, "controller": 2_000_000}


def make(name: str, settings: dict, space, seed: int, budget: int):
    """The searcher ``name`` for one search of ``budget`` candidates, its generator seeded with
    ``seed`` plus the algorithm's offset (``SEED_OFFSETS``)."""
    seed = seed + SEED_OFFSETS[name]
    if name == "evolution":
        return RegularizedEvolution.for_budget(space, budget, seed=seed, **settings)
    return make_searcher(name, space, seed=seed, max_trials=budget, **settings)


def run_one(searcher, oracle: Oracle, budget: int) -> dict:
    """One search of ``budget`` candidates, ask, score, tell. Per candidate: the best validation
    accuracy so far, and the test accuracy and rank of the cell the run would return then."""
    best_val = np.zeros(budget)
    test = np.zeros(budget)
    rank = np.zeros(budget, dtype=np.int64)
    incumbent = (-1.0, 0.0, 0)
    for k in range(budget):
        proposal = searcher.ask()
        if proposal is None:
            raise RuntimeError(f"{searcher.name} stopped after {k} of {budget} candidates")
        row = oracle(proposal.genotype)
        searcher.tell(proposal.trial_id, row[0])
        if row[0] > incumbent[0]:
            incumbent = row
        best_val[k], test[k], rank[k] = incumbent
    return {"val": best_val, "test": test, "rank": rank}


def search_many(label: str, name: str, settings: dict, oracle: Oracle, seeds, budget: int,
                verbose: bool = True) -> dict:
    curves = {"val": [], "test": [], "rank": []}
    seconds = []
    config = None
    for seed in seeds:
        start = time.perf_counter()
        searcher = make(name, settings, oracle.space, seed, budget)
        config = config or searcher.config()
        result = run_one(searcher, oracle, budget)
        seconds.append(time.perf_counter() - start)
        if getattr(searcher, "uses_keras", False):
            import keras

            del searcher
            keras.backend.clear_session()  # each controller builds a model: keep the graph small
        for key in curves:
            curves[key].append(result[key])
        if verbose:
            print(f"# {label} seed {seed}: best val {100 * result['val'][-1]:.2f}%, rank "
                  f"{result['rank'][-1]}, {seconds[-1]:.2f} s", file=sys.stderr, flush=True)
    return {"searcher": name, "settings": settings, "config": config,
            "seeds": [seed + SEED_OFFSETS[name] for seed in seeds],
            "curves": {k: np.asarray(v) for k, v in curves.items()},
            "seconds": {"total": float(sum(seconds)), "per_seed_median": float(np.median(seconds))}}


def digest(run: dict, budgets) -> dict:
    """Per budget: summaries and the per-seed values; the mean curve and its 95% band."""
    curves = run["curves"]
    per_budget, raw = {}, {"val": {}, "test": {}, "rank": {}}
    for b in budgets:
        vals, tests, ranks = (curves[k][:, b - 1] for k in ("val", "test", "rank"))
        per_budget[str(b)] = {"val": summary(vals), "test": summary(tests),
                              "rank": summary(ranks), "rank1": int((ranks == 1).sum()),
                              "top10": int((ranks <= 10).sum())}
        raw["val"][str(b)] = [float(v) for v in vals]
        raw["test"][str(b)] = [float(v) for v in tests]
        raw["rank"][str(b)] = [int(v) for v in ranks]
    val = curves["val"]
    n = len(val)
    half = t_critical(n - 1) * val.std(axis=0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(val.shape[1])
    curve = {"mean": val.mean(axis=0).round(6).tolist(),
             "ci95_low": (val.mean(axis=0) - half).round(6).tolist(),
             "ci95_high": (val.mean(axis=0) + half).round(6).tolist(),
             "rank_median": np.median(curves["rank"], axis=0).tolist(),
             "rank_q25": np.percentile(curves["rank"], 25, axis=0).tolist(),
             "rank_q75": np.percentile(curves["rank"], 75, axis=0).tolist()}
    return {"searcher": run["searcher"], "settings": run["settings"], "config": run["config"],
            "searcher_seeds": run["seeds"], "seconds": run["seconds"], "per_budget": per_budget,
            "raw": raw, "curve": curve}


def compare(runs: dict, budgets, baseline: str = "random") -> dict:
    """Mann-Whitney U of every searcher against ``baseline``, per budget: best validation
    accuracy (higher is better) and the returned cell's test accuracy."""
    if baseline not in runs:
        return {}
    base = runs[baseline]["curves"]
    tests = {}
    for label, run in runs.items():
        if label == baseline:
            continue
        rows = {}
        for b in budgets:
            val = mann_whitney_u(run["curves"]["val"][:, b - 1], base["val"][:, b - 1])
            test = mann_whitney_u(run["curves"]["test"][:, b - 1], base["test"][:, b - 1])
            rows[str(b)] = {"val": val, "test": test}
        tests[f"{label} vs {baseline}"] = rows
    return tests


# ---------------------------------------------------------------------------------------------
# report


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def _p(p: float) -> str:
    return f"{p:.1e}" if p < 1e-3 else f"{p:.3f}"


def print_tables(results: dict) -> None:
    budgets = results["budgets"]
    info = results["table"]
    print(f"\nNAS-Bench-201 CIFAR-10 table: {info['cells']:,} cells, best validation "
          f"{_pct(info['best_val'])}% (test {_pct(info['best_test'])}%), mean {_pct(info['mean_val'])}%; "
          f"{len(results['seeds'])} seeds ({results['seeds'][0]}-{results['seeds'][-1]}), "
          f"{results['budget']} candidates each\n")
    header = "| searcher | " + " | ".join(f"{b}" for b in budgets) + " |"
    rule = "| --- | " + " | ".join("---" for _ in budgets) + " |"
    print("Best validation accuracy so far (%): mean ± std [95% interval of the mean]\n")
    print(header + "\n" + rule)
    for label, run in results["searchers"].items():
        cells = []
        for b in budgets:
            s = run["per_budget"][str(b)]["val"]
            low, high = s["ci95"]
            cells.append(f"{_pct(s['mean'])} ± {_pct(s['std'])} [{_pct(low)}, {_pct(high)}]")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\nThe returned cell (best by validation so far): test accuracy (%) mean ± std; true rank "
          "mean (median); seeds returning the best cell (rank 1)\n")
    print(header + "\n" + rule)
    for label, run in results["searchers"].items():
        cells = []
        for b in budgets:
            r = run["per_budget"][str(b)]
            cells.append(f"{_pct(r['test']['mean'])} ± {_pct(r['test']['std'])}; rank "
                         f"{r['rank']['mean']:.1f} ({r['rank']['median']:g}); {r['rank1']}/{r['rank']['n']}")
        print(f"| {label} | " + " | ".join(cells) + " |")
    if results["tests"]:
        print("\nTwo-sided Mann-Whitney U against random search, p-value on the best validation "
              "accuracy / on the returned cell's test accuracy (P(searcher > random) in brackets)\n")
        print(header + "\n" + rule)
        for pair, rows in results["tests"].items():
            cells = [f"{_p(rows[str(b)]['val']['p'])} / {_p(rows[str(b)]['test']['p'])} "
                     f"({rows[str(b)]['val']['prob_superiority']:.2f})" for b in budgets]
            print(f"| {pair} | " + " | ".join(cells) + " |")
    print("\nSeconds per seed (median): " + ", ".join(
        f"{label} {run['seconds']['per_seed_median']:.2f}" for label, run in results["searchers"].items()))


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    x = np.arange(1, results["budget"] + 1)
    for label, run in results["searchers"].items():
        c = run["curve"]
        line, = left.plot(x, 100 * np.asarray(c["mean"]), label=label)
        left.fill_between(x, 100 * np.asarray(c["ci95_low"]), 100 * np.asarray(c["ci95_high"]),
                          color=line.get_color(), alpha=0.25, linewidth=0)
        right.plot(x, c["rank_median"], color=line.get_color(), label=label)
        right.fill_between(x, c["rank_q25"], c["rank_q75"], color=line.get_color(), alpha=0.2,
                           linewidth=0)
    best = 100 * results["table"]["best_val"]
    left.axhline(best, color="grey", linestyle="--", linewidth=0.8, label="the best cell")
    left.set_xscale("log")
    left.set_xlabel("candidates evaluated")
    left.set_ylabel("best validation accuracy so far (%)")
    left.set_ylim(max(80.0, left.get_ylim()[0]), best + 0.3)
    left.set_title(f"mean over {len(results['seeds'])} seeds, 95% interval of the mean")
    left.legend(loc="lower right")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel("candidates evaluated")
    right.set_ylabel("true rank of the returned cell (of 15,625)")
    right.set_title("median, interquartile band")
    right.legend(loc="upper right")
    fig.suptitle("Searchers on NAS-Bench-201 (CIFAR-10 table, validation accuracy as the score)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# the evolution grid


def run_grid(args, oracle: Oracle, seeds) -> dict:
    budgets = [int(b) for b in args.grid_budgets.split(",")]
    longest = max(budgets)
    rows = []

    def record(label, kind, settings, per_budget_runs):
        row = {"label": label, "kind": kind, "settings": settings, "budgets": {}}
        for b, curves in per_budget_runs.items():
            vals, ranks = curves["val"][:, b - 1], curves["rank"][:, b - 1]
            row["budgets"][str(b)] = {"val": summary(vals), "rank": summary(ranks),
                                      "rank1": int((ranks == 1).sum()),
                                      "raw_rank": [int(r) for r in ranks]}
        rows.append(row)
        cells = [f"{b}: rank {row['budgets'][str(b)]['rank']['mean']:.1f}, "
                 f"{row['budgets'][str(b)]['rank1']} best" for b in per_budget_runs]
        print(f"# {label}: " + "; ".join(cells), file=sys.stderr, flush=True)

    rand = search_many("random", "random", {}, oracle, seeds, longest, verbose=False)["curves"]
    record("random", "random", {}, {b: rand for b in budgets})
    # the budget rules: a search sized for each budget, run to it
    for label, rule in (("for_budget rule", RegularizedEvolution.budget_defaults),
                        ("previous rule", previous_budget_rule)):
        sized = {}
        for b in budgets:
            sized[b] = search_many(f"{label} ({b})", "evolution", rule(b), oracle, seeds, b,
                                   verbose=False)["curves"]
        record(label, "rule", {str(b): rule(b) for b in budgets}, sized)
    for population in (int(p) for p in args.populations.split(",")):
        for tournament in (int(t) for t in args.tournaments.split(",")):
            if tournament > population:
                continue
            settings = {"population_size": population, "sample_size": tournament}
            curves = search_many(f"P={population} S={tournament}", "evolution", settings, oracle,
                                 seeds, longest, verbose=False)["curves"]
            record(f"P={population} S={tournament}", "fixed", settings, {b: curves for b in budgets})
    return {"budgets": budgets, "rows": rows}


def print_grid(grid: dict) -> None:
    budgets = grid["budgets"]
    print("\nAging evolution on the table: mean true rank of the returned cell (seeds returning the "
          "best cell) and mean best validation (%)\n")
    print("| setting | " + " | ".join(f"{b}" for b in budgets) + " |")
    print("| --- | " + " | ".join("---" for _ in budgets) + " |")
    for row in grid["rows"]:
        cells = []
        for b in budgets:
            r = row["budgets"][str(b)]
            cells.append(f"{r['rank']['mean']:.1f} ({r['rank1']}); {_pct(r['val']['mean'])}")
        print(f"| {row['label']} | " + " | ".join(cells) + " |")


# ---------------------------------------------------------------------------------------------


def _machine() -> dict:
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "cpus": os.cpu_count(), "platform": platform.platform()}
    try:
        info["loadavg"] = list(os.getloadavg())
    except OSError:
        pass
    return info


def _start_keras(threads: int) -> dict:
    """Keras in this process, its thread pools sized to ``threads`` (the controller's model is
    small: one thread is as fast as two, and the others' tests keep the second core)."""
    from nasplay.runtime import devices, quiet

    with quiet.quiet_native_stderr():
        import keras  # noqa: F401

        settings = devices.configure(cpus=threads, gpus=False)
    import keras
    import tensorflow as tf

    return {"keras": keras.__version__, "tensorflow": tf.__version__, "threads": settings.cpus,
            "backend": settings.backend}


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if k != "curves"}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first-seed .. first-seed+seeds-1, each plus the algorithm's "
                             "offset (SEED_OFFSETS)")
    parser.add_argument("--budget", type=int, default=500, help="candidates per search")
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)),
                        help="where to report (those above --budget are dropped)")
    parser.add_argument("--searchers", default=DEFAULT_SEARCHERS,
                        help="name[:key=value...], comma-separated (random, evolution, controller)")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads (controller)")
    parser.add_argument("--out", type=Path, default=None,
                        help="results JSON (default benchmarks/results/nb201_searchers.json, or "
                             "nb201_evolution_grid.json with --grid); the PNG goes beside it")
    parser.add_argument("--smoke", action="store_true",
                        help="3 seeds x 30 candidates, results in the temporary directory "
                             "unless --out")
    parser.add_argument("--grid", action="store_true", help="the evolution grid instead")
    parser.add_argument("--grid-budgets", default=",".join(map(str, GRID_BUDGETS)))
    parser.add_argument("--populations", default=",".join(map(str, GRID_POPULATIONS)))
    parser.add_argument("--tournaments", default=",".join(map(str, GRID_TOURNAMENTS)))
    parser.add_argument("--quiet", action="store_true", help="no per-seed lines on stderr")
    args = parser.parse_args(argv)

    if args.smoke:
        args.seeds, args.budget = min(args.seeds, 3), min(args.budget, 30)
        if args.grid:
            args.grid_budgets, args.populations, args.tournaments = "20,30", "10", "2,5"
    if args.seeds < 1 or args.budget < 1:
        parser.error("--seeds and --budget must be >= 1")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    name = "nb201_evolution_grid.json" if args.grid else "nb201_searchers.json"
    out = args.out or (Path(tempfile.gettempdir()) / f"smoke_{name}" if args.smoke else RESULTS / name)
    oracle = Oracle()
    results = {"benchmark": "nb201_evolution_grid" if args.grid else "nb201_searchers",
               "date": date.today().isoformat(), "command": " ".join(["python",
               "-m benchmarks.nb201_searchers", *(argv if argv is not None else sys.argv[1:])]),
               "machine": _machine(), "table": oracle.info, "seeds": seeds}
    start = time.perf_counter()

    if args.grid:
        results["grid"] = run_grid(args, oracle, seeds)
        print_grid(results["grid"])
    else:
        specs = [parse_spec(s) for s in args.searchers.split(",") if s.strip()]
        unknown = [n for _, n, _ in specs if n not in ("random", "evolution", "controller")]
        if unknown:
            parser.error(f"unknown searchers {unknown}; known: random, evolution, controller")
        if any(n == "controller" for _, n, _ in specs):
            results["machine"].update(_start_keras(args.threads))
        budgets = [b for b in (int(x) for x in args.budgets.split(",")) if b <= args.budget]
        if not budgets or budgets[-1] != args.budget:
            budgets.append(args.budget)
        runs = {label: search_many(label, n, settings, oracle, seeds, args.budget,
                                   verbose=not args.quiet) for label, n, settings in specs}
        results.update(budget=args.budget, budgets=budgets,
                       searchers={label: digest(run, budgets) for label, run in runs.items()},
                       tests=compare(runs, budgets))
        print_tables(results)
    results["seconds"] = time.perf_counter() - start

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_jsonable(results), indent=1) + "\n")
    print(f"\nresults: {out}")
    if not args.grid:
        png = out.with_suffix(".png")
        plot(results, png)
        print(f"figure: {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The fidelity ladder simulated on NAS-Bench-201: which scorers, searcher and re-ranking find
the best cell in one laptop hour, before an hour of real compute is spent on the choice.

    python benchmarks/nb201_ladder.py                    # 200 replicates, the default strategies
    python benchmarks/nb201_ladder.py --replicates 20 --out /tmp/ladder.json   # quicker

Every rung (a zero-cost score, a proxy budget) has been measured on cells of the fixed sample
(``nb201_zero_cost.py``, ``nb201_proxy.py``), and each rung's cost a candidate is measured. A
search visits cells the sample does not hold, so the simulation needs a score for every one of
the 15,625 cells with the measured behaviour: a Gaussian copula. The normal scores (rank-based
z-values) of the truth and of every rung on the measured cells give a correlation matrix (truth
with a rung: all cells that rung measured; two rungs: their common cells; the nearest positive
semi-definite matrix if the pairwise estimates disagree). Each replicate draws, for every cell of
the table, the rungs' latent scores given the truth's normal score from that matrix: a rung
ranks the whole table as it ranked the sample (same Spearman in expectation), and two rungs
err together as much as they did there (NASWOT and a short training both favour big networks).
The draw is fixed within a replicate: a cell scored twice gets the same score, as a
deterministic scorer gives it.

What the copula cannot know: whether a rung separates the top cells (ranks 1-300, within 1.3
points of each other) as well as it separates the whole range; it assumes so. The real search
(README, BENCHMARKS.md) checks it.

A strategy is ``searcher:rung[>rerank_rung@K]``: the searcher asks and is told the rung's score
for as many candidates as the hour allows after the re-ranking's cost (K candidates of the
second rung); then the best K distinct cells by the first rung are re-scored by the second and
the best of them is returned. ``evolution`` is ``RegularizedEvolution.for_budget``, as
``nasplay search`` makes it. Reported per strategy: the returned cell's true rank among the
15,625 (median, its 95% interval by bootstrap, mean) and the share of replicates with rank <= 30
(top 0.2%), over ``--replicates`` seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402
from nb201_truth import average_ranks, sample_cells  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
OUT = RESULTS / "nb201_ladder.json"
HOUR = 3600.0
TOP = 30

DEFAULT_STRATEGIES = (
    "random:proxy-default", "evolution:proxy-default",
    "random:proxy-c16n1-e1-10k", "evolution:proxy-c16n1-e1-10k",
    "evolution:naswot", "evolution:naswot>proxy-c16n1-e1-10k@60",
    "evolution:naswot>proxy-c16n1-e1-10k@120", "evolution:naswot>proxy-c16n1-e1-10k@180",
    "evolution:truth", "random:truth",
)


def normal_scores(values) -> np.ndarray:
    """The rank-based z-values of ``values`` (ties share their mean rank)."""
    from statistics import NormalDist

    ranks = average_ranks(values)
    inverse = np.vectorize(NormalDist().inv_cdf)
    return inverse((ranks - 0.5) / len(ranks))


def load_rungs(proxy_metric: str = "val_loss") -> dict:
    """Each rung: ``{"scores": {index: score}, "seconds": wall s a candidate}``, higher better."""
    rungs = {}
    zero = json.loads((RESULTS / "nb201_zero_cost.json").read_text())["configs"]["1x8"]
    for name, key in (("naswot", "naswot_outputs_real128"), ("params", "params"),
                      ("synflow", "synflow_he")):
        cpu = zero["stats"][key]["cpu_seconds"]
        rungs[name] = {"scores": dict(zip(zero["indices"], zero["scores"][key])),
                       "seconds": cpu}
    proxy = RESULTS / "nb201_proxy_raw.jsonl"
    if proxy.exists():
        for row in map(json.loads, proxy.read_text().splitlines()):
            rung = rungs.setdefault(f"proxy-{row['budget']}", {"scores": {}, "walls": []})
            sign = -1.0 if proxy_metric == "val_loss" else 1.0
            rung["scores"][row["index"]] = sign * row[proxy_metric]
            rung["walls"].append(row["wall_seconds"])
        for rung in rungs.values():
            if "walls" in rung:
                rung["seconds"] = float(np.mean(rung.pop("walls")))
    return rungs


def copula(rungs: dict, names: list[str], truth: dict) -> np.ndarray:
    """The correlation matrix of (truth, *names) normal scores, pairwise over common cells."""
    columns = [truth] + [rungs[n]["scores"] for n in names]
    k = len(columns)
    matrix = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            common = sorted(set(columns[i]) & set(columns[j]))
            a = normal_scores([columns[i][c] for c in common])
            b = normal_scores([_finite(columns[j][c]) for c in common])
            matrix[i, j] = matrix[j, i] = float(np.corrcoef(a, b)[0, 1])
    values, vectors = np.linalg.eigh(matrix)          # nearest PSD, unit diagonal
    matrix = vectors @ np.diag(np.clip(values, 1e-6, None)) @ vectors.T
    scale = np.sqrt(np.diag(matrix))
    return matrix / np.outer(scale, scale)


def _finite(x: float) -> float:
    return x if math.isfinite(x) else -1e300


def residual_correlation(matrix: np.ndarray) -> np.ndarray:
    """The rungs' correlation given the truth (partial correlations of the copula matrix)."""
    b = matrix[1:, 0]
    cov = matrix[1:, 1:] - np.outer(b, b)
    scale = np.sqrt(np.clip(np.diag(cov), 1e-12, None))
    return cov / np.outer(scale, scale)


def calibrate_sigma(truth_values, target: float, draws: int = 40) -> float:
    """The noise (accuracy units) that, added to the truth, ranks these cells at Spearman
    ``target`` on average: bisection on log sigma with fixed draws."""
    from nb201_truth import spearman

    truth_values = np.asarray(truth_values)
    noise = np.random.default_rng(7).standard_normal((draws, len(truth_values)))
    mean_rho = lambda sigma: float(np.mean([spearman(truth_values + sigma * n, truth_values)
                                            for n in noise]))
    low, high = math.log(1e-5), math.log(2.0)
    for _ in range(40):
        mid = (low + high) / 2
        if mean_rho(math.exp(mid)) > target:
            low = mid
        else:
            high = mid
    return math.exp((low + high) / 2)


class Field:
    """One replicate: every cell's score on each rung, drawn given the truth.

    ``copula``: latent = b * z(truth) + noise, z the truth's normal score over the table;
    ``additive``: latent = accuracy + sigma * noise, sigma calibrated per rung on its measured
    cells. Both keep the measured Spearman on random cells and the rungs' shared errors; they
    differ at the top: the copula stretches the best cells' tiny accuracy gaps into normal-score
    gaps (rank 1 vs 100: 1.3 standard deviations), the additive model keeps them 1.2 points."""

    def __init__(self, model: str, params: dict, names: list[str], oracle, rng):
        noise = rng.standard_normal((len(oracle.truth), len(names))) @ params["root"].T
        if model == "copula":
            b = params["b"]
            self.scores = {n: oracle.truth_z * b[i] + noise[:, i] for i, n in enumerate(names)}
        else:
            sigma = params["sigma"]
            self.scores = {n: oracle.truth + sigma[i] * noise[:, i]
                           for i, n in enumerate(names)}


def model_params(model: str, matrix: np.ndarray, names: list[str], rungs: dict,
                 truth: dict) -> dict:
    """What ``Field`` draws from: the noise's square root, and b (copula) or sigma (additive)."""
    from nb201_truth import spearman

    b = matrix[1:, 0]
    if model == "copula":
        cov = matrix[1:, 1:] - np.outer(b, b)
        params = {"b": b}
    else:
        cov = residual_correlation(matrix)
        sigma = []
        for name in names:
            cells = sorted(set(rungs[name]["scores"]) & set(truth))
            measured = spearman([_finite(rungs[name]["scores"][c]) for c in cells],
                                [truth[c] for c in cells])
            sigma.append(calibrate_sigma([truth[c] for c in cells], measured))
        params = {"sigma": np.asarray(sigma)}
    values, vectors = np.linalg.eigh(cov)
    params["root"] = vectors @ np.diag(np.sqrt(np.clip(values, 0, None)))
    return params


def run_strategy(spec: str, field: Field, oracle, rungs: dict, seed: int) -> dict:
    from search_space import get_space
    from searchers import RegularizedEvolution, make_searcher

    searcher_name, _, rest = spec.partition(":")
    first, _, rerank = rest.partition(">")
    second, k = (rerank.split("@") + [None])[:2] if rerank else (None, 0)
    k = int(k or 0)
    cost = lambda name: 0.0 if name == "truth" else rungs[name]["seconds"]
    budget = int((HOUR - k * cost(second)) // max(cost(first), 1e-3)) if second else \
        int(HOUR // max(cost(first), 1e-3))
    budget = min(budget, 3000) if first != "truth" else 200
    space = get_space("nb201")
    if searcher_name == "evolution":
        searcher = RegularizedEvolution.for_budget(space, budget, seed=seed)
    else:
        searcher = make_searcher(searcher_name, space, seed=seed, max_trials=budget)
    seen: dict[int, float] = {}
    for _ in range(budget):
        proposal = searcher.ask()
        index = oracle.index(proposal.genotype)
        score = oracle.truth[index] if first == "truth" else field.scores[first][index]
        seen[index] = score
        searcher.tell(proposal.trial_id, float(score))
    order = sorted(seen, key=seen.get, reverse=True)
    if second:
        shortlist = order[:k]
        pick = max(shortlist, key=lambda i: field.scores[second][i])
    else:
        pick = order[0]
    return {"rank": int(oracle.rank[pick]), "candidates": budget, "distinct": len(seen)}


class TableOracle:
    def __init__(self):
        from nasplay.scorers.nb201.table import table
        from search_space import get_space

        entries = table().entries
        self.space = get_space("nb201")
        self.by_arch = {e.arch_str: i for i, e in enumerate(entries)}
        self.truth = np.asarray([e.val_accuracy for e in entries])
        self.rank = np.asarray([e.rank for e in entries])
        self.table_index = np.asarray([e.index for e in entries])
        self.truth_z = normal_scores(self.truth)
        self.position = {int(t): i for i, t in enumerate(self.table_index)}

    def index(self, genotype) -> int:
        return self.by_arch[self.space.to_arch_str(genotype)]


def summarize(ranks: list[int], seed: int = 0) -> dict:
    ranks = np.asarray(ranks)
    rng = np.random.default_rng(seed)
    medians = [np.median(rng.choice(ranks, len(ranks))) for _ in range(2000)]
    return {"median": float(np.median(ranks)),
            "median_ci": [float(x) for x in np.percentile(medians, [2.5, 97.5])],
            "mean": float(ranks.mean()), "top30_share": float((ranks <= TOP).mean()),
            "ranks": ranks.tolist()}


def top_ranks_positions(oracle) -> list[int]:
    """The table positions of ranks 1, 26, ..., 976 (``nb201_proxy.py --sample top``)."""
    order = np.argsort(oracle.rank, kind="stable")
    return [int(i) for i in order[0:1000:25]]


def measured_top(rung: str, metric: str) -> float | None:
    """The rung's measured Spearman on the top-1,000 sample, where ``nb201_proxy.py`` has it."""
    path = RESULTS / "nb201_proxy.json"
    if not rung.startswith("proxy-") or not path.exists():
        return None
    top = json.loads(path.read_text()).get("top", {}).get(rung.removeprefix("proxy-"))
    return None if top is None else top["stats"][metric]["spearman"]


def main(argv=None) -> int:
    from nb201_truth import spearman

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strategies", nargs="+", default=list(DEFAULT_STRATEGIES))
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--models", nargs="+", default=["additive", "copula"],
                        choices=("additive", "copula"))
    parser.add_argument("--proxy-metric", default="val_loss", choices=("val_loss", "val_accuracy"))
    parser.add_argument("--cost", nargs="*", default=[], metavar="RUNG=SECONDS",
                        help="override a rung's measured wall seconds a candidate")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)

    rungs = load_rungs(args.proxy_metric)
    for item in args.cost:
        name, _, seconds = item.partition("=")
        rungs[name]["seconds"] = float(seconds)
    oracle = TableOracle()
    names = sorted({part.split("@")[0] for spec in args.strategies
                    for part in spec.split(":", 1)[1].split(">")} - {"truth"})
    truth = {c["index"]: c["val_accuracy"] for c in sample_cells()}
    matrix = copula(rungs, names, truth)
    print("copula (truth, " + ", ".join(names) + "):\n" + np.array2string(matrix, precision=2))
    print("seconds a candidate: " + ", ".join(f"{n} {rungs[n]['seconds']:.2f}" for n in names))
    report = {"replicates": args.replicates, "hour_seconds": HOUR, "top": TOP,
              "proxy_metric": args.proxy_metric,
              "rungs": {n: {"seconds": rungs[n]["seconds"], "cells": len(rungs[n]["scores"])}
                        for n in names},
              "copula": {"names": ["truth"] + names, "matrix": matrix.tolist()}, "models": {}}
    top = top_ranks_positions(oracle)
    for model in args.models:
        params = model_params(model, matrix, names, rungs, truth)
        results = {spec: [] for spec in args.strategies}
        candidates, top_rho = {}, {n: [] for n in names}
        for rep in range(args.replicates):
            field = Field(model, params, names, oracle, np.random.default_rng(10_000 + rep))
            for n in names:
                top_rho[n].append(spearman(field.scores[n][top], oracle.truth[top]))
            for spec in args.strategies:
                run = run_strategy(spec, field, oracle, rungs, seed=rep)
                results[spec].append(run["rank"])
                candidates[spec] = run["candidates"]
        entry = {"strategies": {}, "top1000_spearman": {}}
        print(f"\n## model: {model}\n\n| rung | Spearman on the top-1,000 sample: model | "
              f"measured |\n|---|---|---|")
        for n in names:
            predicted, measured = float(np.mean(top_rho[n])), measured_top(n, args.proxy_metric)
            entry["top1000_spearman"][n] = {"model": predicted, "measured": measured}
            print(f"| {n} | {predicted:.2f} | "
                  f"{'-' if measured is None else f'{measured:.2f}'} |")
        print(f"\n| strategy (one hour) | candidates | median rank [95% CI] | mean rank | "
              f"rank <= {TOP} |\n|---|---|---|---|---|")
        for spec, ranks in results.items():
            summary = summarize(ranks)
            summary["candidates"] = candidates[spec]
            entry["strategies"][spec] = summary
            lo, hi = summary["median_ci"]
            print(f"| {spec} | {candidates[spec]} | {summary['median']:.0f} [{lo:.0f}, {hi:.0f}]"
                  f" | {summary['mean']:.0f} | {100 * summary['top30_share']:.0f}% |")
        if model == "additive":
            entry["sigma"] = dict(zip(names, params["sigma"].tolist()))
        report["models"][model] = entry
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

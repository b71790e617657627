"""The fidelity ladder simulated on NAS-Bench-201: which scorers, searcher and re-ranking find
the best cell in one laptop hour, before an hour of real compute is spent on the choice.

    python -m benchmarks.nb201_ladder                    # 200 replicates, the default strategies
    python -m benchmarks.nb201_ladder --replicates 20 --out /tmp/ladder.json   # quicker

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
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.common import RESULTS
from benchmarks.nb201_truth import average_ranks, sample_cells  # noqa: E402

OUT = RESULTS / "nb201_ladder.json"
HOUR = 3600.0
TOP = 30

DEFAULT_STRATEGIES = (
    "random:proxy-c16n1-e1-10k-acc", "evolution:proxy-c16n1-e1-10k-acc",
    "evolution:proxy-c16n1-e1-10k-loss", "evolution:proxy-c16n1-e3-10k-loss",
    "evolution:proxy-c16n1-e1-10k-acc>proxy-c16n1-e3-10k-loss@8",
    "evolution:proxy-c16n1-e1-10k-acc>proxy-c16n1-e3-10k-loss@15",
    "evolution:naswot", "evolution:params",
    "evolution:naswot>proxy-c16n1-e1-10k-acc@60", "evolution:naswot>proxy-c16n1-e3-10k-loss@30",
    "evolution:truth", "random:truth",
)


def normal_scores(values) -> np.ndarray:
    """The rank-based z-values of ``values`` (ties share their mean rank)."""
    from statistics import NormalDist

    ranks = average_ranks(values)
    inverse = np.vectorize(NormalDist().inv_cdf)
    return inverse((ranks - 0.5) / len(ranks))


def op_counts(arch_str: str) -> tuple[int, int]:
    """(3x3 convolutions, 1x1 convolutions) of a cell: what a candidate's training time
    follows (the rest of the network is the same for every cell)."""
    return arch_str.count("nor_conv_3x3"), arch_str.count("nor_conv_1x1")


def load_rungs() -> dict:
    """Each rung: ``scores`` on the random sample and ``top`` on the top-1,000 sample
    ({table index: score}, higher better), and ``cost``: wall seconds a candidate as
    ``a + b3 * 3x3 convs + b1 * 1x1 convs`` (least squares over its measured cells; constant
    for a zero-cost score). Proxy rungs come per metric: ``proxy-BUDGET-acc``, ``-loss``."""
    rungs = {}
    zero = json.loads((RESULTS / "nb201_zero_cost.json").read_text())["configs"]["1x8"]
    top_file = RESULTS / "nb201_zero_cost_top.json"
    zero_top = json.loads(top_file.read_text()) if top_file.exists() else None
    for name, key in (("naswot", "naswot_outputs_real128"), ("params", "params"),
                      ("synflow", "synflow_he")):
        cpu = zero["stats"][key]["cpu_seconds"]
        rungs[name] = {"scores": dict(zip(zero["indices"], zero["scores"][key])), "top": {},
                       "cost": (cpu, 0.0, 0.0)}
        if zero_top is not None and name in zero_top.get("scores", {}):
            rungs[name]["top"] = dict(zip(zero_top["cells"], zero_top["scores"][name]))
    proxy = RESULTS / "nb201_proxy_raw.jsonl"
    rows = [json.loads(line) for line in proxy.read_text().splitlines()] if proxy.exists() \
        else []
    for budget in sorted({r["budget"] for r in rows}):
        mine = [r for r in rows if r["budget"] == budget]
        x = np.asarray([(1.0, *op_counts(r["arch_str"])) for r in mine])
        cost = tuple(np.linalg.lstsq(x, [r["wall_seconds"] for r in mine], rcond=None)[0])
        for suffix, metric, sign in (("acc", "val_accuracy", 1.0), ("loss", "val_loss", -1.0)):
            rung = rungs[f"proxy-{budget}-{suffix}"] = {"scores": {}, "top": {}, "cost": cost}
            for r in mine:   # the random and top samples (not the hour's own cells)
                where = {"random": "scores", "top": "top"}.get(r.get("sample", "random"))
                if where is not None:
                    rung[where][r["index"]] = sign * r[metric]
    return rungs


def copula(rungs: dict, names: list[str], truth: dict, top_truth: dict) -> np.ndarray:
    """The correlation matrix of (truth, *names) normal scores, pairwise over common cells of
    the random sample; a pair with fewer than 10 there (a rung measured on the top sample only,
    such as a 3-epoch proxy) is taken on its common top-sample cells instead, an approximation
    the report names."""
    columns = [truth] + [rungs[n]["scores"] for n in names]
    tops = [top_truth] + [rungs[n]["top"] for n in names]
    k = len(columns)
    matrix = np.eye(k)
    for i in range(k):
        for j in range(i + 1, k):
            common = sorted(set(columns[i]) & set(columns[j]))
            if len(common) < 10:
                columns_ij = (tops[i], tops[j])
                common = sorted(set(tops[i]) & set(tops[j]))
            else:
                columns_ij = (columns[i], columns[j])
            a = normal_scores([columns_ij[0][c] for c in common])
            b = normal_scores([_finite(columns_ij[1][c]) for c in common])
            matrix[i, j] = matrix[j, i] = float(np.corrcoef(a, b)[0, 1])
    return _nearest_correlation(matrix)


def _nearest_correlation(matrix: np.ndarray) -> np.ndarray:
    """The nearest positive semi-definite matrix with a unit diagonal (eigenvalues clipped)."""
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


class Field:
    """One replicate: every cell's score on each rung, drawn given the truth:
    ``g(truth) + sigma * noise``, the noise correlated across rungs as the copula says.

    ``g`` blends two scales of the truth, each standardized over the table: its normal score
    (rank-based: the copula's scale, which stretches the best cells' small accuracy gaps, rank 1
    vs 100 1.3 standard deviations) and the accuracy itself (1.2 points, a small fraction of
    its spread). ``lam`` 1 is the Gaussian copula, 0 additive noise on the accuracy. Each rung's
    ``lam`` and ``sigma`` are fitted to its two measurements: the Spearman on the random sample
    and on the top-1,000 sample (without a top measurement: the ``--models`` choice)."""

    def __init__(self, params: dict, names: list[str], oracle, rng):
        noise = rng.standard_normal((len(oracle.truth), len(names))) @ params["root"].T
        self.scores = {n: blend(oracle, params["lam"][i]) + params["sigma"][i] * noise[:, i]
                       for i, n in enumerate(names)}


def blend(oracle, lam: float, cells=None) -> np.ndarray:
    z, acc = oracle.truth_z, oracle.truth
    z = (z - z.mean()) / z.std()
    acc = (acc - acc.mean()) / acc.std()
    g = lam * z + (1 - lam) * acc
    return g if cells is None else g[cells]


def mean_spearman(signal: np.ndarray, truth: np.ndarray, sigma: float, draws: int = 40) -> float:
    from benchmarks.nb201_truth import spearman

    noise = np.random.default_rng(7).standard_normal((draws, len(signal)))
    return float(np.mean([spearman(signal + sigma * n, truth) for n in noise]))


def fit_sigma(signal: np.ndarray, truth: np.ndarray, target: float) -> float:
    """The noise that ranks these cells at Spearman ``target`` on average (bisection)."""
    low, high = math.log(1e-4), math.log(50.0)
    for _ in range(30):
        mid = (low + high) / 2
        low, high = (mid, high) if mean_spearman(signal, truth, math.exp(mid)) > target \
            else (low, mid)
    return math.exp((low + high) / 2)


def fit_rung(oracle, rung: dict, default_lam: float) -> dict:
    """``lam`` and ``sigma`` of one rung: sigma keeps the random sample's Spearman for each
    ``lam`` of a grid; the ``lam`` whose top-1,000 Spearman comes nearest the measured one
    wins (``default_lam`` where the rung has no top measurement of 10 cells or more)."""
    from benchmarks.nb201_truth import spearman

    def measured(scores: dict) -> tuple[list[int], np.ndarray, float]:
        cells = [oracle.position[i] for i in scores]
        values = [_finite(scores[i]) for i in scores]
        return cells, oracle.truth[cells], spearman(values, oracle.truth[cells])

    top = measured(rung["top"]) if len(rung["top"]) >= 10 else None
    if len(rung["scores"]) < 10:      # measured on the top sample only: sigma from it
        sigma = fit_sigma(blend(oracle, default_lam, top[0]), top[1], top[2])
        return {"lam": default_lam, "sigma": sigma, "miss": 0.0, "random": None,
                "top_measured": top[2], "top_predicted": top[2]}
    cells, truth, rho = measured(rung["scores"])
    grid = [default_lam] if top is None else [round(x, 2) for x in np.linspace(0, 1, 11)]
    best = None
    for lam in grid:
        sigma = fit_sigma(blend(oracle, lam, cells), truth, rho)
        predicted = None if top is None else mean_spearman(blend(oracle, lam, top[0]),
                                                           top[1], sigma)
        miss = 0.0 if top is None else abs(predicted - top[2])
        if best is None or miss < best["miss"]:
            best = {"lam": lam, "sigma": sigma, "miss": miss, "random": rho,
                    "top_measured": None if top is None else top[2],
                    "top_predicted": predicted}
    return best


def model_params(model: str, matrix: np.ndarray, names: list[str], rungs: dict,
                 oracle) -> dict:
    """What ``Field`` draws from: per rung ``lam`` and ``sigma`` (``fit_rung``; ``model``
    fixes ``lam`` where a rung has no top measurement: copula 1, additive 0, calibrated 0.5)
    and the square root of the rungs' residual correlation."""
    if model == "calibrated":
        fits = [fit_rung(oracle, rungs[n], 0.5) for n in names]
    else:
        lam = {"copula": 1.0, "additive": 0.0}[model]
        # the top sample only where a rung has no random one (else the blend is fixed)
        fits = [fit_rung(oracle, {**rungs[n], "top": {}} if len(rungs[n]["scores"]) >= 10
                         else rungs[n], lam) for n in names]
    values, vectors = np.linalg.eigh(residual_correlation(matrix))
    return {"lam": [f["lam"] for f in fits], "sigma": [f["sigma"] for f in fits],
            "fits": dict(zip(names, fits)),
            "root": vectors @ np.diag(np.sqrt(np.clip(values, 0, None)))}


def run_strategy(spec: str, field: Field, oracle, rungs: dict, seed: int) -> dict:
    """One hour of ``spec``: the first rung until the hour less the re-ranking's share is
    spent (each candidate charged its own cost), then the best K re-scored by the second."""
    from search_space import get_space
    from searchers import RegularizedEvolution, make_searcher

    searcher_name, _, rest = spec.partition(":")
    first, _, rerank = rest.partition(">")
    second, k = (rerank.split("@") + [None])[:2] if rerank else (None, 0)
    k = int(k or 0)
    cost = lambda name, i: 0.0 if name == "truth" else oracle.cost(rungs[name]["cost"], i)
    typical = lambda name: 0.0 if name == "truth" else oracle.mean_cost(rungs[name]["cost"])
    # the re-scored cells are the best ones, which cost more than the table's mean cell
    # (a 3-epoch proxy: 71 s on the best 1,000 against 64 s on average)
    reserve = k * (typical(second) if second else 0.0) * 1.15
    if reserve >= HOUR:
        raise ValueError(f"{spec}: re-scoring {k} candidates takes the whole hour")
    budget = 200 if first == "truth" else int((HOUR - reserve) // max(typical(first), 1e-3))
    budget = max(1, min(budget, 5000))
    space = get_space("nb201")
    if searcher_name == "evolution":
        searcher = RegularizedEvolution.for_budget(space, budget, seed=seed)
    else:
        searcher = make_searcher(searcher_name, space, seed=seed, max_trials=budget)
    seen: dict[int, float] = {}
    spent, asked = 0.0, 0
    while asked < budget and (first == "truth" or spent < HOUR - reserve):
        proposal = searcher.ask()
        index = oracle.index(proposal.genotype)
        spent += cost(first, index)
        asked += 1
        score = oracle.truth[index] if first == "truth" else field.scores[first][index]
        seen[index] = score
        searcher.tell(proposal.trial_id, float(score))
    order = sorted(seen, key=seen.get, reverse=True)
    pick = order[0]
    if second:
        shortlist = order[:k]
        spent += sum(cost(second, i) for i in shortlist)
        pick = max(shortlist, key=lambda i: field.scores[second][i])
    return {"rank": int(oracle.rank[pick]), "candidates": asked, "distinct": len(seen),
            "seconds": spent}


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
        self.ops = np.asarray([op_counts(e.arch_str) for e in entries], dtype=np.float64)

    def cost(self, model: tuple, i: int) -> float:
        a, b3, b1 = model
        return max(0.1, a + b3 * self.ops[i, 0] + b1 * self.ops[i, 1])

    def mean_cost(self, model: tuple) -> float:
        a, b3, b1 = model
        return float(a + b3 * self.ops[:, 0].mean() + b1 * self.ops[:, 1].mean())

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


def main(argv=None) -> int:
    from benchmarks.nb201_truth import spearman

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strategies", nargs="+", default=list(DEFAULT_STRATEGIES))
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--models", nargs="+", default=["calibrated", "additive", "copula"],
                        choices=("calibrated", "additive", "copula"))
    parser.add_argument("--cost", nargs="*", default=[], metavar="RUNG=SECONDS",
                        help="override a rung's cost: a constant wall seconds a candidate")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args(argv)

    rungs = load_rungs()
    for item in args.cost:
        name, _, seconds = item.partition("=")
        rungs[name]["cost"] = (float(seconds), 0.0, 0.0)
    oracle = TableOracle()
    names = sorted({part.split("@")[0] for spec in args.strategies
                    for part in spec.split(":", 1)[1].split(">")} - {"truth"})
    truth = {c["index"]: c["val_accuracy"] for c in sample_cells()}
    top = top_ranks_positions(oracle)
    top_truth = {int(oracle.table_index[i]): float(oracle.truth[i]) for i in top}
    matrix = copula(rungs, names, truth, top_truth)
    print("copula (truth, " + ", ".join(names) + "):\n" + np.array2string(matrix, precision=2))
    print("wall s a candidate (table mean): " + ", ".join(
        f"{n} {oracle.mean_cost(rungs[n]['cost']):.1f}" for n in names))
    report = {"replicates": args.replicates, "hour_seconds": HOUR, "top": TOP,
              "rungs": {n: {"cost": list(rungs[n]["cost"]), "cells": len(rungs[n]["scores"]),
                            "top_cells": len(rungs[n]["top"])} for n in names},
              "copula": {"names": ["truth"] + names, "matrix": matrix.tolist()}, "models": {}}
    for model in args.models:
        params = model_params(model, matrix, names, rungs, oracle)
        results = {spec: [] for spec in args.strategies}
        runs, top_rho = {spec: [] for spec in args.strategies}, {n: [] for n in names}
        for rep in range(args.replicates):
            field = Field(params, names, oracle, np.random.default_rng(10_000 + rep))
            for n in names:
                top_rho[n].append(spearman(field.scores[n][top], oracle.truth[top]))
            for spec in args.strategies:
                run = run_strategy(spec, field, oracle, rungs, seed=rep)
                results[spec].append(run["rank"])
                runs[spec].append(run)
        entry = {"strategies": {}, "fits": params["fits"]}
        print(f"\n## model: {model}\n\n| rung | lam | sigma | Spearman random (measured) | "
              f"top-1,000: model | measured |\n|---|---|---|---|---|---|")
        for n in names:
            fit = params["fits"][n]
            fit["top_simulated"] = float(np.mean(top_rho[n]))
            measured = fit["top_measured"]
            random = "-" if fit["random"] is None else f"{fit['random']:.2f}"
            print(f"| {n} | {fit['lam']:.1f} | {fit['sigma']:.2f} | {random} | "
                  f"{fit['top_simulated']:.2f} | "
                  f"{'-' if measured is None else f'{measured:.2f}'} |")
        print(f"\n| strategy (one hour) | candidates | minutes | median rank [95% CI] | "
              f"mean rank | rank <= {TOP} |\n|---|---|---|---|---|---|")
        for spec, ranks in results.items():
            summary = summarize(ranks)
            summary["candidates"] = float(np.mean([r["candidates"] for r in runs[spec]]))
            summary["minutes"] = float(np.mean([r["seconds"] for r in runs[spec]])) / 60
            entry["strategies"][spec] = summary
            lo, hi = summary["median_ci"]
            print(f"| {spec} | {summary['candidates']:.0f} | {summary['minutes']:.0f} | "
                  f"{summary['median']:.0f} [{lo:.0f}, {hi:.0f}] | {summary['mean']:.0f} | "
                  f"{100 * summary['top30_share']:.0f}% |")
        report["models"][model] = entry
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

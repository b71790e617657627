"""A model of the deep rung's errors on NAS-Bench-201, and the hour's recipes replayed through it.

Why: one laptop hour costs 35-50 minutes of the 2-core machine, so recipes cannot be compared by
running each on enough seeds. Every 1-epoch training of the deep rung (C=8, N=5, 10,000 images,
2,000 held out) the project has measured is a sample of how that rung's held-out loss errs
against the table; a model fitted to them, replayed through the real searcher on the 15,625
cells, compares recipes in seconds. It judges recipes before they run; the hours judge the model.

The model (``fit``): for a cell of true 12-epoch validation accuracy ``t`` (the table's),

    -val_loss = offset[run] + f(t) + e,    e ~ Normal(0, scale * sd(t)),

``f`` piecewise linear in ``t`` (knots ``KNOTS``), one offset per run (a seed's images shift every
loss alike), ``sd(t)`` the residuals' spread in bands of ``t`` (``BANDS``). A cell's parameter
count follows from its numbers of 3x3 and 1x1 convolutions (fitted exactly). ``scale`` is
calibrated so the model ranks 50 random cells and the 40 cells spread over the best 1,000 as the
rung measured (``nb201_proxy``: 0.82 and 0.55 by loss). The residual does not depend on the
parameter count (its slope in log parameters is ~0), so the size is a second, independent signal
of ``t``: that is what ``--size-prior`` adds.

Cells (``fit_rows``): ``nb201_proxy_raw.jsonl``'s rows of that budget (50 random cells at seeds 0
and 4, 40 top cells, 9 hour cells) and the first-rung trials of the hours in ``FIT_RUNS`` (8
hours of 90 trials), 860 trainings: the set the recipe ``deep-sized`` was chosen on.

A recipe (``RECIPES``) is evolution's population and tournament, the size prior ``B`` (the
searched score is the model's loss plus ``B`` per doubling of the parameters) and the final pick:
``first`` (the best by the searched score) or ``params`` (of the best 6 by it, the most
parameters: ``--rerank-top 6 --rerank-scorer synflow --rerank-metric params``). Each is replayed
with ``--runs`` seeds of 90 candidates (searcher seed ``s``, the model's noise seeded apart);
reported: the returned cell's true rank (median with a bootstrap 95% interval), the share of
runs returning a top-30 cell (Wilson 95% interval), the chance that the median of 3 hours is <= 30
(from that share), and the best cell visited.

Also reported, without the model: the sized loss (``-loss + B * log2(params)``, ``--size-prior
B``) against the truth on each group of measured trainings, for ``B`` in ``PRIORS``.

    python -m benchmarks.nb201_surrogate                 # fit, calibrate, replay: nb201_surrogate.json
    python -m benchmarks.nb201_surrogate --runs 20 --out /tmp/s.json    # quick
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import RESULTS, write_json
from benchmarks.nb201_truth import spearman

BUDGET = "c8n5-e1-10k"
FIT_RUNS = ("deep_s0", "deep_s1", "deep_s2", "deep-params_s3", "deep-params_s4",
            "deep-rank-average_s5", "deep-loss_s3", "deep-loss_s4")
KNOTS = (0.1, 0.6, 0.72, 0.78, 0.81, 0.825, 0.835, 0.845, 0.85)
BANDS = (0.6, 0.75, 0.8, 0.83)            # sd(t) is fitted in the bands these edges make
BAND_CENTRES = (0.55, 0.7, 0.78, 0.815, 0.85)
SCALES = (0.6, 0.7, 0.8, 0.9, 1.0)
TRIALS = 90
TOP = 30


@dataclass(frozen=True)
class Recipe:
    population: int
    tournament: int
    size_prior: float
    pick: str                 # "first" or "params" (of the best 6 by the searched score)


RECIPES = {
    "deep-loss (P10 T5, B 0, params of best 6)": Recipe(10, 5, 0.0, "params"),
    "deep-sized (P20 T10, B 0.05, params of best 6)": Recipe(20, 10, 0.05, "params"),
    "P20 T10, B 0.05, first": Recipe(20, 10, 0.05, "first"),
    "P10 T5, B 0.05, params of best 6": Recipe(10, 5, 0.05, "params"),
    "P20 T10, B 0, params of best 6": Recipe(20, 10, 0.0, "params"),
    "P20 T10, B 0.03, params of best 6": Recipe(20, 10, 0.03, "params"),
    "P20 T10, B 0.08, params of best 6": Recipe(20, 10, 0.08, "params"),
    "P30 T15, B 0.05, params of best 6": Recipe(30, 15, 0.05, "params"),
}


PRIORS = (0.0, 0.02, 0.03, 0.05, 0.08, 0.12)


def sized_on_measured(rows: list[dict]) -> dict:
    """The size prior on the trainings themselves, no model: per source (a sample at a seed, an
    hour's visited cells), Spearman of ``-loss + B * log2(params)`` with the truth, per ``B``."""
    out = {}
    for source in sorted({r["source"] for r in rows}):
        cells = [r for r in rows if r["source"] == source]
        truth = [r["truth"] for r in cells]
        out[source] = {"cells": len(cells), "spearman": {
            str(b): spearman([r["y"] + b * math.log2(r["params"]) for r in cells], truth)
            for b in PRIORS}}
    return out


def conv_counts(arch_str: str) -> tuple[int, int]:
    return arch_str.count("nor_conv_3x3"), arch_str.count("nor_conv_1x1")


def fit_rows(results: Path = RESULTS, runs=FIT_RUNS) -> list[dict]:
    """Every measured training of the deep rung: source, arch, -loss, params, truth."""
    from nasplay.scorers.nb201.table import table
    from search_space import Genotype, get_space

    lookup, space = table(), get_space("nb201")
    rows = []
    for line in (results / "nb201_proxy_raw.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["budget"] == BUDGET:
            rows.append({"source": f"{r.get('sample') or 'random'} seed {r.get('seed', 0)}",
                         "arch": r["arch_str"], "y": -r["val_loss"], "params": r["params"]})
    for run in runs:
        for line in (results / f"nb201_hour_{run}_trials.jsonl").read_text().splitlines():
            t = json.loads(line)
            if "rescore" in t or t.get("status") != "completed":
                continue
            arch = space.to_arch_str(Genotype.from_dict(t["genotype"]))
            rows.append({"source": run, "arch": arch, "y": -t["metrics"]["val_loss"],
                         "params": t["metrics"]["params"]})
    for r in rows:
        r["truth"] = lookup.lookup(r["arch"]).val_accuracy
    return rows


def _hats(t) -> np.ndarray:
    """Piecewise-linear basis on ``KNOTS``: column j is 1 at knot j, 0 at the others."""
    eye = np.eye(len(KNOTS))
    return np.stack([np.interp(t, KNOTS, eye[j]) for j in range(len(KNOTS))], axis=1)


def fit(rows: list[dict]) -> dict:
    """f at the knots, sd per band, the parameter formula, and the residual's slope in
    log2 parameters (how much the loss itself favours size, beyond the truth)."""
    sources = sorted({r["source"] for r in rows})
    t = np.array([r["truth"] for r in rows])
    y = np.array([r["y"] for r in rows])
    offsets = np.zeros((len(rows), len(sources)))
    for i, r in enumerate(rows):
        offsets[i, sources.index(r["source"])] = 1.0
    design = np.hstack([offsets[:, 1:], _hats(t)])     # the first source's offset is 0
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coef
    band = np.digitize(t, BANDS)
    sd = [float(residual[band == b].std()) for b in range(len(BANDS) + 1)]
    counts = np.array([[1.0, *conv_counts(r["arch"])] for r in rows])
    params = np.array([r["params"] for r in rows], dtype=float)
    pcoef, *_ = np.linalg.lstsq(counts, params, rcond=None)
    log2p = np.log2(params)
    slope = float(np.polyfit(log2p - log2p.mean(), residual, 1)[0])
    return {"cells": len(rows), "sources": sources, "knots": list(KNOTS),
            "f": [float(v) for v in coef[len(sources) - 1:]], "band_edges": list(BANDS),
            "sd": sd, "params_formula": [float(v) for v in pcoef],
            "params_error_max": float(np.abs(counts @ pcoef - params).max()),
            "residual_slope_per_doubling": slope}


class Model:
    """The fitted model over the whole table, for one noise scale."""

    def __init__(self, fitted: dict, scale: float):
        from nasplay.scorers.nb201.table import table

        entries = table().entries
        self.arch = [e.arch_str for e in entries]
        self.index = {a: i for i, a in enumerate(self.arch)}
        self.truth = np.array([e.val_accuracy for e in entries])
        self.rank = np.array([e.rank for e in entries])
        n3, n1 = np.array([conv_counts(a) for a in self.arch]).T
        base, k3, k1 = fitted["params_formula"]
        self.log2p = np.log2(base + k3 * n3 + k1 * n1)
        self.mean = np.interp(self.truth, fitted["knots"], fitted["f"])
        self.unit_sd = np.interp(self.truth, BAND_CENTRES, fitted["sd"])
        self.sd = scale * self.unit_sd

    def rescaled(self, scale: float) -> Model:
        """The same model at another noise scale (the table is read once)."""
        other = copy.copy(self)
        other.sd = scale * self.unit_sd
        return other

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One run's losses (negated) for every cell: each network is trained once a run."""
        return self.mean + rng.normal(0.0, 1.0, len(self.mean)) * self.sd


def calibrate(fitted: dict, rows: list[dict], draws: int = 200) -> dict:
    """The noise scale whose Spearman on 50 random cells and on the 40 top cells best matches
    the rung's measured ones (random cells at both seeds pooled; the top cells at seed 0)."""
    def measured(source):
        cells = [r for r in rows if r["source"].startswith(source)]
        return float(np.mean([spearman([r["y"] for r in cells if r["source"] == s],
                                       [r["truth"] for r in cells if r["source"] == s])
                              for s in sorted({r["source"] for r in cells})]))

    target = {"random": measured("random"), "top": measured("top")}
    top_arch = [r["arch"] for r in rows if r["source"].startswith("top")]
    trials = {}
    unit = Model(fitted, 1.0)
    for scale in SCALES:
        model = unit.rescaled(scale)
        rng = np.random.default_rng(0)
        top = np.array([model.index[a] for a in top_arch])
        random_rho, top_rho = [], []
        for _ in range(draws):
            y = model.draw(rng)
            cells = rng.choice(len(y), 50, replace=False)
            random_rho.append(spearman(y[cells], model.truth[cells]))
            top_rho.append(spearman(y[top], model.truth[top]))
        trials[scale] = {"random": float(np.mean(random_rho)), "top": float(np.mean(top_rho))}
    best = min(SCALES, key=lambda s: sum((trials[s][k] - target[k]) ** 2 for k in target))
    return {"measured": target, "by_scale": {str(s): v for s, v in trials.items()},
            "scale": best}


def replay(model: Model, recipe: Recipe, seed: int, trials: int = TRIALS) -> dict:
    """One hour of ``recipe`` on the model: the true ranks of the returned and best visited."""
    from search_space import get_space
    from searchers import RegularizedEvolution

    space = get_space("nb201")
    loss = model.draw(np.random.default_rng(10_000_019 + seed))
    searched = loss + recipe.size_prior * model.log2p
    evolution = RegularizedEvolution(space, population_size=recipe.population,
                                     sample_size=recipe.tournament, seed=seed)
    visited = []
    for _ in range(trials):
        proposal = evolution.ask()
        i = model.index[space.to_arch_str(proposal.genotype)]
        evolution.tell(proposal.trial_id, float(searched[i]))
        visited.append(i)
    by_score = sorted(visited, key=lambda i: -searched[i])
    pick = by_score[0] if recipe.pick == "first" else max(by_score[:6],
                                                           key=lambda i: model.log2p[i])
    return {"rank": int(model.rank[pick]), "best_visited": int(model.rank[visited].min())}


def wilson(successes: int, n: int, z: float = 1.96) -> list[float]:
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def summarize(ranks, visited, seed: int = 0) -> dict:
    ranks = np.asarray(ranks)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(ranks, (2000, len(ranks))), axis=1)
    hits = int((ranks <= TOP).sum())
    p = hits / len(ranks)
    return {"median_rank": float(np.median(ranks)),
            "median_rank_ci": [float(v) for v in np.percentile(medians, [2.5, 97.5])],
            "top30_share": p, "top30_share_ci": wilson(hits, len(ranks)),
            "median_of_3_top30": p ** 3 + 3 * p * p * (1 - p),
            "best_visited_median": float(np.median(visited))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="simulated hours per recipe")
    parser.add_argument("--out", type=Path, default=RESULTS / "nb201_surrogate.json")
    args = parser.parse_args(argv)

    rows = fit_rows()
    fitted = fit(rows)
    calibration = calibrate(fitted, rows)
    model = Model(fitted, calibration["scale"])
    print(f"model: {fitted['cells']} trainings, f at {fitted['knots']} = "
          f"{[round(v, 3) for v in fitted['f']]}, sd by band {[round(v, 3) for v in fitted['sd']]}, "
          f"residual slope {fitted['residual_slope_per_doubling']:+.4f} a doubling; noise scale "
          f"{calibration['scale']} (Spearman random / top: measured "
          f"{calibration['measured']['random']:.2f} / {calibration['measured']['top']:.2f}, model "
          f"{calibration['by_scale'][str(calibration['scale'])]['random']:.2f} / "
          f"{calibration['by_scale'][str(calibration['scale'])]['top']:.2f})")
    measured = sized_on_measured(rows)
    print("\nThe size prior on the measured trainings (Spearman with the truth):\n")
    print("| cells | n | " + " | ".join(f"B {b:g}" for b in PRIORS) + " |")
    print("|---|---|" + "---|" * len(PRIORS))
    for source, m in measured.items():
        print(f"| {source} | {m['cells']} | "
              + " | ".join(f"{m['spearman'][str(b)]:.3f}" for b in PRIORS) + " |")
    results = {}
    print(f"\n{args.runs} simulated hours of {TRIALS} candidates a recipe:\n")
    print("| recipe | true rank returned, median [95% CI] | top-30 share [95% CI] | "
          "median of 3 hours <= 30 | best visited, median |")
    print("|---|---|---|---|---|")
    for name, recipe in RECIPES.items():
        runs = [replay(model, recipe, seed) for seed in range(args.runs)]
        s = summarize([r["rank"] for r in runs], [r["best_visited"] for r in runs])
        results[name] = {"recipe": recipe.__dict__, **s,
                         "ranks": [r["rank"] for r in runs]}
        print(f"| {name} | {s['median_rank']:.0f} [{s['median_rank_ci'][0]:.0f}, "
              f"{s['median_rank_ci'][1]:.0f}] | {s['top30_share']:.2f} "
              f"[{s['top30_share_ci'][0]:.2f}, {s['top30_share_ci'][1]:.2f}] | "
              f"{s['median_of_3_top30']:.2f} | {s['best_visited_median']:.0f} |", flush=True)
    write_json(args.out, {"model": fitted, "calibration": calibration, "runs": args.runs,
                          "trials": TRIALS, "recipes": results, "sized_on_measured": measured})
    print(f"\n-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

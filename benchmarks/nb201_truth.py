"""The fixed sample every scorer is judged on, and how a ranking is compared with the truth.

One sample for every fidelity figure on NAS-Bench-201: 200 cells drawn by
``get_space("nb201").sample`` from ``numpy.random.default_rng(0)`` (distinct), listed with their
table values in ``benchmarks/results/nb201_sample200.json``. The truth is the table's 12-epoch
validation accuracy. A score is judged by Spearman's rho and Kendall's tau-b against it, each
with a bootstrap 95% interval (cells resampled with replacement), and by the overlap of the
10 best cells by the score with the 10 best by the truth.

    python -m benchmarks.nb201_truth          # writes the sample file and prints its summary
    python -m benchmarks.nb201_truth --smoke --out /tmp/x   # 10 cells: /tmp/x/nb201_sample10.json

Imported by the scorer benchmarks (``from nb201_truth import sample_cells, rank_stats``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, RESULTS, add_smoke

SAMPLE_FILE = RESULTS / "nb201_sample200.json"
SAMPLE_SIZE, SAMPLE_SEED = 200, 0
BOOTSTRAP_DRAWS = 2000


def sample_cells(n: int = SAMPLE_SIZE, seed: int = SAMPLE_SEED) -> list[dict]:
    """``n`` distinct random nb201 cells with the table's values: dicts with ``arch_str``,
    ``genotype`` (its JSON dict), ``val_accuracy``, ``test_accuracy``, ``rank``, ``index``."""
    from nasplay.scorers.nb201.table import table
    from search_space import get_space

    space, rng, cells, seen = get_space("nb201"), np.random.default_rng(seed), [], set()
    while len(cells) < n:
        genotype = space.sample(rng)
        arch = space.to_arch_str(genotype)
        if arch in seen:
            continue
        seen.add(arch)
        entry = table().lookup(arch)
        cells.append({"arch_str": arch, "genotype": genotype.to_dict(),
                      "val_accuracy": entry.val_accuracy, "test_accuracy": entry.test_accuracy,
                      "rank": entry.rank, "index": entry.index})
    return cells


def average_ranks(values) -> np.ndarray:
    """Ranks 1..n, ties given the mean of the ranks they span."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.flatnonzero(np.r_[True, sorted_x[1:] != sorted_x[:-1]])
    ends = np.r_[starts[1:], len(x)]
    ranks = np.empty(len(x))
    ranks[order] = np.repeat((starts + 1 + ends) / 2.0, ends - starts)
    return ranks


def spearman(a, b) -> float:
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / denominator) if denominator > 0 else float("nan")


def kendall(a, b) -> float:
    """Kendall's tau-b (ties in either variable accounted for); O(n^2), fine for hundreds."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    da = np.sign(a[:, None] - a[None, :])
    db = np.sign(b[:, None] - b[None, :])
    upper = np.triu_indices(len(a), k=1)
    da, db = da[upper], db[upper]
    concordance = (da * db).sum()
    denominator = np.sqrt((da != 0).sum() * (db != 0).sum())
    return float(concordance / denominator) if denominator > 0 else float("nan")


def top_overlap(scores, truth, k: int = 10) -> int:
    """How many of the ``k`` best cells by ``scores`` are among the ``k`` best by ``truth``."""
    best = lambda values: set(np.argsort(-np.asarray(values, np.float64), kind="stable")[:k])
    return len(best(scores) & best(truth))


def rank_stats(scores, truth, seed: int = 0, draws: int = BOOTSTRAP_DRAWS) -> dict:
    """Spearman and Kendall with bootstrap 95% intervals, and the top-10 overlap. Cells whose
    score is not finite (a failed candidate) are left out and counted."""
    scores, truth = np.asarray(scores, np.float64), np.asarray(truth, np.float64)
    keep = np.isfinite(scores) & np.isfinite(truth)
    s, t = scores[keep], truth[keep]
    rng = np.random.default_rng(seed)
    boot = {"spearman": [], "kendall": []}
    for _ in range(draws):
        pick = rng.integers(0, len(s), len(s))
        boot["spearman"].append(spearman(s[pick], t[pick]))
        boot["kendall"].append(kendall(s[pick], t[pick]))
    stats = {"n": int(keep.sum()), "left_out": int((~keep).sum()),
             "spearman": spearman(s, t), "kendall": kendall(s, t),
             "top10_overlap": top_overlap(s, t)}
    for name, values in boot.items():
        low, high = np.nanpercentile(values, [2.5, 97.5])
        stats[f"{name}_ci"] = [float(low), float(high)]
    return stats


def format_stats(name: str, stats: dict, seconds: float | None = None) -> str:
    """One table row: ``| name | rho [lo, hi] | tau [lo, hi] | top-10 | s/cell |``."""
    rho, tau = stats["spearman"], stats["kendall"]
    (rlo, rhi), (tlo, thi) = stats["spearman_ci"], stats["kendall_ci"]
    cost = "" if seconds is None else f"{seconds:.2f}"
    return (f"| {name} | {rho:.3f} [{rlo:.2f}, {rhi:.2f}] | {tau:.3f} [{tlo:.2f}, {thi:.2f}] | "
            f"{stats['top10_overlap']}/10 | {stats['n']} | {cost} |")


TABLE_HEADER = ("| score | Spearman [95% CI] | Kendall [95% CI] | top-10 overlap | cells | "
                "CPU s/cell |\n|---|---|---|---|---|---|")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=SAMPLE_SIZE,
                        help="the sample's size (the scorer benchmarks use 200)")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="the folder of the sample file, nb201_sample<cells>.json")
    add_smoke(parser, cells=10)
    args = parser.parse_args(argv)
    if args.smoke and args.out.resolve() == RESULTS.resolve():
        parser.error("--smoke: give --out a folder other than benchmarks/results")
    cells = sample_cells(args.cells)
    path = args.out / f"nb201_sample{args.cells}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"seed": SAMPLE_SEED, "cells": cells}, indent=1) + "\n")
    values = np.array([c["val_accuracy"] for c in cells])
    shown = path.relative_to(REPO) if path.resolve().is_relative_to(REPO) else path
    print(f"{len(cells)} cells -> {shown}; validation accuracy "
          f"{values.min():.4f}..{values.max():.4f}, mean {values.mean():.4f}; best rank "
          f"{min(c['rank'] for c in cells)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

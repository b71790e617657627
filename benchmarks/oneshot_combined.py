"""Do the one-shot score and NASWOT err in the same places? Their rank average, on the fidelity cells.

The one-shot score of a briefly trained supernet and the zero-cost NASWOT score each rank the
fidelity cells weakly (Spearman ~0.2-0.3 against the long standalone run), and they barely agree
with each other. Two weak scores whose errors are unrelated rank better together than either
alone; this script measures whether that holds here, with no fitted weights: the plain average of
the two ranks. For every 48-cell result file of ``oneshot_benchmark.py fidelity`` (one supernet
each) it prints the Spearman coefficient against the long run of the one-shot score, of NASWOT, of
their rank average, and the two scores' agreement; then, for each group of repeated trainings,
the mean and a paired bootstrap over cells of (rank average - NASWOT), so the gain is read against
the sampling error of 48 cells, not only against the spread between trainings.

    python -m benchmarks.oneshot_combined
    python -m benchmarks.oneshot_combined --by oneshot_neg_loss     # the cross-entropy score
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
from scipy.stats import rankdata, spearmanr

from benchmarks.common import RESULTS, add_smoke


def rank_average(*scores) -> np.ndarray:
    """The mean of each score's ranks (ties averaged): higher is better, as for the scores."""
    return np.mean([rankdata(s) for s in scores], axis=0)


def spearman(a, b) -> float:
    return float(spearmanr(a, b).statistic)


def bootstrap_gain(trainings, draws: int = 2000, seed: int = 0):
    """Mean and 95% interval of the gain spearman(combined, long) - spearman(naswot, long),
    averaged over a configuration's trainings, with the cells resampled with replacement (one
    resample for every training and both scores: a paired difference). ``trainings``: one
    ``(combined, naswot, long)`` per training, over the same cells in the same order."""
    rng = np.random.default_rng(seed)
    cells = len(trainings[0][2])
    gains = []
    for _ in range(draws):
        pick = rng.integers(0, cells, cells)
        gains.append(np.mean([spearman(c[pick], L[pick]) - spearman(n[pick], L[pick])
                              for c, n, L in trainings]))
    gains = np.asarray(gains)
    return float(gains.mean()), float(np.percentile(gains, 2.5)), float(np.percentile(gains, 97.5))


def group_of(stem: str) -> str:
    """The configuration a result file belongs to: its name without seed and repeat tags."""
    name = stem.removeprefix("oneshot_fidelity_amoebanet_affinefree")
    name = re.sub(r"_seed\d+|_48cells|_rerun$", "", name).strip("_")
    return name or "default"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--by", default="oneshot", choices=("oneshot", "oneshot_neg_loss"),
                        help="which one-shot score of the result files")
    parser.add_argument("--cells", type=int, default=48, help="only files scoring this many cells")
    add_smoke(parser)  # reads the committed results, writes nothing
    args = parser.parse_args(argv)

    rows, groups = [], {}
    for path in sorted(args.results.glob("oneshot_fidelity_amoebanet_affinefree*.json")):
        result = json.loads(path.read_text())
        if result.get("space") != "amoebanet" or len(result["cells"]) != args.cells:
            continue
        long, oneshot, naswot = (np.asarray(result[k], float) for k in ("long", args.by, "naswot"))
        combined = rank_average(oneshot, naswot)
        row = (path.stem, spearman(oneshot, long), spearman(naswot, long),
               spearman(combined, long), spearman(oneshot, naswot))
        rows.append(row)
        groups.setdefault(group_of(path.stem), []).append((row, combined, naswot, long))
    if not rows:
        print(f"no {args.cells}-cell amoebanet fidelity results in {args.results}", file=sys.stderr)
        return 2

    print(f"score: {args.by}; Spearman against the long standalone run, {args.cells} cells\n")
    print("| result file | one-shot | NASWOT | rank average | one-shot vs NASWOT |")
    print("|---|---|---|---|---|")
    for stem, *values in rows:
        print(f"| {stem.removeprefix('oneshot_fidelity_')} | "
              + " | ".join(f"{v:.3f}" for v in values) + " |")

    print("\n| configuration | trainings | one-shot, mean | rank average, mean "
          "| gain over NASWOT, mean (95% bootstrap over cells) |")
    print("|---|---|---|---|---|")
    for name, members in groups.items():
        oneshot_mean = np.mean([m[0][1] for m in members])
        combined_mean = np.mean([m[0][3] for m in members])
        gains = bootstrap_gain([(c, n, L) for _, c, n, L in members])
        print(f"| {name} | {len(members)} | {oneshot_mean:.3f} | {combined_mean:.3f} | "
              f"{gains[0]:+.3f} ({gains[1]:+.3f} to {gains[2]:+.3f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

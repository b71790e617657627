"""Few-shot splits (Zhao et al. 2021): does one supernet per value of a decision rank better?

Weight sharing across heterogeneous ops is what keeps the ``amoebanet`` supernet from ranking
(BENCHMARKS.md, "Does the supernet learn?"). Few-shot NAS splits the supernet on one decision
into one sub-supernet per value, each starting from the trained supernet's weights and trained
further only on paths that take that value; a candidate is scored by the sub-supernet of its
value. The control takes the same number of extra steps on the unsplit supernet, so a gain is
the split's and not the extra training's. All three (the trained supernet, the control, the
splits) score the 24 fidelity cells as the scorer does (BN recalibration, the 1,000 held-out
images) and are ranked against the cached standalone references
(``oneshot_benchmark.py fidelity --reference-only``).

    python -m benchmarks.oneshot_fewshot --supernet runs/supernet-affinefree --split 2 --steps 150

``--split`` indexes ``space.encode(genotype)``: 4 decisions per block (input a, input b, op a,
op b), the normal cell's blocks first; only op decisions can be split (2: the normal cell's
first block's first op).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.common import RESULTS, SHARED_CIFAR
from benchmarks.oneshot_benchmark import (_fidelity_cells, _PathTraining, _rank_stats,
                                          _top_overlap)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", type=Path, required=True, help="a trained supernet dir")
    parser.add_argument("--split", type=int, default=2, help="the op decision to split on")
    parser.add_argument("--steps", type=int, default=150, help="extra steps per sub-supernet")
    parser.add_argument("--learning-rate", type=float, default=0.02,
                        help="peak of each extra training's cosine schedule")
    parser.add_argument("--space", default="amoebanet")
    parser.add_argument("--data", default=SHARED_CIFAR)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.split % 4 not in (2, 3):
        parser.error(f"--split {args.split} is an input decision; split on an op decision "
                     f"(index % 4 == 2 or 3)")

    from search_space import get_space

    space = get_space(args.space)
    paths = _PathTraining(args.supernet, args.data, args.space)
    supernet = paths.supernet
    if args.split >= supernet.arch_length:
        parser.error(f"--split must be below {supernet.arch_length}")
    parent = paths.weights()

    def train(steps, value, seed):
        """``steps`` uniform-path steps from the parent's weights (decision fixed to ``value``
        unless None), fresh momentum, cosine learning rate; returns the weights."""
        paths.reset(parent)
        rng = np.random.default_rng([7, seed])
        losses = []
        for step in range(steps):
            arch = supernet.encode(space.sample(rng))
            if value is not None:
                arch[args.split] = value
            losses.append(paths.step(rng, arch, 0.5 * args.learning_rate
                                     * (1.0 + math.cos(math.pi * step / steps))))
        return paths.weights(), float(np.mean(losses[-50:]))

    began = time.perf_counter()
    values = range(len(space.ops))
    splits, split_loss = {}, {}
    for value in values:
        splits[value], split_loss[value] = train(args.steps, value, value)
        print(f"split {value} ({space.ops[value]}): loss of the last 50 steps "
              f"{split_loss[value]:.3f}, {time.perf_counter() - began:.0f}s", flush=True)
    control, control_loss = train(args.steps * len(values), None, 99)
    print(f"control ({args.steps * len(values)} unsplit steps): loss {control_loss:.3f}, "
          f"{time.perf_counter() - began:.0f}s", flush=True)

    genotypes, reference, cells = _fidelity_cells(args.results, args.space)
    scores = {"trained supernet": [], "control (same extra steps, unsplit)": [],
              "few-shot splits": []}
    for i in cells:
        arch = supernet.encode(genotypes[i])
        for name, weights in (("trained supernet", parent),
                              ("control (same extra steps, unsplit)", control),
                              ("few-shot splits", splits[int(arch[args.split])])):
            paths.reset(weights)
            scores[name].append(paths.scorer.accuracy(genotypes[i]))
    paths.reset(parent)
    long = [reference[i]["long"] for i in cells]
    short = [reference[i]["proxy"] for i in cells]
    stats = {name: {"vs_long": _rank_stats(s, long), "vs_proxy": _rank_stats(s, short),
                    "top5_overlap_long": _top_overlap(s, long),
                    "mean_accuracy": float(np.mean(s))} for name, s in scores.items()}
    counts = np.bincount([int(supernet.encode(genotypes[i])[args.split]) for i in cells],
                         minlength=len(space.ops))
    print(f"cells per split value: {counts.tolist()}")
    print("| supernet | Spearman vs long | Kendall vs long | Spearman vs proxy | "
          "top-5 overlap (long) | mean accuracy |")
    print("|---|---|---|---|---|---|")
    for name, s in stats.items():
        print(f"| {name} | {s['vs_long']['spearman']:.3f} | {s['vs_long']['kendall']:.3f} | "
              f"{s['vs_proxy']['spearman']:.3f} | {s['top5_overlap_long']} | "
              f"{s['mean_accuracy']:.3f} |")
    out = args.results / f"oneshot_fewshot_{args.space}.json"
    out.write_text(json.dumps({
        "supernet": str(args.supernet), "split": args.split, "steps": args.steps,
        "learning_rate": args.learning_rate, "cells": cells, "counts": counts.tolist(),
        "split_loss": {space.ops[v]: split_loss[v] for v in values},
        "control_loss": control_loss, "scores": scores, "stats": stats,
        "seconds": time.perf_counter() - began}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

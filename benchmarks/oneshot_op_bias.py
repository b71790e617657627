"""Does the supernet favour parameter-free ops? And does training its weighted ops more fix that?

A weight-sharing supernet trained briefly is known to favour paths of parameter-free ops
(identity, pools): they need no training, while a shared convolution serves every input and
neighbour it may meet. This script measures that bias on the fidelity cells: the Spearman
correlation of each score (the long standalone run, the proxy, every one-shot result file) with
the number of parameter-free ops in the cell. With ``--retrain STEPS`` it then continues the
supernet's training for STEPS steps on paths of weighted ops only (every op decision drawn from
the ops that have weights; inputs uniform; lr 0.02 cosine to 0, fresh momentum: the few-shot
control's schedule, whose 1,200 uniform steps are the comparison) and scores the cells again.

    python -m benchmarks.oneshot_op_bias
    python -m benchmarks.oneshot_op_bias --retrain 1200 --supernet runs/supernet-affinefree
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

from benchmarks.common import RESULTS, SHARED_CIFAR, add_smoke, write_json
from benchmarks.oneshot_benchmark import _fidelity_cells, _PathTraining, _rank_stats  # noqa: E402


def parameter_free_ops(space) -> set[str]:
    """The space's ops whose stride-1 instance has no weights (identity, pools)."""
    import keras

    from cells.ops import make_op

    free = set()
    for name in space.ops:
        layer = make_op(name, 16, 1)
        layer(keras.ops.zeros((1, 8, 8, 16)))
        if not layer.weights:
            free.add(name)
    return free


def free_counts(genotypes, free: set[str]) -> list[int]:
    return [sum(op in free for cell in (g.normal, g.reduction) for block in cell.blocks
                for op in block.ops) for g in genotypes]


def bias_table(space_name: str, results: Path, free: set[str]) -> list[tuple]:
    """(score, n cells, Spearman with the parameter-free count, Spearman vs long) per score."""
    genotypes, reference, cells = _fidelity_cells(results, space_name, count=None)
    counts = free_counts([genotypes[i] for i in cells], free)
    long = [reference[i]["long"] for i in cells]
    rows = [("long standalone run", len(cells), _rank_stats(long, counts)["spearman"], 1.0),
            ("standalone proxy", len(cells),
             _rank_stats([reference[i]["proxy"] for i in cells], counts)["spearman"],
             _rank_stats([reference[i]["proxy"] for i in cells], long)["spearman"])]
    for path in sorted(results.glob(f"oneshot_fidelity_{space_name}*.json")):
        result = json.loads(path.read_text())
        if result.get("space") != space_name:  # "amoebanet*" also matches "amoebanet-3ops"
            continue
        at = {c: k for k, c in enumerate(result["cells"])}
        cells_here = [i for i in cells if i in at]
        scores = [result["oneshot"][at[i]] for i in cells_here]
        rows.append((path.stem.removeprefix("oneshot_fidelity_"), len(cells_here),
                     _rank_stats(scores, free_counts([genotypes[i] for i in cells_here],
                                                     free))["spearman"],
                     _rank_stats(scores, [reference[i]["long"] for i in cells_here])["spearman"]))
    return rows


def retrain(args, free: set[str]) -> dict:
    """Continue the supernet's training on weighted-op paths; score the fidelity cells."""
    from search_space import get_space

    space = get_space(args.space)
    weighted = [k for k, op in enumerate(space.ops) if op not in free]
    paths = _PathTraining(args.supernet, args.data, args.space)
    supernet = paths.supernet
    parent = paths.weights()
    paths.reset(parent)  # fresh momentum, as the few-shot control
    rng = np.random.default_rng([11, args.retrain])
    began, losses = time.perf_counter(), []
    for step in range(args.retrain):
        arch = np.asarray(supernet.encode(space.sample(rng)))
        for j in range(len(arch)):
            if j % 4 in (2, 3):  # the op decisions (inputs a, b, then ops a, b per block)
                arch[j] = rng.choice(weighted)
        losses.append(paths.step(rng, arch, 0.5 * args.learning_rate
                                 * (1.0 + math.cos(math.pi * step / args.retrain))))
        if step % 200 == 0:
            print(f"step {step}: loss of the last 50 {np.mean(losses[-50:]):.3f}, "
                  f"{time.perf_counter() - began:.0f}s", flush=True)
    # the references are read now, so that cells trained meanwhile count
    genotypes, reference, cells = _fidelity_cells(args.results, args.space, count=None)
    after = [paths.scorer.accuracy(genotypes[i]) for i in cells]
    paths.reset(parent)
    before = [paths.scorer.accuracy(genotypes[i]) for i in cells]
    counts = free_counts([genotypes[i] for i in cells], free)
    long = [reference[i]["long"] for i in cells]
    short = [reference[i]["proxy"] for i in cells]
    out = {"supernet": str(args.supernet), "retrain_steps": args.retrain, "cells": cells,
           "weighted_ops": [space.ops[k] for k in weighted],
           "loss_last_50": float(np.mean(losses[-50:])), "seconds": time.perf_counter() - began}
    for name, scores in (("before", before), ("after", after)):
        out[name] = {"scores": scores, "vs_long": _rank_stats(scores, long),
                     "vs_proxy": _rank_stats(scores, short),
                     "vs_parameter_free": _rank_stats(scores, counts),
                     "mean_accuracy": float(np.mean(scores))}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="amoebanet")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--supernet", type=Path, default=None, help="with --retrain")
    parser.add_argument("--retrain", type=int, default=0,
                        help="extra steps on weighted-op paths, then score again")
    parser.add_argument("--learning-rate", type=float, default=0.02)
    parser.add_argument("--data", default=SHARED_CIFAR)
    add_smoke(parser)  # the table of the committed results only: no --retrain, nothing written
    args = parser.parse_args(argv)
    if args.retrain and args.supernet is None:
        parser.error("--retrain needs --supernet DIR (a trained supernet)")

    from search_space import get_space

    free = parameter_free_ops(get_space(args.space))
    print(f"parameter-free ops of {args.space}: {', '.join(sorted(free))}")
    print("| score | cells | Spearman with the parameter-free op count | Spearman vs long |")
    print("|---|---|---|---|")
    for name, n, with_free, vs_long in bias_table(args.space, args.results, free):
        print(f"| {name} | {n} | {with_free:.3f} | {vs_long:.3f} |")
    if args.retrain:
        out = retrain(args, free)
        path = args.results / f"oneshot_op_bias_{args.space}_retrain{args.retrain}.json"
        write_json(path, out)
        print("| supernet | Spearman vs long | Spearman vs proxy | with parameter-free count | "
              "mean accuracy |")
        print("|---|---|---|---|---|")
        for name in ("before", "after"):
            s = out[name]
            print(f"| {name} | {s['vs_long']['spearman']:.3f} | {s['vs_proxy']['spearman']:.3f} "
                  f"| {s['vs_parameter_free']['spearman']:.3f} | {s['mean_accuracy']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

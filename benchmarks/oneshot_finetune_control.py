"""Does a one-shot score need the supernet? Path-only fine-tuning from inherited vs fresh weights.

``--finetune-steps K`` (nasplay.scorers.oneshot.score) trains a candidate's path for K steps from
the supernet's weights before scoring it. This control asks whether the inherited weights carry the
ranking or the K steps alone do: the same 24 fidelity cells (BENCHMARKS.md, "One-shot search"), each
fine-tuned for each K in ``--steps`` from the trained supernet's weights (``--init inherited``) or
from a freshly initialized supernet's (``--init random``), then scored like the scorer does (BN
recalibration, the 1,000 held-out images), and ranked against the cached standalone references
(``oneshot_benchmark.py fidelity --reference-only``).

Unlike the scorer, whose batches are fixed for every candidate, each candidate here draws its
own random batches (one generator, seeded, running through the cells in order): the control
measures the effect of the starting weights, not of a batch sequence.

    python -m benchmarks.oneshot_finetune_control --supernet runs/supernet-headbn --init inherited
    python -m benchmarks.oneshot_finetune_control --supernet runs/supernet-headbn --init random
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.common import RESULTS, SHARED_CIFAR
from benchmarks.oneshot_benchmark import _fidelity_cells, _PathTraining, _rank_stats  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", type=Path, required=True, help="a trained supernet dir")
    parser.add_argument("--init", choices=("inherited", "random"), default="inherited")
    parser.add_argument("--steps", default="0,16,48", help="fine-tuning steps to score at")
    parser.add_argument("--learning-rate", type=float, default=0.02)
    parser.add_argument("--space", default="amoebanet")
    parser.add_argument("--data", default=SHARED_CIFAR)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import keras

    from cells.supernet import SuperNet
    from search_space import get_space

    ks = [int(k) for k in args.steps.split(",")]
    paths = _PathTraining(args.supernet, args.data, args.space)
    supernet, config = paths.supernet, paths.config
    if args.init == "random":
        keras.utils.set_random_seed(1)
        fresh = SuperNet(get_space(args.space), num_classes=supernet.num_classes,
                         filters=config.filters, cells_per_stage=config.cells_per_stage,
                         input_shape=tuple(supernet.image_shape),
                         affine_ops=supernet.affine_ops)
        start = [v.numpy() for v in fresh.variables]
    else:
        start = paths.weights()
    genotypes, reference, cells = _fidelity_cells(args.results, args.space)
    rng = np.random.default_rng(7)
    scores = {k: [] for k in ks}
    began = time.perf_counter()
    for i in cells:
        arch = supernet.encode(genotypes[i])
        paths.reset(start)
        done = 0
        for k in ks:
            while done < k:
                paths.step(rng, arch, args.learning_rate)
                done += 1
            scores[k].append(paths.scorer.accuracy(genotypes[i]))
        print(i, [round(scores[k][-1], 3) for k in ks], reference[i]["proxy"],
              reference[i]["long"], f"{time.perf_counter() - began:.0f}s", flush=True)
    long = [reference[i]["long"] for i in cells]
    short = [reference[i]["proxy"] for i in cells]
    stats = {}
    for k in ks:
        vs_long, vs_proxy = _rank_stats(scores[k], long), _rank_stats(scores[k], short)
        stats[str(k)] = {"spearman_long": vs_long["spearman"], "kendall_long": vs_long["kendall"],
                         "spearman_proxy": vs_proxy["spearman"],
                         "mean_accuracy": float(np.mean(scores[k]))}
    print("| steps | Spearman vs long | Kendall vs long | Spearman vs proxy | mean accuracy |")
    print("|---|---|---|---|---|")
    for k in ks:
        s = stats[str(k)]
        print(f"| {k} | {s['spearman_long']:.3f} | {s['kendall_long']:.3f} | "
              f"{s['spearman_proxy']:.3f} | {s['mean_accuracy']:.3f} |")
    out = args.results / f"oneshot_finetune_control_{args.space}_{args.init}.json"
    out.write_text(json.dumps({"init": args.init, "steps": ks, "lr": args.learning_rate,
                               "cells": cells, "scores": {str(k): scores[k] for k in ks},
                               "stats": stats}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

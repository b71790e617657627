"""The standalone proxy on TensorFlow with Keras's batch norms against TensorFlow's fused kernel
(``ProxyConfig.fused_norms``, on by default: ``nasplay.runtime._internals.fused_batch_norm``),
paired: each cell trained both ways, one after the other (the order flipped from cell to cell),
so a drift of the machine's speed falls on both alike.

    python -m benchmarks.proxy_norms_ab --cells 3

Prints, per cell and way, the whole training's seconds, the first step (the trace), a steady
epoch and the validation accuracy, and the medians of the per-cell ratios; appends JSON lines to
benchmarks/results/proxy_norms_ab.jsonl.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from benchmarks.common import REPO, SHARED_CIFAR, add_smoke


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=3)
    parser.add_argument("--space", default="nasnet")
    parser.add_argument("--seed", type=int, default=0, help="of the random cells")
    parser.add_argument("--data", default=SHARED_CIFAR)
    parser.add_argument("--out", type=Path,
                        default=REPO / "benchmarks" / "results" / "proxy_norms_ab.jsonl")
    add_smoke(parser, cells=1)  # and a 128-image, one-epoch proxy
    args = parser.parse_args(argv)

    import numpy as np

    from nasplay.scorers.proxy import training as proxy
    from benchmarks.proxy_benchmark import _append
    from search_space import get_space

    rng = np.random.default_rng(args.seed)
    genotypes = [get_space(args.space).sample(rng) for _ in range(args.cells)]
    config = proxy.ProxyConfig(data=args.data)
    if args.smoke:
        config = config.replace(train_size=128, val_size=64, epochs=1)
    rows = []
    for i, genotype in enumerate(genotypes):
        ways = ("keras", "fused") if i % 2 == 0 else ("fused", "keras")
        row = {"cell": genotype.hash()[:12], "space": args.space}
        for way in ways:
            metrics = proxy.evaluate(genotype, config.replace(fused_norms=way == "fused"))
            row[way] = {k: metrics[k] for k in ("train_seconds", "first_step_seconds",
                                                "steady_epoch_seconds", "val_accuracy")}
        row["loadavg"] = os.getloadavg()[0]
        _append(args.out, row)
        rows.append(row)
        print(f"{row['cell']}: " + ", ".join(
            f"{way} {row[way]['train_seconds']:.1f} s (first step "
            f"{row[way]['first_step_seconds']:.1f} s, steady epoch "
            f"{row[way]['steady_epoch_seconds']:.1f} s, accuracy {row[way]['val_accuracy']:.3f})"
            for way in ("keras", "fused")), flush=True)
    for key in ("train_seconds", "first_step_seconds", "steady_epoch_seconds"):
        ratio = np.median([r["fused"][key] / r["keras"][key] for r in rows])
        print(f"median fused / keras, {key}: {ratio:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

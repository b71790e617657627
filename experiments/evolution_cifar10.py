"""Regularized evolution (AmoebaNet's searcher) on CIFAR-10 subsets. Copy this file, edit CONFIG.

    python experiments/evolution_cifar10.py            # start (runs/evolution-cifar10)
    python experiments/evolution_cifar10.py --resume   # continue after Ctrl-C, a crash, kill -9
    nasplay inspect runs/evolution-cifar10             # leaderboard, best cell, progress plot

Each candidate trains for a few epochs on a 4,000-image subset (about a minute on 2 CPUs) and is
scored on 1,000 other training images; the test split is never used. Every field of
SearchConfig is documented in nasplay/engine/config.py.
"""

import sys
from pathlib import Path

from nasplay import SearchConfig, main

# The project's offline copy of CIFAR-10 when it is there; else Keras's download.
SHARED_CIFAR10 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpeg"

CONFIG = SearchConfig(
    searcher="evolution",
    searcher_options={"population_size": 20, "sample_size": 5},  # the paper: 100 and 25
    space="amoebanet",
    trials=200,
    data=str(SHARED_CIFAR10) if SHARED_CIFAR10.is_dir() else "cifar10",
    # the proxy scorer's settings (ProxyConfig fields; flags: --subset, --epochs, ...)
    scorer_options={"train_size": 4000, "epochs": 3, "filters": 8, "cells_per_stage": 1},
    workers=2,           # a GPU box: workers=8, gpus_per_trial=0.5 (two candidates per GPU)
    gpus_per_trial=0,
    address=None,        # a cluster: "auto" after `ray start --head` (and `ray start --address`)
    run_dir="runs/evolution-cifar10",
)

if __name__ == "__main__":
    sys.exit(main(CONFIG))

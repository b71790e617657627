"""Random search: the baseline a searcher must beat, on the same space, data and budget.
Copy this file, edit CONFIG (keep it equal to the search you compare with, but the searcher).

    python experiments/random_baseline.py            # start (runs/random-cifar10)
    python experiments/random_baseline.py --resume   # continue after Ctrl-C, a crash, kill -9
    nasplay inspect runs/random-cifar10 runs/evolution-cifar10   # the two, overlaid
"""

import sys
from pathlib import Path

from nasplay import SearchConfig, main

# The project's offline copy of CIFAR-10 when it is there; else Keras's download.
SHARED_CIFAR10 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpeg"

CONFIG = SearchConfig(
    searcher="random",
    space="amoebanet",
    trials=200,
    data=str(SHARED_CIFAR10) if SHARED_CIFAR10.is_dir() else "cifar10",
    # the proxy scorer's settings (ProxyConfig fields; flags: --subset, --epochs, ...)
    scorer_options={"train_size": 4000, "epochs": 3, "filters": 8, "cells_per_stage": 1},
    workers=2,
    run_dir="runs/random-cifar10",
)

if __name__ == "__main__":
    sys.exit(main(CONFIG))

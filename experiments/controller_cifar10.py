"""An RL controller (NASNet's searcher: an LSTM policy trained with REINFORCE) on CIFAR-10
subsets. Copy this file, edit CONFIG.

    python experiments/controller_cifar10.py            # start (runs/controller-cifar10)
    python experiments/controller_cifar10.py --resume   # continue after Ctrl-C, a crash, kill -9
    nasplay inspect runs/controller-cifar10

The controller updates its policy after every ``batch_size`` results, so keep ``workers`` near
it: with many more trials in flight than that, proposals come from an older policy.
"""

import sys
from pathlib import Path

from nasplay import SearchConfig, main

# The project's offline copy of CIFAR-10 when it is there; else Keras's download.
SHARED_CIFAR10 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpeg"

CONFIG = SearchConfig(
    searcher="controller",
    searcher_options={"batch_size": 4, "learning_rate": 0.01, "algorithm": "reinforce"},
    space="nasnet",
    trials=200,
    data=str(SHARED_CIFAR10) if SHARED_CIFAR10.is_dir() else "cifar10",
    # the proxy scorer's settings (ProxyConfig fields; flags: --subset, --epochs, ...)
    scorer_options={"train_size": 4000, "epochs": 3, "filters": 8, "cells_per_stage": 1},
    workers=2,           # a GPU box: workers=4, gpus_per_trial=0.5
    gpus_per_trial=0,
    run_dir="runs/controller-cifar10",
)

if __name__ == "__main__":
    sys.exit(main(CONFIG))

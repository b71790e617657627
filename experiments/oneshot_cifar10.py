"""One-shot search: a weight-sharing supernet trained once, then 1,000 candidates scored with its
weights in seconds each, and the best 5 trained standalone to check them. Copy, edit CONFIG.

    python experiments/oneshot_cifar10.py            # start (runs/oneshot-cifar10)
    python experiments/oneshot_cifar10.py --resume   # continue: the supernet's training from its
                                                     # last epoch, then the search, the re-scoring
    nasplay inspect runs/oneshot-cifar10             # both scores of the re-scored five

The supernet (every AmoebaNet op on every branch, one traced graph) trains on a 20,000-image
subset of CIFAR-10's training split for a few epochs, uniformly sampling one path per step (SPOS;
``sampler="controller"`` trains on the RL controller's samples as ENAS did). Each candidate is
then scored by its path's accuracy on 1,000 held-out training images after re-estimating the
path's batch-norm statistics. One-shot scores rank candidates less faithfully than training each
one (BENCHMARKS.md, "One-shot"), which is why the best few climb to the standalone proxy
(``rerank_top``). Train the supernet once and reuse it in other searches with ``"supernet": DIR``.
"""

import sys
from pathlib import Path

from nasplay import SearchConfig, main

# The project's offline copy of CIFAR-10 when it is there; else Keras's download.
SHARED_CIFAR10 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cifar10-jpeg"

CONFIG = SearchConfig(
    searcher="evolution",
    searcher_options={"population_size": 50, "sample_size": 10},
    space="amoebanet",   # the supernet holds spaces whose blocks add: amoebanet, darts, article
    trials=1000,
    scorer="oneshot",
    data=str(SHARED_CIFAR10) if SHARED_CIFAR10.is_dir() else "cifar10",
    # the one-shot scorer's settings (OneShotConfig fields), as its flags give them:
    scorer_flags={"supernet_epochs": 6,   # the scorer's default
                  "sampler": "uniform",   # or "controller" (ENAS)
                  "finetune_steps": 0},   # or e.g. 16: each path trained alone that long first
    rerank_top=5,        # the best 5 by one-shot score, trained standalone by the proxy
    workers=1,           # one worker keeps the loaded supernet for every trial
    run_dir="runs/oneshot-cifar10",
)

if __name__ == "__main__":
    sys.exit(main(CONFIG))

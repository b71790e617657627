"""One-shot scoring: train one weight-sharing supernet, then score candidates in seconds.

The proxy trains every candidate from scratch (about a minute each on 2 cores, ~60 an hour). A
supernet (``cells.supernet.SuperNet``) holds every op of a space; trained once with uniformly
sampled paths (SPOS, Guo et al. 2020) or with the RL controller's samples (ENAS, Pham et al.
2018), it scores a candidate by the accuracy of the candidate's path with inherited weights,
after re-estimating the path's batch-norm statistics on a few training batches. The price is
fidelity: inherited weights rank candidates less faithfully than training each one
(benchmarks/oneshot_benchmark.py measures how much).

    config = OneShotConfig(data="data/cifar10-jpeg")
    train_supernet("amoebanet", config, "runs/supernet")        # resumes a partial run
    scorer = cached_scorer("runs/supernet", config)              # loaded once per process
    scorer.score(genotype)  # {"oneshot_accuracy": ..., "params": ..., "score_seconds": ...}

Like the proxy, search only ever sees the training split: the supernet trains on a training
subset and scores on a disjoint validation subset carved from the same split
(``nasplay.scorers.proxy.training.subsets``), the same images the proxy validates on at equal
``val_size`` and ``subset_seed``.

The rest lives beside this module in ``nasplay/scorers/oneshot/``: ``train`` (the training loop),
``checkpoint`` (files and the identity checks), ``score`` (the scorer and its process-wide
cache), and one engine per backend for the steps: ``engine_tf`` (TensorFlow, traced) and
``engine_torch`` (PyTorch, eager); the active Keras backend picks (``train.engine``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from nasplay.errors import UserError, check_int

SAMPLERS = ("uniform", "controller")


@dataclass
class OneShotConfig:
    """How a supernet is trained and how it scores. CPU defaults: training plus 1,000 candidates
    within an hour on the 2-core development machine (estimated from a loaded machine: about
    2,000 steps at 0.3-0.5 s, traces ~5 min, ~1 s a candidate; measure it with
    ``python benchmarks/oneshot_benchmark.py throughput``)."""

    # data (both subsets come from the source's training split)
    data: str = "cifar10"            # "cifar10", a folder of python batches, or an image folder
    cache_dir: str | None = None     # where decoded image folders are cached (None: the default)
    train_size: int = 20000          # supernet training images, class-stratified
    val_size: int = 1000             # scoring images, disjoint from the training ones (and the
    #                                  controller's rewards): the proxy's 1,000 validation images
    #                                  at the same subset_seed; ~1.5 points standard error
    subset_seed: int = 0             # which images
    # supernet training (about 2,000 steps: 10-20 minutes here, plus a few minutes of tracing)
    epochs: int = 6                  # passes over the training subset, one path per step
    batch_size: int = 64             # images per step (and per recalibration batch)
    learning_rate: float = 0.05      # SGD peak learning rate, cosine decay to 0 over the run
    momentum: float = 0.9            # SGD momentum (Nesterov); unchosen ops' buffers are frozen
    weight_decay: float = 3e-4       # decoupled weight decay (scaled by the lr), chosen ops only
    sampler: str = "uniform"         # "uniform": a random path per step (SPOS); "controller":
    #                                  the RL controller's samples, rewarded on validation batches
    #                                  (ENAS)
    seed: int = 0                    # initial weights, data order, paths, controller
    shallow_epochs: int = 0          # > 0: first train a supernet of one cell a stage this many
    #                                  epochs (in DIR/shallow), then grow it to cells_per_stage
    #                                  (each stage's cell copied into every cell of the stage) and
    #                                  train that `epochs` more. A deep supernet from scratch
    #                                  learns too slowly on a CPU; grown, nb201's 5x16 ranks the
    #                                  table at Kendall 0.49-0.56 (BENCHMARKS.md). Edge spaces only
    shallow_learning_rate: float = 0.05  # the shallow phase's peak learning rate
    # scoring
    recalibration_batches: int = 4   # training batches that re-estimate a path's BN statistics
    #                                  (a candidate then scores in about a second here)
    finetune_steps: int = 0          # SGD steps on the candidate's path alone, from the inherited
    #                                  weights, before recalibrating (restored after): 0 is pure
    #                                  one-shot; 16 costs ~6x a pure score here and ranked better
    #                                  in both measurements so far (BENCHMARKS.md, "One-shot")
    finetune_learning_rate: float = 0.02  # constant, with the training's momentum and decay
    # network
    filters: int = 8                 # width of the first stage (doubled at each reduction)
    cells_per_stage: int = 1         # normal cells between reductions (N in NASNet's "N x F")
    affine_ops: bool = False         # the candidate ops' batch norms learn a scale and shift; off,
    #                                  as in DARTS's search network: half the variables, so a
    #                                  cheaper step (cells.supernet; the standalone network gets
    #                                  scale 1, shift 0). Supernets saved before it existed: True
    loose_mean: bool = False         # the classifier reads the last cell's loose ends divided by
    #                                  their count, so its logits keep their scale whatever the
    #                                  wiring (cells.supernet). Supernets saved before: False
    # devices (nasplay.runtime.devices.configure)
    cpus: int | None = None          # TF intra-op threads: the CPUs this process was given
    gpus: bool = False               # use the visible GPU(s)

    def replace(self, **changes) -> OneShotConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> OneShotConfig:
        """Raise a one-line UserError naming the first field out of range; return self."""
        for name in ("train_size", "val_size", "epochs", "batch_size", "recalibration_batches"):
            check_int(name, getattr(self, name), 1)
        check_int("filters", self.filters, 2)
        check_int("cells_per_stage", self.cells_per_stage, 0)
        check_int("seed", self.seed, 0)
        check_int("subset_seed", self.subset_seed, 0)
        check_int("finetune_steps", self.finetune_steps, 0)
        check_int("shallow_epochs", self.shallow_epochs, 0)
        if self.shallow_epochs and self.cells_per_stage < 2:
            raise UserError(f"shallow_epochs: a supernet of {self.cells_per_stage} cell(s) a stage "
                            f"has nothing to grow into; set cells_per_stage >= 2 (nb201's own "
                            f"depth is 5) or shallow_epochs 0")
        if self.cpus is not None:
            check_int("cpus", self.cpus, 1)
        _check_real("learning_rate", self.learning_rate, 0.0, math.inf, "> 0")
        _check_real("finetune_learning_rate", self.finetune_learning_rate, 0.0, math.inf, "> 0")
        _check_real("shallow_learning_rate", self.shallow_learning_rate, 0.0, math.inf, "> 0")
        _check_real("momentum", self.momentum, 0.0, 1.0, "in [0, 1)", low_open=False)
        _check_real("weight_decay", self.weight_decay, 0.0, math.inf, ">= 0", low_open=False)
        for name in ("affine_ops", "loose_mean"):
            if not isinstance(getattr(self, name), bool):
                raise UserError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.sampler not in SAMPLERS:
            raise UserError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        if not isinstance(self.data, str) or not self.data:
            raise UserError(f"data must be a source name or folder, got {self.data!r}")
        if self.train_size < self.batch_size:
            raise UserError(f"train_size ({self.train_size}) is smaller than one batch "
                            f"({self.batch_size}); use a larger subset or a smaller batch size")
        return self


def _check_real(name, value, low, high, said, low_open=True):
    ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
          and (value > low if low_open else value >= low) and value < high)
    if not ok:
        raise UserError(f"{name} must be a number {said}, got {value!r}")


# The API lives in modules that import nothing from here at import time (no cycle), and
# the backend's engine only inside their functions, so importing nasplay.scorers.oneshot.supernet
# stays light.
from nasplay.scorers.oneshot.checkpoint import expected_meta, load_supernet  # noqa: E402
from nasplay.scorers.oneshot.score import OneShotScorer, cached_scorer  # noqa: E402
from nasplay.scorers.oneshot.train import train_supernet  # noqa: E402

__all__ = ["SAMPLERS", "OneShotConfig", "train_supernet", "load_supernet", "expected_meta",
           "OneShotScorer", "cached_scorer"]

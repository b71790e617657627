"""Proxy evaluation: train one candidate briefly on a CIFAR-10 subset, score it on held-out images.

A search calls :func:`evaluate` once per candidate, so its cost decides how many candidates a user
can afford and its honesty decides whether the search means anything:

- both subsets come from the source's *training* split (the test split is never looked at), and
  every candidate with the same ``subset_seed`` and sizes sees the same images;
- the same ``seed`` gives the same data order and the same initial weights
  (``keras.utils.set_random_seed`` before the pipeline and the network are made);
- cells use batch norm momentum 0.9 (``cells.BN_MOMENTUM``): with Keras's 0.99 the moving
  statistics have not converged after a few hundred steps and validation scores sit at chance.

Per-candidate fixed cost (measured in benchmarks/proxy_benchmark.py, see BENCHMARKS.md):

- decoded data and the subsets are cached in-process (``nasplay.data.subsets``), so a worker that
  evaluates many candidates loads and slices the source once;
- the batches come from a :class:`nasplay.data.pipeline.BatchPlan` made per candidate (its order and
  augmentation a function of the seed and the epoch only, never of the candidates the process
  evaluated before), run by tf.data on the TensorFlow backend and by numpy on JAX and PyTorch:
  the same batches either way;
- validation runs eagerly on whole batches instead of ``model.evaluate``, which traces and
  optimizes a second graph for a handful of batches;
- ``jit_compile`` comes from :mod:`nasplay.runtime.devices`: Keras's default ("auto") turns XLA on
  for TensorFlow models, which trains 4x slower on this CPU.

Graph tracing (TensorFlow) or compiling (JAX) the training step is what remains of the fixed
cost; running several trials in parallel (Ray Tune) overlaps it. The backend is the process's
Keras backend (``nasplay.runtime.backends``); metrics are the same on every backend.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from nasplay.data.subsets import Subsets, load_subsets
from nasplay.errors import UserError, check_int
from nasplay.runtime import devices
from nasplay.runtime._internals.fused_batch_norm import fuse_batch_norms
from nasplay.scorers.proxy.clock import make_clock


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the runner records the trial as failed with this message."""


@dataclass
class ProxyConfig:
    """How one candidate is trained and scored. CPU defaults: 1-1.5 minutes a candidate on the
    2-core development machine; :meth:`for_gpu` for a GPU."""

    # data
    data: str = "cifar10"            # source: "cifar10", a folder of python batches, an image folder
    cache_dir: str | None = None     # where decoded image folders are cached (None: nasplay's default)
    train_size: int = 2000           # training images, class-stratified from the training split;
    #                                  2,000 x 3 epochs = 93 steps: ~1-1.5 min here (BENCHMARKS.md)
    val_size: int = 1000             # validation images, also from the training split, disjoint
    #                                  (1,000: accuracy's standard error ~1.5 points)
    subset_seed: int = 0             # which images: the same for every candidate of a search
    # training
    epochs: int = 3                  # passes over the training subset
    batch_size: int = 64             # small batches: more steps in a short budget
    learning_rate: float = 0.05      # SGD peak learning rate
    momentum: float = 0.9            # SGD momentum (Nesterov)
    weight_decay: float = 3e-4       # decoupled weight decay of Keras's SGD (scaled by the lr)
    cosine: bool = True              # cosine decay of the lr to 0 over the run (else constant)
    augment: bool = False            # pad-4 crop + flip: off for the proxy (a few epochs underfit)
    cutout: int = 0                  # cutout square side in pixels (0: none); final training only
    drop_path: float = 0.0           # drop-path rate of the cells; final training only
    auxiliary_head: bool = False     # DARTS's auxiliary classifier (loss weight 0.4); final only
    seed: int = 0                    # initial weights, data order, augmentation, drop-path noise
    repeats: int = 1                 # trainings a candidate is scored by, the i-th with seed and
    #                                  subset_seed + i (every candidate's i-th on the same images),
    #                                  its metrics their means: a steadier score at R times the
    #                                  cost (``nasplay train`` trains once)
    size_prior: float = 0.0          # scoring only: the held-out loss a doubling of the parameter
    #                                  count is worth in ``sized_neg_val_loss`` (0: that metric is
    #                                  ``neg_val_loss``); the size is a second signal of a cell's
    #                                  quality beside a short training's loss
    steps_per_execution: int = 1     # steps per graph call; >1 traces a while loop (costlier here);
    #                                  lowered to a divisor of the steps per epoch
    fused_norms: bool = True         # TensorFlow: batch norms as its fused kernel, Keras's
    #                                  arithmetic, an epoch ~0.8x as long; runs from before: off
    # network
    filters: int = 8                 # width of the first stage (doubled at each reduction)
    cells_per_stage: int = 1         # normal cells between reductions (N in NASNet's "N x F")
    # devices (nasplay.runtime.devices.configure)
    cpus: int | None = None          # intra-op threads: the CPUs this evaluation was given
    gpus: bool = False               # train on the visible GPU(s)
    mixed_precision: bool | None = None  # None: on with a GPU (bfloat16 where native); True
    #                                      without a GPU is an error

    @classmethod
    def for_gpu(cls, **overrides) -> ProxyConfig:
        """Larger defaults for one GPU: more data, wider network, bigger batches (mixed precision)."""
        defaults = dict(train_size=20000, val_size=5000, epochs=10, batch_size=128,
                        learning_rate=0.1, filters=16, cells_per_stage=2, gpus=True,
                        steps_per_execution=16)
        return cls(**{**defaults, **overrides})

    def replace(self, **changes) -> ProxyConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    def check(self) -> None:
        """Raise UserError naming the first field out of range (before any work is done)."""
        for name in ("train_size", "val_size", "epochs", "batch_size", "filters",
                     "steps_per_execution", "repeats"):
            check_int(name, getattr(self, name))
        check_int("cells_per_stage", self.cells_per_stage, minimum=0)
        check_int("cutout", self.cutout, minimum=0)
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise UserError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if not (isinstance(self.size_prior, (int, float)) and not isinstance(self.size_prior, bool)
                and math.isfinite(self.size_prior) and self.size_prior >= 0):
            raise UserError(f"size_prior must be a number >= 0 (the held-out loss a doubling of "
                            f"the parameter count is worth), got {self.size_prior!r}")
        if not 0.0 <= self.drop_path < 1.0:
            raise UserError(f"drop_path must be in [0, 1), got {self.drop_path!r}")
        if self.train_size < self.batch_size:
            raise UserError(f"train_size ({self.train_size}) is smaller than one batch "
                            f"({self.batch_size}); use a larger subset or a smaller batch size")


def subsets(config: ProxyConfig, data=None) -> Subsets:
    """The candidate's training and validation subsets (``nasplay.data.subsets``: cached
    in-process when ``data``, an already loaded ``nasplay.data.Dataset``, is None)."""
    return load_subsets(config.data, config.train_size, config.val_size, config.subset_seed,
                        cache_dir=config.cache_dir, source=data)


def evaluate(genotype, config: ProxyConfig | None = None, data=None, callbacks=()) -> dict:
    """Train ``genotype`` with ``config`` and return its metrics (the models are dropped):
    ``config.repeats`` trainings, the i-th with ``seed + i`` and ``subset_seed + i`` (other
    weights, order and images: a short training's score depends on all three), scored by their
    mean (:func:`mean_of_repeats`; one training: its own metrics, exactly).

    Metrics: val_accuracy, val_loss, neg_val_loss, sized_neg_val_loss (:func:`with_size_prior`),
    train_accuracy (running mean over the last epoch, as Keras reports
    it), params, flops (multiply-adds per image; None on a Keras version the counter is not
    tested with), train_seconds (the whole ``fit``), epochs, train_size, val_size, seed,
    subset_seed, backend, dtype_policy, steps_per_execution, and the timing split build_seconds
    (network + compile), first_step_seconds (``fit``'s start to the end of its first graph call:
    tracing or compiling, the first ``steps_per_execution`` steps), steady_epoch_seconds (an
    epoch once compiled), eval_seconds, and repeats and val_accuracy_sd (the trainings scored and
    the spread of their accuracies). Raises :class:`TrainingDiverged` on a NaN or infinite loss.
    """
    config = config or ProxyConfig()
    config.check()
    runs = [train(genotype, config.replace(seed=config.seed + i,
                                           subset_seed=config.subset_seed + i),
                  data=data, callbacks=callbacks)[1] for i in range(config.repeats)]
    return with_size_prior(mean_of_repeats(runs), config.size_prior)


def with_size_prior(metrics: dict, size_prior: float) -> dict:
    """``metrics`` with ``sized_neg_val_loss``: the negated held-out loss plus ``size_prior``
    for every doubling of the parameter count.

    Why: on NAS-Bench-201 a one-epoch loss and the parameter count are two signals of a cell's
    12-epoch accuracy, and the loss's errors do not depend on the size (its residual against the
    truth has no slope in log parameters), so a little of the size sharpens the ranking of good
    cells, which a short training orders poorly (BENCHMARKS.md, "The deep rung modelled")."""
    metrics["sized_neg_val_loss"] = (metrics["neg_val_loss"]
                                     + size_prior * math.log2(max(metrics["params"], 1)))
    return metrics


# metrics of repeated trainings that are averaged, summed (a candidate's cost), or taken from the
# first training (the network, the data, the first seed: the same or the run's own for every one)
_MEAN = ("val_accuracy", "val_loss", "neg_val_loss", "train_accuracy", "steady_epoch_seconds")
_SUM = ("train_seconds", "build_seconds", "first_step_seconds", "eval_seconds")


def mean_of_repeats(runs: list[dict]) -> dict:
    """One candidate's metrics from its repeated trainings: held-out accuracy and loss and the
    training accuracy averaged, times summed, ``repeats`` the number of trainings and
    ``val_accuracy_sd`` the spread of their accuracies (sample standard deviation; 0 for one).
    One training's metrics come back as they are, with those two added."""
    metrics = dict(runs[0])
    if len(runs) > 1:
        for name in _MEAN:
            values = [run[name] for run in runs if run.get(name) is not None]
            if values:
                metrics[name] = float(np.mean(values))
        for name in _SUM:
            if all(run.get(name) is not None for run in runs):
                metrics[name] = float(sum(run[name] for run in runs))
    accuracies = [run["val_accuracy"] for run in runs]
    metrics["repeats"] = len(runs)
    metrics["val_accuracy_sd"] = float(np.std(accuracies, ddof=1)) if len(runs) > 1 else 0.0
    return metrics


def train(genotype, config: ProxyConfig, data=None, test_data=None, verbose: int = 0,
          callbacks=()) -> tuple:
    """Build and train a network; return ``(model, metrics)``. Used by evaluate and ``nasplay
    train``.

    ``test_data`` (a loaded test split) adds ``test_accuracy`` to the metrics. ``verbose=1``
    shows Keras's progress bar. Runs on the active Keras backend (``nasplay.runtime.backends``).
    """
    settings = devices.configure(config.cpus, config.gpus, config.mixed_precision)
    config.check()
    import keras

    sets = subsets(config, data)
    devices.reset()
    keras.utils.set_random_seed(config.seed)
    start = time.perf_counter()
    model, run = _build(genotype, config, sets, settings)
    build_seconds = time.perf_counter() - start

    clock = make_clock(run.steps_per_epoch, run.steps_per_execution)
    start = time.perf_counter()
    model.fit(run.batches, epochs=config.epochs, steps_per_epoch=run.steps_per_epoch,
              verbose=verbose, shuffle=False, callbacks=[clock, *callbacks])  # the plan shuffles
    train_seconds = time.perf_counter() - start
    _raise_if_diverged(clock, config)

    start = time.perf_counter()
    metrics = {
        **heldout_metrics(model, sets), "train_accuracy": clock.train_accuracy,
        "params": int(model.count_params()), "flops": run.flops,
        "train_seconds": train_seconds, "epochs": config.epochs,
        "train_size": len(sets.y_train), "val_size": len(sets.y_val),
        "seed": config.seed, "subset_seed": config.subset_seed,
        "backend": settings.backend, "dtype_policy": settings.dtype_policy,
        "steps_per_execution": run.steps_per_execution,
        "build_seconds": build_seconds, "first_step_seconds": clock.first_step_seconds,
        "steady_epoch_seconds": clock.steady_epoch_seconds(),
        "eval_seconds": time.perf_counter() - start,
    }
    if test_data is not None:
        metrics["test_accuracy"] = accuracy(model, test_data.x, test_data.y)
        metrics["test_size"] = len(test_data.y)
    return model, metrics


@dataclass
class _Run:
    """What ``fit`` needs besides the model: the batches and how they are stepped through."""

    batches: object           # a tf.data.Dataset or a keras.utils.PyDataset of all epochs
    steps_per_epoch: int
    steps_per_execution: int
    flops: int | None         # multiply-adds per image, counted while building


def _build(genotype, config: ProxyConfig, sets: Subsets, settings) -> tuple:
    """The network, compiled and with its optimizer and metrics built, and the training batches
    of the whole run (TensorFlow: tf.data; other backends: numpy; the same batches)."""
    from cells import build_network
    from nasplay.data.pipeline import BatchPlan, numpy_batches, tf_batches

    plan = BatchPlan(len(sets.x_train), config.batch_size, config.epochs, config.augment,
                     config.cutout, config.seed)
    make = tf_batches if settings.backend == "tensorflow" else numpy_batches
    batches = make(sets.x_train, sets.y_train, plan, two_outputs=config.auxiliary_head)
    model = build_network(genotype, num_classes=len(sets.classes), filters=config.filters,
                          cells_per_stage=config.cells_per_stage,
                          input_shape=sets.x_train.shape[1:], drop_path_rate=config.drop_path,
                          auxiliary_head=config.auxiliary_head, seed=config.seed)
    if settings.backend == "tensorflow" and config.fused_norms:  # Keras's arithmetic, fewer ops
        fuse_batch_norms(model)
    per_call = steps_per_execution(config.steps_per_execution, plan.steps_per_epoch)
    _compile(model, config, plan.steps_per_epoch, per_call, settings)
    flops = _prebuild(model, sets, settings.backend)
    return model, _Run(batches, plan.steps_per_epoch, per_call, flops)


def steps_per_execution(requested: int, steps_per_epoch: int) -> int:
    """The largest divisor of ``steps_per_epoch`` not above ``requested``: a graph call that ran
    past an epoch's end would take the next epoch's first batches (one stream feeds all epochs),
    so the epochs would no longer be the plan's."""
    return max(d for d in range(1, min(requested, steps_per_epoch) + 1) if steps_per_epoch % d == 0)


def _raise_if_diverged(clock, config: ProxyConfig) -> None:
    if clock.diverged is not None:
        epoch, loss = clock.diverged
        raise TrainingDiverged(
            f"training diverged: the loss became {loss} in epoch {epoch + 1} of {config.epochs} "
            f"(learning rate {config.learning_rate}, batch size {config.batch_size}); "
            f"lower the learning rate")


def _compile(model, config: ProxyConfig, steps_per_epoch: int, per_call: int, settings) -> None:
    """SGD with Nesterov momentum, decoupled weight decay and a cosine schedule; the fused
    TensorFlow SGD (``nasplay.runtime._internals.fused_sgd``) where it applies, else Keras's."""
    import keras

    from nasplay.runtime._internals.fused_sgd import sgd_class

    lr = config.learning_rate
    if config.cosine:
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps_per_epoch * config.epochs)
    optimizer = sgd_class(settings.backend)(lr, momentum=config.momentum, nesterov=True,
                                            weight_decay=config.weight_decay or None)
    model.compile(optimizer=optimizer, **loss_arguments(model),
                  jit_compile=settings.jit_compile, steps_per_execution=per_call)


def loss_arguments(model) -> dict:
    """``compile`` arguments for loss and metrics: cross-entropy, and with an auxiliary head
    (a second output) DARTS's weighting 0.4 for it; accuracy of the main output only."""
    loss = "sparse_categorical_crossentropy"
    n_outputs = len(model.outputs)
    if n_outputs == 1:
        return {"loss": loss, "metrics": ["accuracy"]}
    return {"loss": [loss] * n_outputs, "loss_weights": [1.0] + [0.4] * (n_outputs - 1),
            "metrics": [["accuracy"]] + [[]] * (n_outputs - 1)}


def _prebuild(model, sets: Subsets, backend: str) -> int | None:
    """Create the optimizer's and metrics' variables before ``fit``; return multiply-adds/image.

    Without a distribution strategy Keras (3.15, TensorFlow) creates them while tracing the
    first training step, and a ``tf.function`` that creates variables is traced a second time:
    measured, this doubled the first step's cost (JAX and PyTorch need them built before their
    first step too). One forward pass on one image builds them, and the same pass counts the
    model's multiply-adds (:func:`nasplay.scorers.proxy.flops.recording`): eager on TensorFlow and
    PyTorch; on JAX only traced (``jax.eval_shape``), since eager JAX compiles every op for its
    shapes (about 13 s for a small cell network on 2 cores).
    """
    from nasplay.scorers.proxy.flops import recording
    from nasplay.data.pipeline import normalize

    model.optimizer.build(model.trainable_variables)
    x = normalize(sets.x_train[:1])
    y = sets.y_train[:1]
    with recording(model) as counted:
        y_pred = _forward_once(model, x, backend)
    if isinstance(y_pred, (list, tuple)):
        y = [y] * len(y_pred)
    model.compute_loss(x, y, y_pred, training=False)
    model.compute_metrics(x, y, y_pred, sample_weight=None)
    model.reset_metrics()
    return None if counted is None else int(sum(counted.values()))


def _forward_once(model, x: np.ndarray, backend: str):
    """``model(x)`` in inference mode; on JAX traced only, with uniform class probabilities
    standing in for the outputs (they only build the loss and metric variables)."""
    if backend != "jax":
        return model(x, training=False)
    import jax

    shapes = jax.eval_shape(lambda a: model(a, training=False),
                            jax.ShapeDtypeStruct(x.shape, x.dtype))
    uniform = [np.full(s.shape, 1.0 / s.shape[-1], np.float32)
               for s in jax.tree_util.tree_leaves(shapes)]
    return uniform if isinstance(shapes, (list, tuple)) else uniform[0]


def accuracy(model, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on uint8 images (``heldout``'s accuracy)."""
    return heldout(model, x, y, batch_size)["accuracy"]


def heldout_metrics(model, sets: Subsets) -> dict:
    """``val_accuracy``, ``val_loss`` and ``neg_val_loss`` (for a search that maximizes) on the
    validation subset: the held-out scores as a trial records them, at its end or an epoch's."""
    val = heldout(model, sets.x_val, sets.y_val)
    return {"val_accuracy": val["accuracy"], "val_loss": val["loss"],
            "neg_val_loss": -val["loss"]}


def heldout(model, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> dict:
    """Top-1 accuracy and mean cross-entropy of ``model`` on uint8 images, run eagerly in large
    batches.

    The loss is kept beside the accuracy because after a short training it ranks candidates
    better: a 1,000-image accuracy moves in steps of 0.1 point and by +-1.4 points between
    draws, while the loss uses every prediction's confidence (benchmarks/nb201_proxy.py).
    Eager inference walks the layers once per batch without tracing or optimizing a graph, which
    for the few batches of a validation subset is cheaper than ``model.evaluate`` (measured in
    benchmarks/proxy_benchmark.py). Images are normalized exactly as in training.
    """
    from nasplay.data.pipeline import eval_batches

    if len(y) == 0:
        return {"accuracy": float("nan"), "loss": float("nan")}
    correct, loss = 0, 0.0
    for images, labels in eval_batches(x, y, batch_size):
        probs = model(images, training=False)
        if isinstance(probs, (list, tuple)):
            probs = probs[0]
        probs = to_numpy(probs).astype(np.float64)
        correct += int(np.sum(np.argmax(probs, axis=-1) == labels))
        picked = probs[np.arange(len(labels)), np.asarray(labels, dtype=np.int64)]
        loss -= float(np.sum(np.log(np.clip(picked, 1e-12, 1.0))))
    return {"accuracy": correct / len(y), "loss": loss / len(y)}


def to_numpy(tensor) -> np.ndarray:
    """A backend's tensor as a numpy array (a PyTorch one may live on a GPU)."""
    if hasattr(tensor, "detach"):
        return tensor.detach().cpu().numpy()
    return np.asarray(tensor)

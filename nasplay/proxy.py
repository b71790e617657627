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

- decoded data and the subsets are cached in-process (:data:`_SUBSETS`), so a worker that
  evaluates many candidates loads and slices the source once;
- the tf.data pipeline is made per candidate from those arrays (about 0.1 s): a pipeline reused
  across candidates would continue its reshuffling state, so a candidate's data order would depend
  on how many candidates the process had evaluated before it;
- validation runs eagerly on whole batches instead of ``model.evaluate``, which traces and
  optimizes a second graph for a handful of batches;
- ``jit_compile`` comes from :mod:`nasplay.devices`: Keras's default ("auto") turns XLA on for
  TensorFlow models, which trains 4x slower on this CPU.

Graph tracing of the training step is single-threaded Python and is what remains of the fixed
cost; running several trials in parallel (Ray Tune) overlaps it.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from nasplay import devices
from nasplay.errors import UserError


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
    steps_per_execution: int = 1     # steps per graph call; >1 traces a while loop (costlier here)
    # network
    filters: int = 8                 # width of the first stage (doubled at each reduction)
    cells_per_stage: int = 1         # normal cells between reductions (N in NASNet's "N x F")
    # devices (nasplay.devices.configure)
    cpus: int | None = None          # TF intra-op threads: the CPUs this evaluation was given
    gpus: bool = False               # train on the visible GPU(s)
    mixed_precision: bool | None = None  # None: on with a GPU, off on the CPU

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
        positive = ("train_size", "val_size", "epochs", "batch_size", "filters",
                    "steps_per_execution")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UserError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.cells_per_stage, bool) or not isinstance(self.cells_per_stage, int) \
                or self.cells_per_stage < 0:
            raise UserError(f"cells_per_stage must be an integer >= 0, got {self.cells_per_stage!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise UserError(f"learning_rate must be positive, got {self.learning_rate!r}")
        if not 0.0 <= self.drop_path < 1.0:
            raise UserError(f"drop_path must be in [0, 1), got {self.drop_path!r}")
        if self.cutout < 0:
            raise UserError(f"cutout must be >= 0 pixels, got {self.cutout!r}")
        if self.train_size < self.batch_size:
            raise UserError(f"train_size ({self.train_size}) is smaller than one batch "
                            f"({self.batch_size}); use a larger subset or a smaller batch size")


@dataclass
class Subsets:
    """The training and validation images of one (source, sizes, subset_seed)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: list[str] = field(default_factory=list)


# (data, cache_dir, train_size, val_size, subset_seed) -> Subsets; a worker evaluating many
# candidates of one search hits the same key every time. Two entries: a proxy and a longer run.
_SUBSETS: OrderedDict[tuple, Subsets] = OrderedDict()
_SUBSETS_MAX = 2


def subsets(config: ProxyConfig, data=None) -> Subsets:
    """The candidate's training and validation subsets (cached in-process when ``data`` is None).

    ``data`` is an already loaded source (``nasplay.data.Dataset``: x, y, classes); without it the
    source ``config.data`` is loaded. A subset larger than the source raises ``DataError``.
    """
    from nasplay.data import load_source, stratified_split

    key = (config.data, config.cache_dir, config.train_size, config.val_size, config.subset_seed)
    if data is None and key in _SUBSETS:
        _SUBSETS.move_to_end(key)
        return _SUBSETS[key]
    source = data if data is not None else load_source(config.data, cache_dir=config.cache_dir)
    train_idx, val_idx = stratified_split(source.y, config.train_size, config.val_size,
                                          config.subset_seed)
    result = Subsets(np.ascontiguousarray(source.x[train_idx]), source.y[train_idx],
                     np.ascontiguousarray(source.x[val_idx]), source.y[val_idx],
                     list(source.classes))
    if data is None:
        _SUBSETS[key] = result
        while len(_SUBSETS) > _SUBSETS_MAX:
            _SUBSETS.popitem(last=False)
    return result


def evaluate(genotype, config: ProxyConfig | None = None, data=None) -> dict:
    """Train ``genotype`` with ``config`` and return its metrics (the model is dropped).

    Metrics: val_accuracy, train_accuracy (running mean over the last epoch, as Keras reports
    it), params, flops (multiply-adds per image), train_seconds (the whole ``fit``), epochs,
    train_size, val_size, seed, and the timing split build_seconds (network + compile),
    first_step_seconds (``fit``'s start to the end of its first graph call: tracing, graph
    optimization, the first ``steps_per_execution`` steps), steady_epoch_seconds (an epoch once
    traced), eval_seconds. Raises :class:`TrainingDiverged` on a NaN or infinite loss.
    """
    _, metrics = train(genotype, config or ProxyConfig(), data=data)
    return metrics


def train(genotype, config: ProxyConfig, data=None, test_data=None, verbose: int = 0,
          callbacks=()) -> tuple:
    """Build and train a network; return ``(model, metrics)``. Used by evaluate and ``nasplay train``.

    ``test_data`` (a loaded test split) adds ``test_accuracy`` to the metrics. ``verbose=1``
    shows Keras's progress bar.
    """
    settings = devices.configure(config.cpus, config.gpus, config.mixed_precision)
    config.check()
    import keras

    from cells import build_network
    from nasplay.data import make_dataset

    sets = subsets(config, data)
    devices.reset()
    keras.utils.set_random_seed(config.seed)
    train_ds = make_dataset(sets.x_train, sets.y_train, config.batch_size, training=True,
                            augment=config.augment, cutout=config.cutout, seed=config.seed)
    if config.auxiliary_head:  # the auxiliary output learns the same labels
        train_ds = train_ds.map(lambda images, labels: (images, (labels, labels)))

    start = time.perf_counter()
    model = build_network(genotype, num_classes=len(sets.classes), filters=config.filters,
                          cells_per_stage=config.cells_per_stage,
                          input_shape=sets.x_train.shape[1:], drop_path_rate=config.drop_path,
                          auxiliary_head=config.auxiliary_head, seed=config.seed)
    steps_per_epoch = len(sets.x_train) // config.batch_size
    _compile(model, config, steps_per_epoch, settings.jit_compile)
    flops = _prebuild(model, sets)
    build_seconds = time.perf_counter() - start

    clock = _clock(steps_per_epoch, min(config.steps_per_execution, steps_per_epoch))
    start = time.perf_counter()
    model.fit(train_ds, epochs=config.epochs, verbose=verbose, shuffle=False,  # the pipeline does
              callbacks=[clock, *callbacks])
    train_seconds = time.perf_counter() - start
    if clock.diverged is not None:
        epoch, loss = clock.diverged
        raise TrainingDiverged(
            f"training diverged: the loss became {loss} in epoch {epoch + 1} of {config.epochs} "
            f"(learning rate {config.learning_rate}, batch size {config.batch_size}); "
            f"lower the learning rate")

    start = time.perf_counter()
    val_accuracy = accuracy(model, sets.x_val, sets.y_val)
    eval_seconds = time.perf_counter() - start

    metrics = {
        "val_accuracy": val_accuracy,
        "train_accuracy": clock.train_accuracy,
        "params": int(model.count_params()),
        "flops": flops,
        "train_seconds": train_seconds,
        "epochs": config.epochs,
        "train_size": len(sets.y_train),
        "val_size": len(sets.y_val),
        "seed": config.seed,
        "subset_seed": config.subset_seed,
        "build_seconds": build_seconds,
        "first_step_seconds": clock.first_step_seconds,
        "steady_epoch_seconds": clock.steady_epoch_seconds(),
        "eval_seconds": eval_seconds,
    }
    if test_data is not None:
        metrics["test_accuracy"] = accuracy(model, test_data.x, test_data.y)
        metrics["test_size"] = len(test_data.y)
    return model, metrics


def _compile(model, config: ProxyConfig, steps_per_epoch: int, jit_compile: bool) -> None:
    import keras

    lr = config.learning_rate
    if config.cosine:
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps_per_epoch * config.epochs)
    optimizer = _fused_sgd_class()(lr, momentum=config.momentum, nesterov=True,
                                   weight_decay=config.weight_decay or None)
    model.compile(optimizer=optimizer, **loss_arguments(model), jit_compile=jit_compile,
                  steps_per_execution=min(config.steps_per_execution, steps_per_epoch))


def loss_arguments(model) -> dict:
    """``compile`` arguments for loss and metrics: cross-entropy, and with an auxiliary head
    (a second output) DARTS's weighting 0.4 for it; accuracy of the main output only."""
    loss = "sparse_categorical_crossentropy"
    n_outputs = len(model.outputs)
    if n_outputs == 1:
        return {"loss": loss, "metrics": ["accuracy"]}
    return {"loss": [loss] * n_outputs, "loss_weights": [1.0] + [0.4] * (n_outputs - 1),
            "metrics": [["accuracy"]] + [[]] * (n_outputs - 1)}


def _prebuild(model, sets: Subsets) -> int:
    """Create the optimizer's and metrics' variables before ``fit``; return multiply-adds/image.

    Without a distribution strategy Keras (3.15, TensorFlow) creates them while tracing the
    first training step, and a ``tf.function`` that creates variables is traced a second time:
    measured, this doubled the first step's cost. One eager call on one image builds them, and
    the same call counts the model's multiply-adds (:func:`nasplay.flops.recording`).
    """
    from nasplay.flops import recording

    model.optimizer.build(model.trainable_variables)
    x = _normalized(sets.x_train[:1])
    y = sets.y_train[:1]
    with recording(model) as counted:
        y_pred = model(x, training=False)
    if isinstance(y_pred, (list, tuple)):
        y = [y] * len(y_pred)
    model.compute_loss(x, y, y_pred, training=False)
    model.compute_metrics(x, y, y_pred, sample_weight=None)
    model.reset_metrics()
    return int(sum(counted.values()))


def _normalized(x: np.ndarray):
    """uint8 images normalized exactly as the training pipeline does (one small batch)."""
    from nasplay.data import make_dataset

    images, _ = next(iter(make_dataset(x, np.zeros(len(x), np.int64), len(x), training=False)))
    return images


_FUSED_SGD = None


def _fused_sgd_class():
    """Keras's SGD with one fused TensorFlow op per variable update (same arithmetic).

    Keras routes every variable's update through ``tf.distribute``'s ``update``/``merge_call``
    and several small ops; tracing that in Python for the ~200-500 variables of a cell network
    was about half of the first step's cost (measured in benchmarks/proxy_benchmark.py). Under
    a real distribution strategy the stock path is used. ``ResourceApplyKerasMomentum`` computes
    ``m = momentum * m - lr * g`` and ``v += m`` (or, Nesterov, ``v += momentum * m - lr * g``),
    Keras's SGD exactly; the decoupled weight decay ``v -= v * wd * lr`` is kept as Keras has it.
    """
    global _FUSED_SGD
    if _FUSED_SGD is not None:
        return _FUSED_SGD
    import keras
    import tensorflow as tf

    class FusedSGD(keras.optimizers.SGD):
        def _backend_update_step(self, grads, trainable_variables, learning_rate):
            if tf.distribute.has_strategy():
                return super()._backend_update_step(grads, trainable_variables, learning_rate)
            for grad, variable in zip(grads, trainable_variables):
                if grad is None:
                    continue
                lr = tf.cast(learning_rate, variable.dtype)
                handle = variable.value.handle
                if self.momentum:
                    momentum = self.momentums[self._get_variable_index(variable)]
                    tf.raw_ops.ResourceApplyKerasMomentum(
                        var=handle, accum=momentum.value.handle, lr=lr,
                        grad=tf.cast(grad, variable.dtype),
                        momentum=tf.cast(self.momentum, variable.dtype),
                        use_nesterov=self.nesterov)
                else:
                    tf.raw_ops.ResourceApplyGradientDescent(
                        var=handle, alpha=lr, delta=tf.cast(grad, variable.dtype))

        def _apply_weight_decay(self, variables):
            if self.weight_decay is None or tf.distribute.has_strategy():
                return super()._apply_weight_decay(variables)
            # Keras evaluates the learning rate (a schedule: ~20 ops) once per variable; once
            # is enough and was a quarter of the traced step here
            factor = self.learning_rate * self.weight_decay
            for variable in variables:
                if self._use_weight_decay(variable):
                    variable.value.assign_sub(variable.value * tf.cast(factor, variable.dtype))

    _FUSED_SGD = FusedSGD
    return FusedSGD


def accuracy(model, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> float:
    """Top-1 accuracy of ``model`` on uint8 images, run eagerly in large batches.

    Eager inference walks the layers once per batch without tracing or optimizing a graph, which
    for the few batches of a validation subset is cheaper than ``model.evaluate`` (measured in
    benchmarks/proxy_benchmark.py). Images are normalized by the same pipeline as training.
    """
    from nasplay.data import make_dataset

    if len(y) == 0:
        return float("nan")
    correct = 0
    for images, labels in make_dataset(x, y, batch_size, training=False):
        probs = model(images, training=False)
        if isinstance(probs, (list, tuple)):
            probs = probs[0]
        correct += int(np.sum(np.argmax(np.asarray(probs), axis=-1) == labels.numpy()))
    return correct / len(y)


def _clock(steps_per_epoch: int, steps_per_execution: int):
    """A Keras callback that times the first graph call and each epoch and watches the loss.

    Defined here so that importing this module does not import Keras (the CLI stays light).
    """
    import keras

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.first_step_seconds = float("nan")
            self.epoch_seconds: list[float] = []
            self.first_epoch_tail = None  # (seconds, steps) of epoch 1 after its first call
            self.train_accuracy = float("nan")
            self.diverged = None          # (epoch, loss) once the loss is NaN or infinite

        def on_train_begin(self, logs=None):
            self._fit_start = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            # called once per graph call (every steps_per_execution steps)
            now = time.perf_counter()
            if math.isnan(self.first_step_seconds):
                self.first_step_seconds = now - self._fit_start
                self._first_call_end = now
            self._check((logs or {}).get("loss"), len(self.epoch_seconds))

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            self.epoch_seconds.append(now - self._epoch_start)
            if epoch == 0:
                self.first_epoch_tail = (now - self._first_call_end,
                                         steps_per_epoch - steps_per_execution)
            logs = logs or {}
            acc = logs.get("accuracy", logs.get("predictions_accuracy"))
            if acc is not None:
                self.train_accuracy = float(acc)
            self._check(logs.get("loss"), epoch)

        def _check(self, loss, epoch):
            if loss is not None and self.diverged is None and not math.isfinite(float(loss)):
                self.diverged = (epoch, float(loss))
                self.model.stop_training = True

        def steady_epoch_seconds(self) -> float:
            """Median of the epochs after the first; with one epoch, extrapolated from its tail."""
            if len(self.epoch_seconds) > 1:
                return statistics.median(self.epoch_seconds[1:])
            if self.first_epoch_tail and self.first_epoch_tail[1] > 0:
                seconds, steps = self.first_epoch_tail
                return seconds / steps * steps_per_epoch
            return float("nan")

    return Clock()

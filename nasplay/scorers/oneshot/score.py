"""Scoring candidates with a trained supernet: recalibrate the path's batch norm, then validate.

A path's batch-norm moving statistics, as left by supernet training, average over the many paths
that shared each layer; SPOS re-estimates them per candidate, and so does :class:`OneShotScorer`:
``recalibration_batches`` fixed training batches run through the path in training mode with the
momentum of the k-th batch set to ``k / (k + 1)``, which leaves the exact mean of the batches'
statistics (the first batch replaces whatever was there, so a score never depends on the
candidates scored before it). Then the validation subset runs through the path in inference
mode. On TensorFlow both are traced once (``tf.function`` with the architecture as an input),
so the n-th candidate costs only its forward passes; on PyTorch they run eagerly, chosen branches
only (``nasplay.scorers.oneshot.train.engine``).

With ``finetune_steps`` > 0 the path first takes that many SGD steps alone (the training's
masked step, so no other op moves; the same fixed batches for every candidate), is scored, and
gets its inherited weights back: inherited weights are a warm start, not the verdict. On
``amoebanet`` at the CPU defaults, 16 steps moved the rank correlation with 5x longer standalone
training from 0.15 to 0.32 (this scorer, the default supernet), from 0.09 to 0.17 (a supernet
with affine candidate ops) and 0.42 (a control with other batches), at ~6x the cost of a pure
score; at 24 cells none is conclusive (BENCHMARKS.md, "One-shot search").

A Ray worker scores many candidates of one search: :func:`cached_scorer` keeps the loaded
supernet and its traced functions for the life of the process.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from nasplay.errors import UserError
from nasplay.scorers.oneshot import checkpoint as ckpt

SCORE_BATCH = 500  # validation images per forward pass: large batches, few graph calls


class OneShotScorer:
    """``score(genotype) -> metrics`` with ``supernet``'s weights (see the module docstring).

    Loads ``config``'s data subsets once. Metrics: ``oneshot_accuracy`` (validation accuracy of
    the path; the search's metric), ``oneshot_loss`` (its mean cross-entropy there), ``params``
    (of the standalone network), ``score_seconds``, ``val_size``; with fine-tuning also
    ``oneshot_finetune_loss`` (the fine-tuning steps' mean training loss).
    """

    def __init__(self, supernet, config):
        from nasplay.data.subsets import load_subsets
        from nasplay.scorers.oneshot.train import engine, setup_devices
        from nasplay.data.pipeline import normalize

        config.check()
        setup_devices(config)
        self.supernet, self.config = supernet, config
        sets = load_subsets(config.data, config.train_size, config.val_size,
                            config.subset_seed, cache_dir=config.cache_dir)
        self.fingerprint = ckpt.fingerprint(sets)
        if tuple(sets.x_val.shape[1:]) != tuple(supernet.image_shape) \
                or len(sets.classes) != supernet.num_classes:
            raise UserError(f"the data {config.data!r} ({len(sets.classes)} classes, images "
                            f"{sets.x_val.shape[1:]}) does not fit this supernet")
        self.x_val, self.y_val = normalize(sets.x_val), sets.y_val.astype(np.int32)
        count = config.recalibration_batches * config.batch_size
        pick = np.random.default_rng([config.seed, 3]).permutation(len(sets.x_train))[:count]
        self.calibration = [normalize(sets.x_train[np.sort(part)])
                            for part in np.array_split(pick, config.recalibration_batches)]
        self._recalibrate, self._predict = engine().compile_scoring(supernet)
        self._finetune = _Finetune(supernet, sets, config) if config.finetune_steps else None

    def accuracy(self, genotype) -> float:
        """Validation accuracy of ``genotype``'s path after BN recalibration (and fine-tuning,
        if configured)."""
        return self.evaluate(genotype)[0]

    def evaluate(self, genotype) -> tuple[float, float]:
        """(accuracy, mean cross-entropy) of ``genotype``'s path on the validation subset."""
        return self._evaluate(genotype)[:2]

    def _evaluate(self, genotype) -> tuple[float, float, float | None]:
        """evaluate's pair and the fine-tuning's mean training loss (None without it)."""
        arch = self.supernet.encode(genotype)
        with self.finetuned(arch) as training_loss:
            for k, images in enumerate(self.calibration):
                self._recalibrate(images, arch, np.float32(k / (k + 1)))
            probs = np.concatenate([np.asarray(self._predict(self.x_val[i:i + SCORE_BATCH], arch))
                                    for i in range(0, len(self.y_val), SCORE_BATCH)])
        truth = probs[np.arange(len(self.y_val)), self.y_val]
        accuracy = float(np.mean(np.argmax(probs, axis=-1) == self.y_val))
        return accuracy, float(-np.mean(np.log(np.maximum(truth, 1e-7)))), training_loss

    @contextmanager
    def finetuned(self, arch):
        """Inside: the path ``arch`` fine-tuned (``finetune_steps``); on leaving, every weight
        and momentum buffer is back to what the supernet inherited, even after an error.
        Yields the fine-tuning steps' mean training loss (None without fine-tuning)."""
        if self._finetune is None:
            yield None
            return
        try:
            yield self._finetune.run(arch)
        finally:
            self._finetune.restore()

    def score(self, genotype) -> dict:
        start = time.perf_counter()
        accuracy, loss, training_loss = self._evaluate(genotype)
        metrics = {"oneshot_accuracy": accuracy, "oneshot_loss": loss,
                   "params": self.supernet.path_params(genotype),
                   "score_seconds": time.perf_counter() - start, "val_size": len(self.y_val),
                   "rss_mb": _rss_mb()}
        if training_loss is not None:
            metrics["oneshot_finetune_loss"] = training_loss
        return metrics


class _Finetune:
    """``finetune_steps`` masked SGD steps on one path, and the undo (the trainer's step and
    masked SGD from the backend's engine, and a snapshot of the weights)."""

    def __init__(self, supernet, sets, config):
        from nasplay.scorers.oneshot.train import engine

        steps = engine()
        self.optimizer = steps.MaskedSGD(supernet.trainable_variables, config.momentum,
                                         config.weight_decay)
        self.optimizer.learning_rate.assign(config.finetune_learning_rate)
        self.train_step, _ = steps.compile_steps(supernet, self.optimizer, config.batch_size)
        count = config.finetune_steps * config.batch_size
        order = np.random.default_rng([config.seed, 4]).permutation(len(sets.x_train))
        pick = np.resize(order, count).reshape(config.finetune_steps, config.batch_size)
        self.batches = [(sets.x_train[idx], sets.y_train[idx].astype(np.int32)) for idx in pick]
        self.restore = steps.Snapshot(self.optimizer).restore

    def run(self, arch) -> float:
        """Train the path; its mean training loss over the steps (the area under its learning
        curve, Ru et al. 2021's training-speed estimate, from the inherited weights)."""
        from nasplay.data.pipeline import normalize

        losses = [float(self.train_step(normalize(images), labels, arch)[0])
                  for images, labels in self.batches]
        return float(np.mean(losses))


def _rss_mb() -> float | None:
    """This process's resident memory (the scorer keeps a supernet and a traced graph: a search
    records it with every score, so growth over thousands of candidates is visible)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):  # not Linux
        return None


# (directory, checkpoint file's mtime and size, identity) -> OneShotScorer. One entry: a worker
# scores one search's candidates; a retrained checkpoint (new mtime) is loaded afresh.
_CACHE: OrderedDict[tuple, OneShotScorer] = OrderedDict()
_CACHE_MAX = 1


def cached_scorer(directory, config, space_name: str | None = None) -> OneShotScorer:
    """The process's scorer for the trained supernet in ``directory``, loaded at the first call.

    ``space_name`` (optional) must match the checkpoint's space; width and data always must
    match ``config``'s. The data fingerprint is checked once the subsets are loaded.
    """
    directory = Path(directory).resolve()
    weights = directory / ckpt.WEIGHTS_FILE
    stat = weights.stat() if weights.is_file() else None
    key = (str(directory), stat and (stat.st_mtime_ns, stat.st_size),
           tuple(sorted(config.to_dict().items(), key=lambda item: item[0])), space_name)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    expect = ckpt.identity(space_name, config)
    if space_name is None:
        del expect["space"]
    supernet = ckpt.load_supernet(directory, expect=expect)
    scorer = OneShotScorer(supernet, config)
    meta = ckpt.read_meta(directory)
    ckpt.check_matches(meta, {"data_fingerprint": scorer.fingerprint}, directory)
    _CACHE[key] = scorer
    while len(_CACHE) > _CACHE_MAX:
        _CACHE.popitem(last=False)
    return scorer

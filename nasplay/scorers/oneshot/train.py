"""Training a supernet: one path per step, only that path's weights move, checkpoint per epoch.

Every step samples a path (uniformly: SPOS; or from the RL controller: ENAS), runs the images
through it and updates the weights it used: the masked SGD of the engine for the active Keras
backend (:func:`engine`: ``nasplay.scorers.oneshot.engine_tf``, traced steps, or
``nasplay.scorers.oneshot.engine_torch``, eager steps), so an op's weights and momentum change only
on the steps that train it.

With the controller sampler, each step's path is also scored on a validation batch (batch
statistics, moving ones untouched) and that accuracy is told to the controller, which updates
its policy every few results: ENAS's alternation, at ENAS's ratio of one reward per step.

Repeatable and resumable: the weights start from ``keras.utils.set_random_seed(seed)``, epoch
``e``'s data order and paths come from generators seeded with ``(seed, e)``, and a checkpoint
holds everything else (weights, momentum buffers, the controller's state), so a run resumed from
epoch ``e`` ends with the weights of the uninterrupted run. The supernet itself is plain Keras;
the checkpoint holds numpy arrays, so a supernet trained on one engine scores on the other.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from nasplay.errors import UserError
from nasplay.scorers.oneshot import checkpoint as ckpt


class UniformSampler:
    """SPOS: every decision uniform, a fresh generator per epoch (resumable at epoch bounds)."""

    needs_reward = False

    def __init__(self, space, seed: int):
        self.space, self.seed = space, seed

    def begin_epoch(self, epoch: int) -> None:
        self._rng = np.random.default_rng([self.seed, epoch, 1])

    def next(self):
        return np.asarray(self.space.encode(self.space.sample(self._rng)), np.int32), None

    def tell(self, token, reward: float) -> None:
        pass

    def state(self):
        return None

    def load(self, state) -> None:
        pass


class ControllerSampler(UniformSampler):
    """ENAS: paths from ``searchers.Controller`` (ask), rewarded with validation accuracy (tell)."""

    needs_reward = True

    def __init__(self, space, seed: int):
        from searchers import Controller

        super().__init__(space, seed)
        self.controller = Controller(space, seed=seed)

    def begin_epoch(self, epoch: int) -> None:
        pass  # the controller's own generator is part of its (checkpointed) state

    def next(self):
        proposal = self.controller.ask()
        return np.asarray(self.space.encode(proposal.genotype), np.int32), proposal.trial_id

    def tell(self, token, reward: float) -> None:
        self.controller.tell(token, reward)

    def state(self):
        return self.controller.state_dict()

    def load(self, state) -> None:
        if state is not None:
            self.controller.load_state_dict(state)


def _cosine(base: float, step: int, total: int) -> float:
    return 0.5 * base * (1.0 + math.cos(math.pi * step / total))


def supernet_space(space_name: str, config):
    """The space, if a supernet holds it with ``config``'s settings (checked before anything is
    written: an edge space has no loose ends to average, so ``loose_mean`` is refused; only an
    edge space's supernet grows, so ``shallow_epochs`` is refused for a space of blocks)."""
    from cells.supernet import check_space
    from search_space import EdgeSpace

    try:
        space = check_space(space_name)
    except ValueError as e:
        raise UserError(str(e)) from None
    if isinstance(space, EdgeSpace) and config.loose_mean:
        raise UserError(f"loose_mean: space {space.name!r} has no loose ends (a cell's output "
                        f"is its last node); set loose_mean=False")
    if config.shallow_epochs and not isinstance(space, EdgeSpace):
        raise UserError(f"shallow_epochs: growing a supernet from a shallow one is built for "
                        f"spaces of ops on edges (nb201), not {space.name!r}; set it to 0")
    return space


ENGINES = {"tensorflow": "nasplay.scorers.oneshot.engine_tf",
           "torch": "nasplay.scorers.oneshot.engine_torch"}


def engine():
    """The one-shot engine module of the active Keras backend (``MaskedSGD``, ``compile_steps``,
    ``compile_scoring``, ``Snapshot``, ``FIRST_STEP_NOTE``); a one-line UserError on a backend
    without one (JAX, not built yet: its ``jit`` would trace every branch, as TensorFlow does)."""
    import importlib

    import keras

    backend = keras.backend.backend()
    if backend not in ENGINES:
        raise UserError(f"one-shot training and scoring run on the "
                        f"{' or '.join(ENGINES)} backend, not {backend!r}; set KERAS_BACKEND="
                        f"tensorflow (or --backend torch)")
    return importlib.import_module(ENGINES[backend])


def setup_devices(config) -> None:
    """A backend with an engine, float32 (the masked SGD has no loss scaling), the CPUs and GPUs
    given."""
    from nasplay.runtime import devices

    engine()
    devices.configure(config.cpus, config.gpus, mixed_precision=False)


def _prepare(space_name, config, directory):
    """Load the data, then check ``directory``: empty, or a run of the same settings."""
    from nasplay.data.subsets import load_subsets

    space = supernet_space(space_name, config)
    setup_devices(config)
    sets = load_subsets(config.data, config.train_size, config.val_size, config.subset_seed,
                        cache_dir=config.cache_dir)
    meta = ckpt.new_meta(space.name, config, len(sets.classes), sets.x_train.shape[1:],
                         ckpt.fingerprint(sets))
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} is a file; the supernet needs a directory")
    directory.mkdir(parents=True, exist_ok=True)
    checkpoint = ckpt.read(directory)
    existing = checkpoint.meta if checkpoint else ckpt.read_meta(directory)
    if existing is None:
        ckpt.write_meta(directory, meta)
    else:
        keys = [k for k in meta if k not in ("epochs_done",)]
        ckpt.check_matches(existing, {k: meta[k] for k in keys}, directory,
                           "the supernet training")
        meta = existing
    return space, sets, meta, checkpoint


SHALLOW_DIR = "shallow"  # in the supernet's directory: the one-cell-a-stage supernet it grew from


def shallow_config(config):
    """The settings of the supernet a ``shallow_epochs`` training grows from: one cell a stage,
    ``shallow_epochs`` at ``shallow_learning_rate``, the rest as ``config``."""
    return config.replace(cells_per_stage=1, epochs=config.shallow_epochs,
                          learning_rate=config.shallow_learning_rate, shallow_epochs=0)


def train_supernet(space_name: str, config, directory, verbose: int = 1):
    """Train (or resume) a supernet of ``space_name`` in ``directory``; return the SuperNet.

    See ``nasplay.scorers.oneshot.supernet.train_supernet``. Raises ``proxy.TrainingDiverged`` on a
    NaN loss.
    """
    import keras

    config.check()
    space, sets, meta, checkpoint = _prepare(space_name, config, directory)
    keras.utils.set_random_seed(config.seed)
    supernet = ckpt.new_supernet(space, num_classes=len(sets.classes), filters=config.filters,
                                 cells_per_stage=config.cells_per_stage,
                                 input_shape=sets.x_train.shape[1:], affine_ops=config.affine_ops,
                                 loose_mean=config.loose_mean)
    optimizer = engine().MaskedSGD(supernet.trainable_variables, config.momentum,
                                   config.weight_decay)
    sampler = (ControllerSampler if config.sampler == "controller" else UniformSampler)(
        space, config.seed)
    if checkpoint is not None:
        ckpt.restore(supernet, checkpoint, directory)
        optimizer.load_slots(checkpoint.slots)
        sampler.load(checkpoint.controller_state)
    elif config.shallow_epochs:
        supernet.grow_from(train_supernet(space_name, shallow_config(config),
                                          Path(directory) / SHALLOW_DIR, verbose))
    steps = _Steps(supernet, optimizer, sampler, sets, config, verbose)
    for epoch in range(meta["epochs_done"], config.epochs):
        start = time.perf_counter()
        loss, accuracy = steps.epoch(epoch)
        seconds = time.perf_counter() - start
        meta = {**meta, "epochs_done": epoch + 1,
                "train_seconds": meta.get("train_seconds", 0.0) + seconds,
                "history": [*meta.get("history", []),
                            {"epoch": epoch + 1, "loss": loss, "accuracy": accuracy,
                             "backend": keras.backend.backend(), "seconds": seconds}]}
        ckpt.save(directory, supernet, optimizer.slot_arrays(), meta, sampler.state())
    return supernet


class _Steps:
    """One epoch of training steps over the seeded batch plan, with a progress bar."""

    def __init__(self, supernet, optimizer, sampler, sets, config, verbose):
        from nasplay.data.pipeline import BatchPlan

        self.supernet, self.optimizer, self.sampler = supernet, optimizer, sampler
        self.sets, self.config, self.verbose = sets, config, verbose
        self.plan = BatchPlan(len(sets.x_train), config.batch_size, seed=config.seed)
        self.reward_batch = min(config.batch_size, len(sets.x_val))
        steps = engine()
        self.train_step, self.reward_step = steps.compile_steps(
            supernet, optimizer, config.batch_size, self.reward_batch)
        self.first_step_note = steps.FIRST_STEP_NOTE  # printed before the first step only

    def epoch(self, epoch: int) -> tuple[float, float]:
        """Train one epoch; return its mean loss and training accuracy."""
        import keras

        from nasplay.data.pipeline import normalize
        from nasplay.scorers.proxy.training import TrainingDiverged

        config, sets = self.config, self.sets
        order, _ = self.plan.epoch(epoch)
        steps = len(order)
        val_order = np.random.default_rng([config.seed, epoch, 2]).permutation(len(sets.x_val))
        self.sampler.begin_epoch(epoch)
        if self.verbose:
            print(f"supernet epoch {epoch + 1}/{config.epochs}", flush=True)
            if self.first_step_note:
                print(self.first_step_note, flush=True)
        self.first_step_note = None
        bar = keras.utils.Progbar(steps, verbose=self.verbose)
        losses, accuracies = [], []
        for step, idx in enumerate(order):
            self.optimizer.learning_rate.assign(
                _cosine(config.learning_rate, epoch * steps + step, config.epochs * steps))
            arch, token = self.sampler.next()
            loss, accuracy = self.train_step(normalize(sets.x_train[idx]),
                                             sets.y_train[idx].astype(np.int32), arch)
            loss, accuracy = float(loss), float(accuracy)
            if not math.isfinite(loss):
                raise TrainingDiverged(f"supernet training diverged: the loss became {loss} in "
                                       f"epoch {epoch + 1}; lower the learning rate")
            if self.sampler.needs_reward:
                self.sampler.tell(token, self._reward(val_order, step, arch))
            losses.append(loss)
            accuracies.append(accuracy)
            bar.update(step + 1, [("loss", loss), ("accuracy", accuracy)])
        return float(np.mean(losses)), float(np.mean(accuracies))

    def _reward(self, val_order, step, arch) -> float:
        from nasplay.data.pipeline import normalize

        b = self.reward_batch
        start = (step * b) % len(val_order)
        idx = np.take(val_order, np.arange(start, start + b), mode="wrap")
        return float(self.reward_step(normalize(self.sets.x_val[idx]),
                                      self.sets.y_val[idx].astype(np.int32), arch))

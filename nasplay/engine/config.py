"""The configuration of one search: ``nasplay search`` flags, a ``--config`` JSON file, or Python.

``config.json`` in a run directory is this dataclass as JSON, every default filled in by the
plan (``nasplay.engine.plan``), so that ``nasplay search --config DIR/config.json --run-dir NEW``
repeats the run. This module only holds and checks values: it imports neither TensorFlow nor
Ray, and knows nothing of which scorers exist (``nasplay.scorers`` does).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from nasplay.errors import UserError, check_int, check_number
from search_space.files import atomic_write_text

SCHEDULERS = ("fifo", "asha")


def searcher_names() -> tuple[str, ...]:
    """The searchers ``--searcher`` accepts: the keys of ``searchers.SEARCHERS``."""
    from searchers import SEARCHERS

    return tuple(SEARCHERS)


@dataclass
class SearchConfig:
    """One search, as ``nasplay search`` flags, a ``--config`` JSON file or Python.

    The first group defines the experiment: a resumed run must agree with its ``config.json`` on
    every one of them (``EXPERIMENT_FIELDS``). The second says where and how it runs, and may
    change between a run and its resume (more workers, another cluster, a larger budget).
    """

    # --- the experiment ---
    searcher: str = "evolution"      # random | controller | evolution (searchers.make_searcher)
    space: str = "nasnet"            # a registered search space: nasnet, amoebanet, article, ...
    trials: int = 100                # candidates to evaluate, completed + failed (resume: up to it)
    seed: int = 0                    # seeds the searcher and the proxy (its images, weights, order)
    # more make_searcher arguments, e.g. {"population_size": 20, "sample_size": 5}
    searcher_options: dict = field(default_factory=dict)
    # proxy | zero-cost | oneshot | nb201 (the nb201 space's table) | "package.module:function"
    # (fn(genotype, TrialContext) -> metrics)
    scorer: str = "proxy"
    metric: str | None = None        # the score maximized; None: val_accuracy, naswot (zero-cost)
    data: str | None = None          # cifar10, a folder of CIFAR python batches or of images
    subset: int | None = None        # training images per candidate; None: the proxy's default
    epochs: int | None = None        # training epochs per candidate; None: the proxy's default
    filters: int | None = None       # first-stage width of a candidate; None: the scorer's default
    cells_per_stage: int | None = None  # normal cells between reductions; None: scorer's default
    # more scorer settings: ProxyConfig fields (val_size, batch_size, learning_rate, ...),
    # ZeroCostConfig fields, or a custom scorer's own; a run's config.json holds all of them
    scorer_options: dict = field(default_factory=dict)
    scheduler: str = "fifo"          # fifo: train every candidate fully; asha: stop weak ones early
    # --- the one-shot scorer's (--scorer oneshot) ---
    supernet_epochs: int | None = None  # supernet training epochs; None: the scorer's default
    sampler: str | None = None       # uniform (SPOS) | controller (ENAS); None: uniform
    supernet: str | None = None      # a trained supernet to reuse instead of training one
    finetune_steps: int | None = None  # SGD steps on each candidate's path before scoring it
    warm_start: str | None = None    # a run directory whose completed trials seed the searcher
    rerank_top: int = 0              # re-score the best K after the search (0: none) ...
    rerank_scorer: str = "proxy"     # ... with this scorer: the standalone proxy by default,
    rerank_metric: str | None = None  # ... by this metric of it (None: the re-scorer's own),
    rerank_options: dict = field(default_factory=dict)  # ... with these settings of it
    #                                  (as scorer_options: ProxyConfig fields for the proxy)
    # --- where and how it runs ---
    run_dir: str = "runs/search"     # the run directory (see the module docstring)
    workers: int = 1                 # trials evaluated at once
    cpus_per_trial: float | None = None  # None: the cluster's CPUs / workers (at least 1)
    gpus_per_trial: float = 0.0      # GPUs per trial; 0.5 packs two candidates on each GPU
    mixed_precision: bool | None = None  # 16-bit compute; None: on for GPU trials, off on CPUs
    backend: str = "tensorflow"      # the Keras backend trials run on: tensorflow | jax | torch
    address: str | None = None       # a Ray cluster to join: "auto", HOST:PORT; None: start one
    num_cpus: int | None = None      # CPUs a local Ray may use; None: all of this machine's
    max_failures: int = 1            # retries of a trial whose worker or node died (FailureConfig)
    time_budget_s: float | None = None  # stop after this many seconds (resumable); None: no limit

    # ------------------------------------------------------------------ JSON

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> SearchConfig:
        """A config from a JSON object; unknown keys are refused by name (typos must not be
        silently ignored, or a user would run the experiment they did not ask for)."""
        if not isinstance(data, dict):
            raise UserError(f"{source}: expected a JSON object of search settings, "
                            f"got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise UserError(f"{source}: unknown setting(s) {', '.join(unknown)}; "
                            f"known: {', '.join(known)}")
        return cls(**data)

    @classmethod
    def load(cls, path) -> SearchConfig:
        """Read a ``--config`` file or a run's ``config.json``."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise UserError(f"cannot read config file {path}: {e.strerror or e}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}: not valid JSON (line {e.lineno} column {e.colno}: "
                            f"{e.msg})") from None
        return cls.from_dict(data, source=str(path))

    def save(self, path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    # ------------------------------------------------------------------ checks

    def check(self) -> None:
        """Raise ``UserError`` naming the first bad setting; runs before anything is written."""
        if self.searcher not in searcher_names():
            raise UserError(f"unknown searcher {self.searcher!r}; choose one of "
                            f"{', '.join(searcher_names())}")
        check_int("trials", self.trials, minimum=1)
        check_int("seed", self.seed, minimum=0)
        check_int("workers", self.workers, minimum=1)
        check_int("max_failures", self.max_failures, minimum=0)
        check_int("rerank_top", self.rerank_top, minimum=0)
        for name in ("subset", "epochs", "filters", "num_cpus", "supernet_epochs"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=1)
        for name in ("cells_per_stage", "finetune_steps"):
            if getattr(self, name) is not None:
                check_int(name, getattr(self, name), minimum=0)
        if self.cpus_per_trial is not None:
            check_number("cpus_per_trial", self.cpus_per_trial, positive=True)
        check_number("gpus_per_trial", self.gpus_per_trial, positive=False)
        if self.gpus_per_trial > 1 and self.gpus_per_trial != int(self.gpus_per_trial):
            raise UserError(f"gpus_per_trial above 1 must be a whole number of GPUs, "
                            f"got {self.gpus_per_trial}")
        if self.time_budget_s is not None:
            check_number("time_budget_s", self.time_budget_s, positive=True)
        if self.scheduler not in SCHEDULERS:
            raise UserError(f"unknown scheduler {self.scheduler!r}; choose one of "
                            f"{', '.join(SCHEDULERS)}")
        if not isinstance(self.scorer, str) or not self.scorer.strip():
            raise UserError("scorer: give a scorer name (proxy, zero-cost, ...) or "
                            "'package.module:function'")
        if not isinstance(self.rerank_scorer, str) or not self.rerank_scorer.strip():
            raise UserError("rerank_scorer: give a scorer name (proxy, zero-cost, ...)")
        if self.rerank_top > self.trials:
            raise UserError(f"--rerank-top {self.rerank_top} is more than the {self.trials} "
                            f"trials: re-score at most --trials candidates")
        for name in ("searcher_options", "scorer_options", "rerank_options"):
            if not isinstance(getattr(self, name), dict):
                raise UserError(f"{name} must be a JSON object (a dict), "
                                f"got {getattr(self, name)!r}")
        if not isinstance(self.run_dir, str) or not self.run_dir.strip():
            raise UserError("run_dir: give the run directory with --run-dir DIR")
        if self.warm_start is not None and (not isinstance(self.warm_start, str)
                                            or not self.warm_start.strip()):
            raise UserError(f"warm_start must be a run directory, got {self.warm_start!r}")
        if self.address is not None and (not isinstance(self.address, str)
                                         or not self.address.strip()):
            raise UserError(f"address must be 'auto' or HOST:PORT, got {self.address!r}")


# The settings that make two runs the same experiment (see SearchConfig's first group).
EXPERIMENT_FIELDS = ("searcher", "space", "seed", "searcher_options", "scorer", "metric", "data",
                     "subset", "epochs", "filters", "cells_per_stage", "scorer_options",
                     "scheduler", "warm_start", "supernet_epochs", "sampler", "supernet",
                     "finetune_steps", "backend")
# (rerank_top may change on resume: a finished run can be re-ranked deeper.)

"""The configuration of one search: ``nasplay search`` flags, a ``--config`` JSON file, or Python.

``config.json`` in a run directory is this dataclass as JSON, every default filled in by the
plan (``nasplay.engine.plan``), so that ``nasplay search --config DIR/config.json --run-dir NEW``
repeats the run. This module only holds and checks values: it imports neither TensorFlow nor
Ray, and leaves each scorer's settings to the scorer (``nasplay.scorers``: its options and
settings class), reading the registry only for config files of the older layout.
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
    # the scorer's settings by field name: ProxyConfig's (train_size, epochs, filters, val_size,
    # ...), ZeroCostConfig's, or a custom scorer's own; a run's config.json holds all of them
    scorer_options: dict = field(default_factory=dict)
    # the scorer's settings by the flag names it declares ({"subset": 5000} is --subset 5000);
    # the plan moves them into scorer_options (a flag wins), so config.json holds none
    scorer_flags: dict = field(default_factory=dict)
    scheduler: str = "fifo"          # fifo: train every candidate fully; asha: stop weak ones early
    warm_start: str | None = None    # a run directory whose completed trials seed the searcher
    rerank_top: int = 0              # re-score the best K after the search (0: none) ...
    rerank_scorer: str = "proxy"     # ... with this scorer: the standalone proxy by default,
    rerank_metric: str | None = None  # ... by this metric of it (None: the re-scorer's own),
    rerank_options: dict = field(default_factory=dict)  # ... with these settings of it
    #                                  (as scorer_options: ProxyConfig fields for the proxy)
    # the run's best: the highest rank average of these recorded metrics (two or more, e.g.
    # ["val_accuracy", "params"]) over the trials that have them all; empty: the rule above
    best_by: list = field(default_factory=list)
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
        data = _legacy_flags(data, known)
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
        if self.num_cpus is not None:
            check_int("num_cpus", self.num_cpus, minimum=1)
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
        check_best_by(self.best_by)
        for name in ("searcher_options", "scorer_options", "scorer_flags", "rerank_options"):
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


def check_best_by(metrics) -> None:
    """``best_by`` names two or more distinct metrics (a rank average of one is that metric)."""
    usage = ("give two or more distinct metric names, comma-separated (e.g. "
             "--best-by val_accuracy,params): the run's best is their highest rank average")
    if not isinstance(metrics, (list, tuple)) or not all(
            isinstance(m, str) and m.strip() for m in metrics):
        raise UserError(f"best_by {metrics!r}: {usage}")
    if metrics and (len(metrics) < 2 or len(set(metrics)) != len(metrics)):
        raise UserError(f"--best-by {','.join(metrics)}: {usage}")


# The settings that make two runs the same experiment (see SearchConfig's first group).
EXPERIMENT_FIELDS = ("searcher", "space", "seed", "searcher_options", "scorer", "metric", "data",
                     "scorer_options", "scheduler", "warm_start", "backend")
# (rerank_top may change on resume: a finished run can be re-ranked deeper.)


def _legacy_flags(data: dict, known: list[str]) -> dict:
    """Config files from before scorers owned their settings hold a scorer's flags at the top
    level (``"subset": 2000``); they read as ``scorer_flags``, so such a run resumes as it was."""
    from nasplay.scorers import option_flags

    flags = option_flags()
    legacy = {k: v for k, v in data.items() if k not in known and k in flags}
    if not legacy:
        return data
    rest = {k: v for k, v in data.items() if k not in legacy}
    given = {k: v for k, v in legacy.items() if v is not None}
    return {**rest, "scorer_flags": {**given, **rest.get("scorer_flags", {})}}

"""The run directory a search writes, and the configuration that repeats it.

A run directory is the contract between ``nasplay search`` and everything after it (``inspect``,
``export``, a resumed search, the user's own scripts)::

    DIR/config.json           the SearchConfig: everything needed to run the search again
    DIR/trials.jsonl          one JSON object per finished trial, in finishing order
    DIR/best_genotype.json    the best completed trial's genotype (Genotype.to_json)
    DIR/searcher_state.json   the searcher's state_dict and its pending proposals
    DIR/ray/                  Ray Tune's own experiment folders (``tensorboard --logdir DIR/ray``)

Durability rules, so that a search killed at any instant (``kill -9``, a lost machine) loses at
most the trials that were running:

- ``trials.jsonl`` is only ever appended to: one ``write`` of a whole line, then ``flush`` and
  ``fsync``, before anything else learns of the trial. Existing lines are never rewritten; the
  only repair is cutting off a torn last line (a write interrupted mid-line), which no reader
  counts as a trial (``nasplay.rundir`` leaves it out too).
- every other file is replaced atomically (a temporary file in the same folder, ``fsync``,
  ``os.replace``, as Ray's ``Searcher.save_to_dir`` does): a reader sees the old or the new
  version, never half of one.
- the searcher state is written after its trial lines, so on resume a trial is either recorded
  or still pending (and is run again), never lost in between.

This module imports neither TensorFlow nor Ray: the CLI reads configs before starting either.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from nasplay.errors import UserError

CONFIG_FILE = "config.json"
TRIALS_FILE = "trials.jsonl"
BEST_FILE = "best_genotype.json"
STATE_FILE = "searcher_state.json"
RAY_DIR = "ray"

SEARCHERS = ("random", "controller", "evolution")
SCHEDULERS = ("fifo", "asha")
BUILTIN_SCORERS = ("proxy", "zero-cost")
# The metric each built-in scorer reports (higher is better); a custom scorer defaults to the first.
SCORER_METRICS = {"proxy": "val_accuracy", "zero-cost": "naswot"}
STATE_FORMAT = 1


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
    # proxy | zero-cost | "package.module:function" (fn(genotype, TrialContext) -> metrics)
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
    # --- where and how it runs ---
    run_dir: str = "runs/search"     # the run directory (see the module docstring)
    workers: int = 1                 # trials evaluated at once
    cpus_per_trial: float | None = None  # None: the cluster's CPUs / workers (at least 1)
    gpus_per_trial: float = 0.0      # GPUs per trial; 0.5 packs two candidates on each GPU
    mixed_precision: bool | None = None  # float16 compute; None: on for GPU trials, off on CPUs
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

    @property
    def score_metric(self) -> str:
        """The metric trials are ranked and searched by."""
        return self.metric or SCORER_METRICS.get(self.scorer, "val_accuracy")

    def check(self) -> None:
        """Raise ``UserError`` naming the first bad setting; runs before anything is written."""
        if self.searcher not in SEARCHERS:
            raise UserError(f"unknown searcher {self.searcher!r}; choose one of "
                            f"{', '.join(SEARCHERS)}")
        _check_int("trials", self.trials, minimum=1)
        _check_int("seed", self.seed, minimum=0)
        _check_int("workers", self.workers, minimum=1)
        _check_int("max_failures", self.max_failures, minimum=0)
        for name in ("subset", "epochs", "filters", "num_cpus"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), minimum=1)
        if self.cells_per_stage is not None:
            _check_int("cells_per_stage", self.cells_per_stage, minimum=0)
        if self.cpus_per_trial is not None:
            _check_number("cpus_per_trial", self.cpus_per_trial, positive=True)
        _check_number("gpus_per_trial", self.gpus_per_trial, positive=False)
        if self.gpus_per_trial > 1 and self.gpus_per_trial != int(self.gpus_per_trial):
            raise UserError(f"gpus_per_trial above 1 must be a whole number of GPUs, "
                            f"got {self.gpus_per_trial}")
        if self.time_budget_s is not None:
            _check_number("time_budget_s", self.time_budget_s, positive=True)
        if self.scheduler not in SCHEDULERS:
            raise UserError(f"unknown scheduler {self.scheduler!r}; choose one of "
                            f"{', '.join(SCHEDULERS)}")
        if self.scorer not in BUILTIN_SCORERS and ":" not in str(self.scorer):
            raise UserError(f"unknown scorer {self.scorer!r}; choose one of "
                            f"{', '.join(BUILTIN_SCORERS)}, or give a function as "
                            f"'package.module:function'")
        for name in ("searcher_options", "scorer_options"):
            if not isinstance(getattr(self, name), dict):
                raise UserError(f"{name} must be a JSON object (a dict), "
                                f"got {getattr(self, name)!r}")
        if not isinstance(self.run_dir, str) or not self.run_dir.strip():
            raise UserError("run_dir: give the run directory with --run-dir DIR")
        if self.address is not None and (not isinstance(self.address, str)
                                         or not self.address.strip()):
            raise UserError(f"address must be 'auto' or HOST:PORT, got {self.address!r}")


# The settings that make two runs the same experiment (see SearchConfig's first group).
EXPERIMENT_FIELDS = ("searcher", "space", "seed", "searcher_options", "scorer", "metric", "data",
                     "subset", "epochs", "filters", "cells_per_stage", "scorer_options",
                     "scheduler")


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_number(name: str, value: Any, positive: bool) -> None:
    ok = (not isinstance(value, bool) and isinstance(value, (int, float))
          and math.isfinite(value) and (value > 0 if positive else value >= 0))
    if not ok:
        raise UserError(f"{name} must be a number {'> 0' if positive else '>= 0'}, got {value!r}")


# ---------------------------------------------------------------------- files


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_text(path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once: temp file in the same folder, fsync, rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the run's files the usual mode
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in ``folder`` survive a power cut (POSIX only)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def trial_record(trial_id: str, genotype: dict, status: str, metrics: dict | None = None,
                 error: str | None = None, step: int | None = None,
                 started_at: float | None = None, finished_at: float | None = None,
                 **extra: Any) -> dict:
    """One line of ``trials.jsonl`` (keys in a fixed order, so lines read alike)."""
    if status not in ("completed", "failed"):
        raise ValueError(f"status must be 'completed' or 'failed', got {status!r}")
    record = {"trial_id": trial_id, "status": status, "genotype": genotype,
              "metrics": dict(metrics or {})}
    if status == "failed":
        record["error"] = error or "unknown error"
    if step is not None:
        record["step"] = step
    if started_at is not None:
        record["started_at"] = started_at
    record["finished_at"] = time.time() if finished_at is None else finished_at
    record.update(extra)
    return record


def score_of(record: dict, metric: str) -> float | None:
    """A completed record's finite ``metric``, else None (failed, missing, NaN)."""
    if record.get("status") != "completed":
        return None
    value = (record.get("metrics") or {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def best_record(records: list[dict], metric: str) -> dict | None:
    """The completed record with the highest ``metric`` (the earliest of equals), or None."""
    best, best_score = None, -math.inf
    for record in records:
        score = score_of(record, metric)
        if score is not None and score > best_score:
            best, best_score = record, score
    return best


class RunDir:
    """Reads and writes one run directory; see the module docstring for the rules."""

    def __init__(self, path):
        self.path = Path(path)

    config_path = property(lambda self: self.path / CONFIG_FILE)
    trials_path = property(lambda self: self.path / TRIALS_FILE)
    best_path = property(lambda self: self.path / BEST_FILE)
    state_path = property(lambda self: self.path / STATE_FILE)
    ray_path = property(lambda self: self.path / RAY_DIR)

    def is_empty(self) -> bool:
        """True if the folder does not exist or holds nothing."""
        return not self.path.exists() or (self.path.is_dir() and not any(self.path.iterdir()))

    def create(self, config: SearchConfig) -> None:
        """Make the folder and write ``config.json`` (the run's first file)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_config(config)

    def write_config(self, config: SearchConfig) -> None:
        config.save(self.config_path)

    def load_config(self) -> SearchConfig:
        return SearchConfig.load(self.config_path)

    # -------------------------------------------------------------- trials

    def read_trials(self, repair: bool = False) -> list[dict]:
        """Every complete record, in file order.

        A last line without its newline is a write that was cut short (the writer ends every
        record with one): with ``repair`` it is cut off the file, so that the next append starts
        on a fresh line; complete lines are never touched. A complete line that is not a JSON
        object means the file was edited by hand: that is an error, not something to guess at.
        """
        if not self.trials_path.exists():
            return []
        data = self.trials_path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data) and repair:
            with open(self.trials_path, "r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
        records = []
        for number, line in enumerate(data[:end].splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                record = None
            if not isinstance(record, dict) or "trial_id" not in record:
                raise UserError(f"{self.trials_path}: line {number} is not a trial record; "
                                f"fix or remove that line to resume")
            records.append(record)
        return records

    def append_trial(self, record: dict) -> None:
        """Append one record as one line, flushed and fsynced before returning."""
        line = (json.dumps(record, allow_nan=True) + "\n").encode("utf-8")
        new = not self.trials_path.exists()
        with open(self.trials_path, "ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        if new:
            _fsync_dir(self.path)

    def write_best(self, genotype_json: str) -> None:
        atomic_write_text(self.best_path, genotype_json.rstrip("\n") + "\n")

    # -------------------------------------------------------------- searcher state

    def save_state(self, searcher_state: dict, pending_steps: dict[str, int]) -> None:
        """The searcher's ``state_dict`` and the proposal order of its pending trials."""
        payload = {"format": STATE_FORMAT, "saved_at": time.time(),
                   "searcher_state": searcher_state, "pending_steps": pending_steps}
        atomic_write_text(self.state_path, json.dumps(payload) + "\n")

    def load_state(self) -> tuple[dict, dict[str, int]] | None:
        """``(searcher_state, pending_steps)``, or None if the run has no state file yet."""
        if not self.state_path.exists():
            return None
        try:
            payload = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"cannot read {self.state_path}: {e}") from None
        if not isinstance(payload, dict) or payload.get("format") != STATE_FORMAT:
            raise UserError(f"{self.state_path} is not a searcher state this nasplay can read "
                            f"(format {payload.get('format') if isinstance(payload, dict) else '?'}"
                            f", expected {STATE_FORMAT})")
        return payload["searcher_state"], {k: int(v) for k, v in payload["pending_steps"].items()}

"""The run directory: the contract between ``nasplay search`` and everything after it.

``inspect``, ``export``, ``train --like``, a resumed search and the user's own scripts read it::

    DIR/config.json           the SearchConfig, every default filled in (repeats the run)
    DIR/trials.jsonl          one JSON object per finished trial, in finishing order
    DIR/best_genotype.json    the best completed trial's genotype (Genotype.to_json); where the
                              run re-scored its best (--rerank-top), the best re-scored one by
                              the re-scoring metric (``records.run_best``)
    DIR/searcher_state.json   the searcher's state_dict and its pending proposals
    DIR/export/               ``nasplay export DIR`` without --out: TRIAL.keras, TRIAL.genotype.json
    DIR/ray/                  Ray Tune's own experiment folders (``tensorboard --logdir DIR/ray``)
    DIR/.lock                 held (flock) by the one search writing the run (``RunLock``)

Durability rules, so that a search killed at any instant (``kill -9``, a lost machine) loses at
most the trials that were running:

- ``trials.jsonl`` is only ever appended to: one ``write`` of whole lines (a trial's, or a batch
  trial's, one per candidate), then ``flush`` and ``fsync``, before anything else learns of the
  trials. Existing lines are never rewritten; the only repair is cutting off a torn last line
  (a write interrupted mid-line), which no reader counts as a trial.
- every other file is replaced atomically (``search_space.files.atomic_write_text``): a reader
  sees the old or the new version, never half of one.
- the searcher state is written after its trial lines, so on resume a trial is either recorded
  or still pending (and is run again), never lost in between.

Readers (``inspect``, ``export``) never open anything for writing, so they are safe on a search
that is still going: a writer may be half-way through the last line, which is left out.
This module imports neither TensorFlow nor Ray.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from nasplay.errors import UserError, plural
from nasplay.runs.records import merge_rescore, ranked
from search_space.files import atomic_write_text, fsync_dir

if TYPE_CHECKING:                   # the search's settings, the layer above, write config.json
    from nasplay.engine.config import SearchConfig

CONFIG_FILE = "config.json"
TRIALS_FILE = "trials.jsonl"
BEST_FILE = "best_genotype.json"
STATE_FILE = "searcher_state.json"
RAY_DIR = "ray"
LOCK_FILE = ".lock"
STATE_FORMAT = 1
DEFAULT_METRIC = "val_accuracy"


# ---------------------------------------------------------------------- trials.jsonl


@dataclass
class TrialLog:
    """What ``trials.jsonl`` held when it was read."""

    trials: list[dict]                 # the records, in file (= finishing) order
    partial_tail: bool = False         # the last line was incomplete: a writer is probably mid-line
    bad_lines: list[int] = field(default_factory=list)  # 1-based numbers of unreadable full lines
    complete_bytes: int = 0            # bytes up to the end of the last complete line


def parse_trials(data: bytes) -> TrialLog:
    """The one parser of ``trials.jsonl``: complete lines that are JSON objects with a
    ``trial_id`` are records; a last line without its newline is a write in progress (or torn by
    a crash) and is reported as ``partial_tail``, never counted. A re-scoring line (a cheap
    rung's best trial scored again by the next, ``records.rescore_record``) is merged into its
    trial's record, so every reader sees one record per trial with both scores."""
    end = data.rfind(b"\n") + 1
    log = TrialLog([], partial_tail=bool(data[end:].strip()), complete_bytes=end)
    by_id: dict[str, dict] = {}
    for number, line in enumerate(data[:end].split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            record = None
        if not isinstance(record, dict) or "trial_id" not in record:
            log.bad_lines.append(number)
        elif "rescore" in record and "status" not in record:
            if record["trial_id"] in by_id:
                merge_rescore(by_id[record["trial_id"]], record)
            else:
                log.bad_lines.append(number)
        else:
            by_id[record["trial_id"]] = record
            log.trials.append(record)
    return log


def load_trials(run_dir) -> TrialLog:
    """``trials.jsonl`` as ``inspect`` reads it: unreadable lines are skipped and reported in
    ``bad_lines`` (the caller decides whether to warn); a missing file is an empty log."""
    path = Path(run_dir) / TRIALS_FILE
    if not path.is_file():
        return TrialLog([])
    try:
        return parse_trials(path.read_bytes())
    except OSError as e:
        raise UserError(f"cannot read {path}: {e}") from None


def read_trials(run_dir) -> list[dict]:
    """The finished trials' records, in the order they finished (see ``load_trials``)."""
    return load_trials(run_dir).trials


# ---------------------------------------------------------------------- reading a run


def is_run_dir(path) -> bool:
    """A directory holding ``config.json`` or ``trials.jsonl`` (a run that has not finished a
    trial yet has only its config)."""
    path = Path(path)
    return path.is_dir() and ((path / CONFIG_FILE).is_file() or (path / TRIALS_FILE).is_file())


def check_run_dir(path) -> Path:
    """``path`` as a Path if it is a run directory, else a UserError saying what is missing."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist; pass the --run-dir of a nasplay search")
    if not path.is_dir():
        raise UserError(f"{path} is not a directory; pass the --run-dir of a nasplay search")
    if not is_run_dir(path):
        raise UserError(f"{path} is not a run directory (it has no {CONFIG_FILE} or "
                        f"{TRIALS_FILE}); pass the --run-dir of a nasplay search")
    return path


def read_config(run_dir) -> dict:
    """``config.json`` as a dict; ``{}`` when the run has none (a bare trials.jsonl is readable)."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"cannot read {path}: {e}") from None
    if not isinstance(config, dict):
        raise UserError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config


def run_metric(config: dict, override: str | None = None) -> str:
    """The metric that ranks trials: ``override``, else the run's ``config["metric"]`` (every
    search writes it), else its scorer's (``naswot`` for zero-cost), else ``val_accuracy``."""
    if override:
        return override
    metric = config.get("metric")
    if isinstance(metric, str) and metric:
        return metric
    from nasplay.scorers import default_metric

    return default_metric(config.get("scorer"))


def best_by(config: dict) -> tuple:
    """The run's ``--best-by`` metrics, whose rank average picked its best (none where its
    config has no valid list)."""
    metrics = config.get("best_by")
    ok = isinstance(metrics, list) and all(isinstance(m, str) for m in metrics)
    return tuple(metrics) if ok else ()


def require_scored(run_dir, trials: list[dict], metric: str = DEFAULT_METRIC) -> list[dict]:
    """``ranked(trials)``, or a UserError for a run with no trials or with no usable one."""
    if not trials:
        raise UserError(f"run {run_dir} has no finished trials yet ({TRIALS_FILE} is missing or "
                        f"empty); wait for the first trial to finish")
    best_first = ranked(trials, metric)
    if best_first:
        return best_first
    failed = [t for t in trials if t.get("status") == "failed"]
    if len(failed) == len(trials):
        every = "all " if len(trials) > 1 else ""
        raise UserError(f"{every}{plural(len(trials), 'trial')} of run {run_dir} failed; first "
                        f"error: {error_summary(failed[0])}")
    raise UserError(f"no completed trial of run {run_dir} has a numeric {metric!r} metric; "
                    f"choose another with --metric")


def error_summary(record: dict, limit: int = 200) -> str:
    """One line of a failed trial's ``error``: a traceback's last line (the exception), else
    the first line."""
    lines = [line.strip() for line in str(record.get("error") or "no error recorded").splitlines()
             if line.strip()] or ["no error recorded"]
    line = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    return line[:limit]


def find_trial(run_dir, trials: list[dict], trial_id: str) -> dict:
    """The record with this ``trial_id`` (the last one, should a resumed run write it twice)."""
    matches = [t for t in trials if str(t.get("trial_id")) == trial_id]
    if not matches:
        known = [str(t.get("trial_id")) for t in trials]
        shown = ", ".join(known[:5]) + (f", ... ({len(known)} in all)" if len(known) > 5 else "")
        raise UserError(f"run {run_dir} has no trial {trial_id!r}; its trials are: {shown}")
    return matches[-1]


def run_label(run_dir, config: dict) -> str:
    """``"<directory name> (<searcher>)"``, the legend entry of a run in overlaid plots."""
    name = Path(run_dir).resolve().name
    searcher = searcher_name(config)
    return f"{name} ({searcher})" if searcher and searcher not in name else name


def searcher_name(config: dict) -> str | None:
    """The searcher a run used (``config["searcher"]``), or None."""
    searcher = config.get("searcher")
    return searcher if isinstance(searcher, str) and searcher else None


NETWORK_KEYS = {"filters": 2, "cells_per_stage": 0, "num_classes": 2}   # name -> smallest value


def network_settings(config: dict) -> dict:
    """The network settings (``filters``, ``cells_per_stage``, ``num_classes``) a run scored its
    candidates with: its scorer's settings (``scorer_options``, where ``nasplay search`` writes
    them; older runs held them at the top level). Only ints in range are taken; missing or null
    ones are left out."""
    found = {}
    options = config.get("scorer_options")
    options = options if isinstance(options, dict) else {}
    for key, minimum in NETWORK_KEYS.items():
        value = options.get(key, config.get(key))
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            found[key] = value
    return found


# ---------------------------------------------------------------------- writing a run


class RunDir:
    """Writes one run directory (and reads it strictly, to resume); see the module docstring."""

    def __init__(self, path):
        self.path = Path(path)

    config_path = property(lambda self: self.path / CONFIG_FILE)
    trials_path = property(lambda self: self.path / TRIALS_FILE)
    best_path = property(lambda self: self.path / BEST_FILE)
    state_path = property(lambda self: self.path / STATE_FILE)
    ray_path = property(lambda self: self.path / RAY_DIR)
    lock_path = property(lambda self: self.path / LOCK_FILE)

    def is_empty(self) -> bool:
        """True if the folder does not exist or holds nothing but a lock file."""
        if not self.path.exists():
            return True
        return self.path.is_dir() and all(p.name == LOCK_FILE for p in self.path.iterdir())

    def create(self, config: SearchConfig) -> None:
        """Make the folder and write ``config.json`` (the run's first file)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.write_config(config)

    def write_config(self, config: SearchConfig) -> None:
        config.save(self.config_path)

    def read_trials(self, repair: bool = False) -> list[dict]:
        """Every complete record, in file order, for a search to continue from.

        Unlike ``load_trials``, a complete line that is not a record is an error: the file was
        edited by hand, and a search must not guess. With ``repair`` a torn last line is cut off
        the file, so that the next append starts on a fresh line.
        """
        if not self.trials_path.exists():
            return []
        log = parse_trials(self.trials_path.read_bytes())
        if log.bad_lines:
            raise UserError(f"{self.trials_path}: line {log.bad_lines[0]} is not a trial record; "
                            f"fix or remove that line to resume")
        if log.partial_tail and repair:
            with open(self.trials_path, "r+b") as f:
                f.truncate(log.complete_bytes)
                f.flush()
                os.fsync(f.fileno())
        return log.trials

    def append_trial(self, record: dict) -> None:
        """Append one record as one line, flushed and fsynced before returning."""
        self.append_trials([record])

    def append_trials(self, records: list[dict]) -> None:
        """Append records, a line each, in one write, flushed and fsynced before returning (a
        kill mid-write leaves whole lines and at most one torn last line, which is repaired)."""
        lines = "".join(json.dumps(record, allow_nan=True) + "\n" for record in records)
        new = not self.trials_path.exists()
        with open(self.trials_path, "ab") as f:
            f.write(lines.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        if new:
            fsync_dir(self.path)

    def write_best(self, genotype_json: str) -> None:
        atomic_write_text(self.best_path, genotype_json.rstrip("\n") + "\n")

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
            found = payload.get("format") if isinstance(payload, dict) else "?"
            raise UserError(f"{self.state_path} is not a searcher state this nasplay can read "
                            f"(format {found}, expected {STATE_FORMAT})")
        return payload["searcher_state"], {k: int(v) for k, v in payload["pending_steps"].items()}

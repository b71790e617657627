"""Read a run directory (read-only): its config, its finished trials, its best trial.

A run directory is what ``nasplay search`` writes (see ``nasplay.records``): ``config.json`` and
``trials.jsonl``, one JSON object per finished trial, appended as trials finish. Everything here
only reads, so ``inspect`` and ``export`` are safe to run on a search that is still going: a
writer may be half-way through the last line, which is then left out (not an error), and nothing
is ever opened for writing.

Errors the user can fix (not a run, no trials yet, every trial failed, unknown trial id) raise
``UserError`` with a one-line message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from nasplay.errors import UserError
from nasplay.records import CONFIG_FILE, SCORER_METRICS, TRIALS_FILE, score_of

DEFAULT_METRIC = "val_accuracy"


@dataclass
class TrialLog:
    """What ``trials.jsonl`` held when it was read."""

    trials: list[dict]                 # the records, in file (= finishing) order
    partial_tail: bool = False         # the last line was incomplete: a writer is probably mid-line
    bad_lines: list[int] = field(default_factory=list)  # 1-based numbers of unreadable full lines


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


def load_trials(run_dir) -> TrialLog:
    """Every complete record of ``trials.jsonl``, tolerating a run that is still writing.

    The file is read once, in binary, and split on newlines. A last line without its newline is
    a record being written (or one torn by a crash, which a resumed search cuts off): it is
    left out and reported as ``partial_tail``, as ``nasplay.records`` counts it. A complete line
    that is not a JSON object is skipped and its number reported in ``bad_lines`` (the caller
    decides whether to warn); the searcher's own reader refuses such a file instead, but a
    report should still show what it can.
    """
    path = Path(run_dir) / TRIALS_FILE
    if not path.is_file():
        return TrialLog([])
    try:
        data = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e}") from None
    lines = data.split(b"\n")
    tail = lines.pop()              # b"" when the file ends with a newline
    log = TrialLog([])
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _parse(line)
        if record is None:
            log.bad_lines.append(number)
        else:
            log.trials.append(record)
    log.partial_tail = bool(tail.strip())
    return log


def read_trials(run_dir) -> list[dict]:
    """The finished trials' records, in the order they finished (see ``load_trials``)."""
    return load_trials(run_dir).trials


def _parse(line: bytes) -> dict | None:
    try:
        record = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def run_metric(config: dict, override: str | None = None) -> str:
    """The metric that ranks trials: ``override``, else the run's ``config["metric"]``, else
    its scorer's (``naswot`` for the zero-cost scorer), else ``val_accuracy``."""
    if override:
        return override
    metric = config.get("metric")
    if isinstance(metric, str) and metric:
        return metric
    return SCORER_METRICS.get(config.get("scorer"), DEFAULT_METRIC)


def ranked(trials: list[dict], metric: str = DEFAULT_METRIC) -> list[dict]:
    """Completed trials with a score, best first (ties keep finishing order)."""
    scored = [t for t in trials if score_of(t, metric) is not None]
    return sorted(scored, key=lambda t: -score_of(t, metric))


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
        raise UserError(f"all {len(trials)} trials of run {run_dir} failed; first error: "
                        f"{error_summary(failed[0])}")
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
    """The searcher a run used: ``config["searcher"]`` as a name, or a dict with ``name``."""
    searcher = config.get("searcher")
    if isinstance(searcher, dict):
        searcher = searcher.get("name")
    return searcher if isinstance(searcher, str) and searcher else None


# Where a run's config may keep the network settings: at top level or in one of these sections.
_NETWORK_SECTIONS = ("network", "proxy", "evaluation")
NETWORK_KEYS = {"filters": 2, "cells_per_stage": 0, "num_classes": 2}   # name -> smallest value


def network_settings(config: dict) -> dict:
    """The network settings (``filters``, ``cells_per_stage``, ``num_classes``) a run trained its
    candidates with, from its config: top-level keys first (``nasplay search`` writes them there),
    then the ``network`` / ``proxy`` / ``evaluation`` sections. Only ints in range are taken
    (``cells_per_stage`` may be 0); missing or null ones are left out."""
    found = {}
    places = [config] + [config[s] for s in _NETWORK_SECTIONS if isinstance(config.get(s), dict)]
    for key, minimum in NETWORK_KEYS.items():
        for place in places:
            value = place.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
                found[key] = value
                break
    return found

"""Trial records: one line of ``trials.jsonl`` as a dict, and how records are scored and ranked.

Pure functions on dicts, shared by the search driver (which writes records), ``inspect`` and
``export`` (which read them through ``nasplay.runs.rundir``). A record::

    {"trial_id": "evolution-00012", "status": "completed" | "failed", "genotype": {...},
     "metrics": {"val_accuracy": 0.41, "params": ..., ...}, "error": "...",  # failed only
     "step": 12, "started_at": ..., "finished_at": ...}
"""

from __future__ import annotations

import math
import time
from typing import Any

from nasplay.errors import plural
from searchers.base import clean_score


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


def rescore_record(trial_id: str, scorer: str, metric: str, status: str,
                   metrics: dict | None = None, error: str | None = None) -> dict:
    """The line that records a second score of a finished trial (``--rerank-top``): appended,
    never rewritten, and merged into the trial's record by every reader (``merge_rescore``)."""
    rescore = {"scorer": scorer, "metric": metric, "status": status,
               "metrics": dict(metrics or {})}
    if status == "failed":
        rescore["error"] = error or "unknown error"
    return {"trial_id": trial_id, "rescore": rescore, "finished_at": time.time()}


def merge_rescore(record: dict, line: dict) -> None:
    """Fold a re-scoring line into its trial's record: the whole result under ``rescore``, and
    its score beside the trial's own in ``metrics`` (one-shot runs: ``oneshot_accuracy`` and
    ``val_accuracy``)."""
    rescore = line["rescore"]
    record["rescore"] = rescore
    value = clean_score((rescore.get("metrics") or {}).get(rescore.get("metric")))
    if rescore.get("status") == "completed" and value is not None:
        record.setdefault("metrics", {})[rescore["metric"]] = value


def score_of(record: dict, metric: str) -> float | None:
    """A completed record's finite ``metric``, else None (failed, missing, NaN, not a number)."""
    if record.get("status") != "completed":
        return None
    return clean_score((record.get("metrics") or {}).get(metric))


def best_record(records: list[dict], metric: str) -> dict | None:
    """The completed record with the highest ``metric`` (the earliest of equals), or None."""
    best, best_score = None, -math.inf
    for record in records:
        score = score_of(record, metric)
        if score is not None and score > best_score:
            best, best_score = record, score
    return best


def rescored_best(records: list[dict]) -> tuple[dict, str] | None:
    """The best trial by its re-scoring metric among those re-scored (``--rerank-top``), and that
    metric; None when no re-scoring completed. A re-scoring is the costlier, truer rung, so
    where a run has one it decides the run's best (the last re-scoring's metric, should a
    resumed run have been re-scored by another scorer)."""
    rescored = [r for r in records if (r.get("rescore") or {}).get("status") == "completed"]
    if not rescored:
        return None
    metric = rescored[-1]["rescore"].get("metric")
    best = best_record([r for r in rescored if r["rescore"].get("metric") == metric], metric)
    return None if best is None else (best, metric)


def run_best(records: list[dict], metric: str) -> tuple[dict | None, str]:
    """The run's best trial and the metric that chose it: the best re-scored one by the
    re-scoring metric (``rescored_best``) where the run re-scored its best, else the best by
    the run's ``metric`` (``best_record``). ``best_genotype.json``, ``nasplay export`` and
    ``nasplay train --genotype RUN_DIR`` all take this one."""
    found = rescored_best(records)
    return found if found is not None else (best_record(records, metric), metric)


def best_lines(records: list[dict], metric: str, where) -> list[str]:
    """The search summary's lines on the run's best (``run_best``), written to ``where``: with
    a re-scoring, which metric chose it and the best by ``metric`` alone where that differs."""
    best, by = run_best(records, metric)
    if best is None:
        return []
    if by == metric:
        return [f"best: {best['trial_id']} {metric} {score_of(best, metric):.4f} -> {where}"]
    rescored = sum((r.get("rescore") or {}).get("status") == "completed"
                   and r["rescore"].get("metric") == by for r in records)
    lines = [f"best: {best['trial_id']} {by} {score_of(best, by):.4f} (the best by {by} of the "
             f"{plural(rescored, 'trial')} re-scored; its {metric} "
             f"{score_of(best, metric):.4f}) -> {where}"]
    first = best_record(records, metric)
    if first is not best:
        lines.append(f"best by {metric} alone: {first['trial_id']} "
                     f"{score_of(first, metric):.4f} ({_rescored_text(first, by)})")
    return lines


def _rescored_text(record: dict, metric: str) -> str:
    """What the re-scoring made of a trial, for the summary."""
    rescore = record.get("rescore")
    if rescore is None:
        return "not re-scored"
    if rescore.get("status") != "completed":
        return "its re-scoring failed"
    score = score_of(record, metric)
    return f"re-scored: {metric} {score:.4f}" if score is not None else "re-scored"


def ranked(records: list[dict], metric: str = "val_accuracy") -> list[dict]:
    """Completed records with a score, best first (ties keep finishing order)."""
    scored = [r for r in records if score_of(r, metric) is not None]
    return sorted(scored, key=lambda r: -score_of(r, metric))

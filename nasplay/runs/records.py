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


def average_ranks(values: list[float]) -> list[float]:
    """Each value's rank among ``values``, 1 for the lowest; equal values share the average of
    their ranks (as ``scipy.stats.rankdata``), so a tie favours neither."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start:end + 1]:
            ranks[i] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def with_scores(records: list[dict], metrics) -> list[dict]:
    """The completed records that have a finite score for every one of ``metrics``."""
    return [r for r in records if all(score_of(r, m) is not None for m in metrics)]


def rank_average_best(records: list[dict], metrics) -> dict | None:
    """``--best-by``: among the records with every one of ``metrics``, the one whose ranks
    under them add up highest (the earliest of equal sums), or None where no record has them
    all. Ranks, not values, so metrics of any scale combine (an accuracy and a parameter count);
    a rank depends on the other candidates, which is why it picks a run's best and scores no
    single candidate."""
    scored = with_scores(records, metrics)
    if not scored:
        return None
    total = [0.0] * len(scored)
    for metric in metrics:
        for i, rank in enumerate(average_ranks([score_of(r, metric) for r in scored])):
            total[i] += rank
    return scored[max(range(len(scored)), key=lambda i: (total[i], -i))]


def rank_average_label(metrics) -> str:
    return f"the rank average of {', '.join(metrics)}"


def run_best(records: list[dict], metric: str, best_by=()) -> tuple[dict | None, str]:
    """The run's best trial and what chose it: with ``best_by`` (``--best-by``, two or more
    recorded metrics), the highest rank average of them (``rank_average_best``); else the best
    re-scored one by the re-scoring metric (``rescored_best``) where the run re-scored its best,
    else the best by the run's ``metric`` (``best_record``). ``best_genotype.json``, ``nasplay
    export`` and ``nasplay train --genotype RUN_DIR`` all take this one."""
    if best_by:
        best = rank_average_best(records, best_by)
        if best is not None:
            return best, rank_average_label(best_by)
    found = rescored_best(records)
    return found if found is not None else (best_record(records, metric), metric)


def best_lines(records: list[dict], metric: str, where, best_by=()) -> list[str]:
    """The search summary's lines on the run's best (``run_best``), written to ``where``: with
    a re-scoring or ``best_by``, what chose it and the best by ``metric`` alone where that
    differs."""
    best, by = run_best(records, metric, best_by)
    if best is None:
        return []
    lines = []
    by_rank_average = bool(best_by) and by == rank_average_label(best_by)
    if best_by and not by_rank_average:
        lines.append(f"--best-by: no completed trial has all of {', '.join(best_by)}; the "
                     f"best by {by} instead (check the metric names: nasplay inspect lists a "
                     f"run's metrics)")
    if by == metric:
        return lines + [f"best: {best['trial_id']} {metric} {score_of(best, metric):.4f} -> "
                        f"{where}"]
    if by_rank_average:
        values = _scores_text(best, best_by)
        lines.append(f"best: {best['trial_id']} by {by} over the "
                     f"{plural(len(with_scores(records, best_by)), 'trial')} that have them "
                     f"({values}) -> {where}")
    else:
        rescored = sum((r.get("rescore") or {}).get("status") == "completed"
                       and r["rescore"].get("metric") == by for r in records)
        lines.append(f"best: {best['trial_id']} {by} {score_of(best, by):.4f} (the best by {by} "
                     f"of the {plural(rescored, 'trial')} re-scored; its {metric} "
                     f"{score_of(best, metric):.4f}) -> {where}")
    first = best_record(records, metric)
    if first is not best:
        about = (_scores_text(first, best_by) if by_rank_average
                 else _rescored_text(first, by))
        lines.append(f"best by {metric} alone: {first['trial_id']} "
                     f"{score_of(first, metric):.4f} ({about})")
    return lines


def _scores_text(record: dict, metrics) -> str:
    return ", ".join(f"{m} {score_of(record, m):.4f}" if score_of(record, m) is not None
                     else f"no {m}" for m in metrics)


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

"""``--best-by M1,M2``: the run's best is the highest rank average of recorded metrics.

Short training favours small networks that learn fast, so a run may want its best to weigh the
first rung's accuracy with, say, the parameter count. The rank average decides
``best_genotype.json``, the search's summary, ``inspect``'s note and ``export``'s default trial;
the searcher still learns from the run's own metric. Bad lists are one line, exit 2, nothing
written.
"""

from __future__ import annotations

import pytest

from nasplay.report.export import pick_trial
from nasplay.runs.records import (average_ranks, best_lines, rank_average_best, run_best,
                                  trial_record)


def _records(rows) -> list[dict]:
    """Completed trials t0, t1, ... with these (val_accuracy, params); None leaves one out."""
    records = []
    for k, (accuracy, params) in enumerate(rows):
        metrics = {"val_accuracy": accuracy}
        if params is not None:
            metrics["params"] = params
        records.append(trial_record(f"t{k}", {}, "completed", metrics, step=k))
    return records


def test_equal_values_share_their_average_rank():
    assert average_ranks([3.0, 1.0, 3.0, 2.0]) == [3.5, 1.0, 3.5, 2.0]
    assert average_ranks([5.0, 5.0, 5.0]) == [2.0, 2.0, 2.0]
    assert average_ranks([]) == []


def test_the_best_is_the_highest_sum_of_ranks_over_the_trials_with_every_metric():
    # ranks by accuracy 4, 3, 2, 1 (t4 has no params and is left out), by params 1, 4, 3, 2
    records = _records([(0.50, 10), (0.46, 90), (0.44, 60), (0.40, 30), (0.99, None)])
    best = rank_average_best(records, ("val_accuracy", "params"))
    assert best["trial_id"] == "t1"                # 3 + 4 = 7, t0's 4 + 1 = 5
    assert run_best(records, "val_accuracy", ("val_accuracy", "params")) == \
        (best, "the rank average of val_accuracy, params")
    # without --best-by the rule is the run's metric, the params-less t4 included
    assert run_best(records, "val_accuracy")[0]["trial_id"] == "t4"
    # equal sums go to the earlier trial, as the run's metric breaks ties
    tied = _records([(0.5, 10), (0.4, 20)])
    assert rank_average_best(tied, ("val_accuracy", "params"))["trial_id"] == "t0"
    failed = [trial_record("t9", {}, "failed", error="boom")]
    assert rank_average_best(failed, ("val_accuracy", "params")) is None


def test_the_summary_says_what_picked_the_best_and_when_no_trial_has_the_metrics():
    records = _records([(0.50, 10), (0.46, 90), (0.40, 30)])
    lines = best_lines(records, "val_accuracy", "RUN/best_genotype.json",
                       ("val_accuracy", "params"))
    assert lines[0].startswith("best: t1 by the rank average of val_accuracy, params over the "
                               "3 trials that have them (val_accuracy 0.4600, params 90")
    assert lines[0].endswith("-> RUN/best_genotype.json")
    assert lines[1].startswith("best by val_accuracy alone: t0 0.5000 (val_accuracy 0.5000, "
                               "params 10")
    # a misspelt metric: the usual rule picks, and the summary says so first
    lines = best_lines(records, "val_accuracy", "X", ("val_accuracy", "parmas"))
    assert lines[0].startswith("--best-by: no completed trial has all of val_accuracy, parmas")
    assert lines[1] == "best: t0 val_accuracy 0.5000 -> X"


def test_export_takes_the_rank_average_pick_unless_a_trial_or_metric_is_chosen(tmp_path):
    records = _records([(0.50, 10), (0.46, 90), (0.40, 30)])
    by = ("val_accuracy", "params")
    assert pick_trial(tmp_path, records, None, "val_accuracy", rescored=True,
                      best_by=by)["trial_id"] == "t1"
    assert pick_trial(tmp_path, records, None, "val_accuracy", rescored=False,
                      best_by=by)["trial_id"] == "t0"       # --metric given: by it alone
    assert pick_trial(tmp_path, records, "t2", "val_accuracy", rescored=True,
                      best_by=by)["trial_id"] == "t2"


@pytest.mark.parametrize("value, message", [
    ("val_accuracy", "--best-by val_accuracy: give two or more distinct metric names"),
    ("val_accuracy,val_accuracy", "give two or more distinct metric names"),
    ("val_accuracy,", "give two or more distinct metric names"),
])
def test_a_bad_list_is_one_line_and_writes_nothing(tmp_path, refused, value, message):
    run_dir = tmp_path / "run"
    refused(message, "--run-dir", run_dir, "--space", "nb201", "--scorer", "nb201",
            "--searcher", "random", "--trials", 4, "--best-by", value)
    assert not run_dir.exists()


def test_a_config_file_list_is_checked_alike(tmp_path, refused):
    config = tmp_path / "c.json"
    config.write_text('{"best_by": "val_accuracy,params"}')
    refused("best_by 'val_accuracy,params': give two or more distinct metric names",
            "--run-dir", tmp_path / "run", "--space", "nb201", "--scorer", "nb201",
            "--searcher", "random", "--trials", 4, "--config", config)
    assert not (tmp_path / "run").exists()

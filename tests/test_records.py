"""The run directory writer (append-only trial lines, atomic files), trial records, and configs
that refuse typos."""

import json
import os

import pytest

from nasplay.engine.config import SearchConfig
from nasplay.errors import UserError
from nasplay.runs.records import best_record, score_of, trial_record
from nasplay.runs.rundir import RunDir, load_trials

GENOTYPE = {"space": "nasnet", "normal": [{"inputs": [0, 1], "ops": ["identity", "conv_3x3"],
                                           "combine": "add"}],
            "reduction": [{"inputs": [0, 1], "ops": ["identity", "conv_3x3"], "combine": "add"}]}


def test_config_round_trips_through_json(tmp_path):
    config = SearchConfig(searcher="random", trials=7, searcher_options={"population_size": 4},
                          gpus_per_trial=0.5, run_dir=str(tmp_path / "run"))
    config.save(tmp_path / "c.json")
    assert SearchConfig.load(tmp_path / "c.json") == config


def test_config_refuses_unknown_settings(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"searcher": "random", "trails": 5}))
    with pytest.raises(UserError, match="unknown setting.*trails"):
        SearchConfig.load(tmp_path / "c.json")


@pytest.mark.parametrize("field, value, message", [
    ("trials", 0, "trials must be an integer >= 1"),
    ("searcher", "bayes", "unknown searcher 'bayes'"),
    ("gpus_per_trial", -1, "gpus_per_trial must be a number >= 0"),
    ("gpus_per_trial", 1.5, "whole number of GPUs"),
    ("scheduler", "pbt", "unknown scheduler"),
    ("scorer", "", "scorer: give a scorer name"),
])
def test_config_check_names_the_bad_setting(field, value, message):
    with pytest.raises(UserError, match=message):
        SearchConfig(**{field: value}).check()


def test_appended_lines_are_never_rewritten(tmp_path):
    run = RunDir(tmp_path)
    run.append_trial(trial_record("t-0", GENOTYPE, "completed", {"val_accuracy": 0.5}))
    first = run.trials_path.read_bytes()
    run.append_trial(trial_record("t-1", GENOTYPE, "failed", error="boom"))
    assert run.trials_path.read_bytes().startswith(first)
    assert [r["status"] for r in run.read_trials()] == ["completed", "failed"]
    assert run.read_trials()[1]["error"] == "boom"


def test_a_torn_last_line_is_cut_off_on_repair_only(tmp_path):
    run = RunDir(tmp_path)
    run.append_trial(trial_record("t-0", GENOTYPE, "completed", {"val_accuracy": 0.5}))
    whole = run.trials_path.read_bytes()
    with open(run.trials_path, "ab") as f:
        f.write(b'{"trial_id": "t-1", "sta')  # a write cut short by kill -9
    assert len(run.read_trials()) == 1
    assert run.trials_path.read_bytes() != whole          # reading alone changes nothing
    assert len(run.read_trials(repair=True)) == 1
    assert run.trials_path.read_bytes() == whole          # repair cuts exactly the torn part


def test_a_mangled_complete_line_is_an_error_not_a_guess(tmp_path):
    run = RunDir(tmp_path)
    run.trials_path.write_text('{"trial_id": "t-0"}\nnot json\n')
    with pytest.raises(UserError, match="line 2"):
        run.read_trials()


def test_atomic_files_leave_no_temporaries(tmp_path):
    run = RunDir(tmp_path)
    run.save_state({"searcher": "random"}, {"random-00001": 1})
    run.save_state({"searcher": "random", "step": 2}, {})
    assert run.load_state() == ({"searcher": "random", "step": 2}, {})
    run.write_best('{"space": "nasnet"}')
    assert sorted(os.listdir(tmp_path)) == ["best_genotype.json", "searcher_state.json"]


def test_best_record_is_the_highest_completed_score_first_of_equals():
    records = [trial_record("a", GENOTYPE, "completed", {"val_accuracy": 0.4}),
               trial_record("b", GENOTYPE, "failed", error="x"),
               trial_record("c", GENOTYPE, "completed", {"val_accuracy": 0.6}),
               trial_record("d", GENOTYPE, "completed", {"val_accuracy": 0.6}),
               trial_record("e", GENOTYPE, "completed", {"val_accuracy": float("nan")})]
    assert best_record(records, "val_accuracy")["trial_id"] == "c"
    assert best_record(records[:2], "naswot") is None


def test_the_search_and_inspect_read_trials_with_one_parser(tmp_path):
    # the strict reader (a search resuming) and the tolerant one (inspect) agree on every
    # complete record and both leave a torn last line out
    run = RunDir(tmp_path)
    for i in range(3):
        run.append_trial(trial_record(f"t-{i}", GENOTYPE, "completed", {"val_accuracy": i}))
    with open(run.trials_path, "ab") as f:
        f.write(b'{"trial_id": "t-3"')
    log = load_trials(tmp_path)
    assert log.partial_tail and log.bad_lines == []
    assert log.trials == run.read_trials()
    assert [r["trial_id"] for r in log.trials] == ["t-0", "t-1", "t-2"]


def test_a_score_is_a_finite_number_of_a_completed_record():
    def score(metrics, status="completed"):
        return score_of({"status": status, "metrics": metrics}, "val_accuracy")

    assert score({"val_accuracy": 0.5}) == 0.5
    assert score({"val_accuracy": 1}) == 1.0
    for bad in (float("nan"), float("inf"), "0.5", True, None):
        assert score({"val_accuracy": bad}) is None
    assert score({"val_accuracy": 0.5}, status="failed") is None


def test_the_user_error_boundary():
    import numpy as np

    from nasplay.errors import is_user_error
    from search_space import Genotype

    def raised(fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001
            return e
        raise AssertionError("did not raise")

    assert is_user_error(UserError("bad --trials"))
    assert is_user_error(raised(lambda: Genotype.from_dict({"space": "nasnet"})))  # our check
    assert not is_user_error(raised(lambda: np.zeros(2).reshape(3)))            # numpy's
    assert not is_user_error(raised(lambda: int("x")))                          # a bug
    assert not is_user_error(KeyError("genotype"))


def test_a_rescoring_line_is_merged_into_its_trial_by_every_reader(tmp_path):
    from nasplay.runs.records import rescore_record

    run = RunDir(tmp_path)
    run.append_trial(trial_record("t-0", GENOTYPE, "completed", {"oneshot_accuracy": 0.3}))
    run.append_trial(trial_record("t-1", GENOTYPE, "completed", {"oneshot_accuracy": 0.4}))
    run.append_trial(rescore_record("t-1", "proxy", "val_accuracy", "completed",
                                    {"val_accuracy": 0.45, "params": 9}))
    run.append_trial(rescore_record("t-0", "proxy", "val_accuracy", "failed", error="OOM"))
    for records in (run.read_trials(), load_trials(tmp_path).trials):
        assert [r["trial_id"] for r in records] == ["t-0", "t-1"]
        assert records[1]["metrics"] == {"oneshot_accuracy": 0.4, "val_accuracy": 0.45}
        assert records[1]["rescore"]["metrics"]["params"] == 9
        assert records[0]["metrics"] == {"oneshot_accuracy": 0.3}
        assert records[0]["rescore"]["error"] == "OOM"
    assert score_of(run.read_trials()[1], "val_accuracy") == 0.45

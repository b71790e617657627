"""The driver without Ray: a plain loop as its executor, trial events called directly.

What Ray adds (workers, the Tune searcher, cancellation) is tested in test_search.py; here the
driver's own job: one line per trial, the best genotype, the searcher state after every event,
and a resume that re-issues what was pending.
"""

from __future__ import annotations

import io

import pytest

from nasplay.engine.config import SearchConfig
from nasplay.engine.driver import Cluster, Driver
from nasplay.engine.plan import make_plan
from nasplay.engine.progress import Progress
from nasplay.runs.records import trial_record
from nasplay.runs.rundir import RunDir
from search_space import Genotype

CLUSTER = Cluster(cpus=2, gpus=0, nodes=1, owned=True)


def config(run_dir, **changes) -> SearchConfig:
    settings = dict(searcher="random", space="nasnet", trials=5, run_dir=str(run_dir),
                    scorer="zero-cost")
    return SearchConfig(**{**settings, **changes})


def fake_score(genotype: Genotype) -> float:
    return int(genotype.hash()[:8], 16) / 0xFFFFFFFF


def loop(fail_steps=(), stop_after=None):
    """An executor that scores each proposal at once with ``fake_score``."""
    def execute(driver, settings, cpus, num_samples):
        for _ in range(num_samples if stop_after is None else stop_after):
            reissued = driver.pending_proposals()
            if reissued:
                trial_id, genotype, step = reissued[0]
            else:
                proposal = driver.searcher.ask()
                if proposal is None:
                    return "exhausted"
                trial_id, genotype = proposal.trial_id, proposal.genotype.to_dict()
                step = driver.searcher.num_proposed - 1
                driver.on_proposed(trial_id, step)
            trial = {"trial_id": trial_id, "genotype": genotype, "step": step}
            if step in fail_steps:
                driver.searcher.tell(trial_id, None)
                driver.on_finished(trial, {"failed": 1, "error": "ValueError: boom",
                                           "traceback": "Traceback ..."}, None)
                continue
            score = fake_score(Genotype.from_dict(genotype))
            driver.searcher.tell(trial_id, score)
            driver.on_finished(trial, {settings.metric: score, "final": 1}, None)
        return "done"

    return execute


def test_every_trial_is_one_line_and_the_best_genotype_follows(tmp_path, capsys):
    result = Driver(make_plan(config(tmp_path / "run")), CLUSTER).run(loop(fail_steps={1}))
    run = RunDir(tmp_path / "run")
    records = run.read_trials()
    assert result.stopped == "finished" and len(records) == 5
    assert [r["status"] for r in records] == ["completed", "failed", "completed", "completed",
                                              "completed"]
    assert records[1]["error"] == "ValueError: boom" and records[1]["traceback"]
    best = max(records[:1] + records[2:], key=lambda r: r["metrics"]["naswot"])
    assert Genotype.from_json(run.best_path.read_text()) == Genotype.from_dict(best["genotype"])
    state, pending = run.load_state()
    assert state["pending"] == [] and pending == {}
    assert "5 of 5 trials recorded (4 completed, 1 failed)" in capsys.readouterr().out


def test_a_result_stopped_by_the_scheduler_is_marked_stopped_early(tmp_path):
    driver = Driver(make_plan(config(tmp_path / "run")), CLUSTER)
    driver.open_run()
    proposal = driver.searcher.ask()
    driver.on_proposed(proposal.trial_id, 0)
    driver.searcher.tell(proposal.trial_id, 0.1)
    trial = {"trial_id": proposal.trial_id, "genotype": proposal.genotype.to_dict(), "step": 0}
    driver.on_finished(trial, {"naswot": 0.1, "final": 0}, None)
    driver.on_finished(trial, {"naswot": 0.2, "final": 1}, None)  # a second end: ignored
    (record,) = RunDir(tmp_path / "run").read_trials()
    assert record["metrics"] == {"naswot": 0.1, "stopped_early": True}


def test_a_lost_trial_is_recorded_with_its_error(tmp_path):
    driver = Driver(make_plan(config(tmp_path / "run")), CLUSTER)
    driver.open_run()
    proposal = driver.searcher.ask()
    driver.searcher.tell(proposal.trial_id, None)
    trial = {"trial_id": proposal.trial_id, "genotype": proposal.genotype.to_dict(), "step": 0}
    driver.on_finished(trial, {}, "RayActorError: the worker died", node_ip="10.0.0.2")
    (record,) = RunDir(tmp_path / "run").read_trials()
    assert record["status"] == "failed" and record["error"].startswith("RayActorError")
    assert record["node_ip"] == "10.0.0.2"


def test_resume_reissues_the_pending_proposal_before_new_ones(tmp_path):
    first = Driver(make_plan(config(tmp_path / "run")), CLUSTER)
    first.run(loop(stop_after=2))
    pending = first.searcher.ask()              # proposed, then the driver "died"
    first.on_proposed(pending.trial_id, 2)

    plan = make_plan(config(tmp_path / "run"), resume=True, explicit=set())
    assert plan.remaining == 3
    result = Driver(plan, CLUSTER).run(loop())
    ids = [r["trial_id"] for r in result.records]
    assert ids == [f"random-{i:05d}" for i in range(5)]
    assert result.records[2]["genotype"] == pending.genotype.to_dict()


def test_a_trial_recorded_just_before_a_kill_is_not_run_again(tmp_path):
    first = Driver(make_plan(config(tmp_path / "run")), CLUSTER)
    first.open_run()
    proposal = first.searcher.ask()
    first.on_proposed(proposal.trial_id, 0)
    # the line is written, the process dies before the state is saved again
    first.run_dir.append_trial(trial_record(proposal.trial_id, proposal.genotype.to_dict(),
                                            "completed", {"naswot": 0.5}, step=0))
    plan = make_plan(config(tmp_path / "run"), resume=True, explicit=set())
    driver = Driver(plan, CLUSTER)
    driver.open_run()
    assert driver.searcher.pending == () and driver.searcher.num_completed == 1


def test_a_cluster_too_small_for_one_trial_is_refused():
    with pytest.raises(Exception, match="--cpus-per-trial 4 is more than the cluster has"):
        CLUSTER.check_fits(4, 0)
    assert CLUSTER.trials_that_fit(1, 0) == 2


def test_progress_line_is_compact():
    records = [trial_record("r-0", {}, "completed", {"val_accuracy": 0.25}),
               trial_record("r-1", {}, "failed", error="boom")]
    progress = Progress(target=10, metric="val_accuracy", records=records)
    progress.running = 2
    line = progress.status()
    assert line.startswith("[2/10] 1 failed, 2 running | best val_accuracy 0.2500 | elapsed")
    assert "ETA" in line and "\n" not in line


def test_progress_writes_whole_lines_only_when_not_a_terminal():
    stream = io.StringIO()
    records = []
    progress = Progress(target=2, metric="val_accuracy", records=records, stream=stream)
    progress.tick(1)
    record = trial_record("r-0", {}, "completed", {"val_accuracy": 0.5})
    records.append(record)
    progress.trial_done(record)
    progress.close()
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    assert text.startswith("r-0 val_accuracy 0.5000  [1/2]") and text.endswith("\n")


@pytest.mark.parametrize("error_text, expected", [
    ("Failure # 1 (occurred at 2026-11-27)\nTraceback (most recent call last):\n  File \"x\"\n"
     "ray.exceptions.RayTaskError(ValueError): ray::ImplicitFunc.train()\nValueError: boom\n",
     "ValueError: boom"),
    ("Failure # 1\nThe actor died unexpectedly before finishing this task.\n\tpid: 1\n"
     "The actor is dead because its worker process has died. Worker exit detail: code 2. "
     "Some common causes include: (1) the OOM killer",
     "The actor died unexpectedly before finishing this task. The actor is dead because its "
     "worker process has died. Worker exit detail: code 2."),
])
def test_a_lost_trial_gets_one_line_of_rays_error_file(tmp_path, error_text, expected):
    pytest.importorskip("ray")
    from nasplay.engine.tune_backend import error_message

    (tmp_path / "error.txt").write_text(error_text)
    trial = type("Trial", (), {"error_file": str(tmp_path / "error.txt")})()
    assert error_message(trial) == expected


def test_a_search_whose_trials_all_fail_exits_1_naming_the_most_common_error(tmp_path, capsys):
    result = Driver(make_plan(config(tmp_path / "run", trials=3)), CLUSTER).run(
        loop(fail_steps={0, 1, 2}))
    assert result.all_failed and result.exit_code == 1
    out = capsys.readouterr().out
    assert "every trial failed; the most common error (3 of 3): ValueError: boom" in out


def test_a_warm_start_seeds_evolutions_population_from_another_run(tmp_path, capsys):
    other = Driver(make_plan(config(tmp_path / "other", trials=6)), CLUSTER)
    other.run(loop())
    plan = make_plan(config(tmp_path / "run", searcher="evolution", trials=30,
                            searcher_options={"population_size": 6, "sample_size": 2},
                            warm_start=str(tmp_path / "other")))
    assert len(plan.warm_start) == 6
    driver = Driver(plan, CLUSTER)
    driver.open_run()
    population = {genotype.hash() for _, genotype, _ in driver.searcher.population}
    seeded = {Genotype.from_dict(r["genotype"]).hash() for r in other.records}
    assert population == seeded                 # full population: the next ask mutates
    assert "warm start from" in capsys.readouterr().out
    assert SearchConfig.load(tmp_path / "run" / "config.json").warm_start == str(
        tmp_path / "other")


# -- --rerank-top: the re-scoring phase --------------------------------------------------------

class Terminal(io.StringIO):
    """A stream that says it is a terminal: the status line is redrawn in place on it."""

    def isatty(self) -> bool:
        return True


def rescoring(scores: dict | None = None, fail: tuple = ()):
    """A rescore executor: each trial's second score at once (``scores[trial_id]``, default
    ``fake_score``), ticking the progress line first as Ray's callback does."""
    def rescore(driver, settings, cpus, trials):
        for trial in trials:
            driver.progress.tick(1)
            if trial["trial_id"] in fail:
                driver.on_rescored(trial, {"failed": 1, "error": "OOM"}, None)
                continue
            score = (scores or {}).get(trial["trial_id"],
                                     fake_score(Genotype.from_dict(trial["genotype"])))
            driver.on_rescored(trial, {settings.metric: score, "final": 1}, None)

    return rescore


def rerank_plan(run_dir, trials=6, top=2):
    return make_plan(config(run_dir, trials=trials, rerank_top=top,
                            rerank_scorer="runner_fakes:score"))


def test_rescoring_ends_the_search_line_and_shows_its_own(tmp_path, monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    monkeypatch.setattr(Progress, "REDRAW_S", 0.0)
    Driver(rerank_plan(tmp_path / "run"), CLUSTER).run(loop(), rescore=rescoring())
    text = terminal.getvalue()
    lines = [line.split("\r")[-1] for line in text.split("\n")]
    # the announcement starts a line of its own, after the search's last status line
    assert any(line.startswith("nasplay search: re-scoring the best 2") for line in lines), text
    assert "snasplay search" not in text
    # one line per re-scored trial, counted by the re-scoring's own line, not the search's
    rescored = [line for line in lines if "(re-scored; naswot" in line]
    assert len(rescored) == 2
    assert "re-scoring [1/2]" in rescored[0] and "re-scoring [2/2]" in rescored[1]
    assert "best val_accuracy" in rescored[0]
    assert text.endswith("\n")


def test_progress_close_ends_the_status_line_on_a_terminal():
    terminal = Terminal()
    progress = Progress(target=3, metric="val_accuracy", records=[], stream=terminal)
    progress.REDRAW_S = 0.0
    progress.tick(1)
    progress.close()
    assert terminal.getvalue().endswith("ETA ?\n")


def test_after_rescoring_the_run_s_best_is_the_best_rescored_one(tmp_path, capsys):
    # one-shot's 0.378 vs 0.411: the second best by the cheap score is the best re-scored, and
    # best_genotype.json (what nasplay train --genotype RUN_DIR trains) names it
    from nasplay.cli.train_settings import resolve_genotype

    def rescore(driver, settings, cpus, trials):
        ids = [t["trial_id"] for t in trials]
        rescoring({ids[0]: 0.378, ids[1]: 0.411})(driver, settings, cpus, trials)

    result = Driver(rerank_plan(tmp_path / "run"), CLUSTER).run(loop(), rescore=rescore)
    records = RunDir(tmp_path / "run").read_trials()
    by_naswot = sorted(records, key=lambda r: -r["metrics"]["naswot"])
    winner = by_naswot[1]
    assert winner["metrics"]["val_accuracy"] == 0.411
    best_file = Genotype.from_json(RunDir(tmp_path / "run").best_path.read_text())
    assert best_file == Genotype.from_dict(winner["genotype"])
    assert resolve_genotype(str(tmp_path / "run")) == best_file
    assert result.best["trial_id"] == winner["trial_id"]
    out = capsys.readouterr().out
    assert (f"best: {winner['trial_id']} val_accuracy 0.4110 (the best by val_accuracy of the "
            f"2 trials re-scored; its naswot") in out
    assert f"best by naswot alone: {by_naswot[0]['trial_id']}" in out
    # a resume that adds trials keeps the re-scored best as the run's best
    plan = make_plan(config(tmp_path / "run", trials=9, rerank_top=2,
                            rerank_scorer="runner_fakes:score"), resume=True)
    Driver(plan, CLUSTER).run(loop())
    assert Genotype.from_json(RunDir(tmp_path / "run").best_path.read_text()) == best_file


def test_a_rescoring_by_the_search_metric_keeps_the_first_score(tmp_path):
    """A ladder by one metric (a short training re-ranked by a longer one, both by the loss):
    the second score is recorded as rescored_<metric> beside the trial's own, and decides."""
    plan = make_plan(config(tmp_path / "run", trials=6, rerank_top=2, rerank_metric="naswot",
                            rerank_scorer="runner_fakes:score"))

    def rescore(driver, settings, cpus, trials):
        assert settings.metric == "naswot"
        ids = [t["trial_id"] for t in trials]
        rescoring({ids[0]: -1.0, ids[1]: 2.0})(driver, settings, cpus, trials)

    Driver(plan, CLUSTER).run(loop(), rescore=rescore)
    records = RunDir(tmp_path / "run").read_trials()
    by_naswot = sorted(records, key=lambda r: -r["metrics"]["naswot"])
    assert by_naswot[0]["metrics"]["rescored_naswot"] == -1.0       # its own score kept
    assert by_naswot[0]["metrics"]["naswot"] > by_naswot[1]["metrics"]["naswot"] > 0
    assert by_naswot[1]["rescore"]["metric"] == "rescored_naswot"
    assert Genotype.from_json(RunDir(tmp_path / "run").best_path.read_text()) == \
        Genotype.from_dict(by_naswot[1]["genotype"])
    assert plan.rescoring_due(records) == []     # a resume re-scores no one else


def test_a_rescoring_metric_the_trials_report_too_keeps_their_own(tmp_path):
    """The proxy reports neg_val_loss on every trial; re-ranked by a longer proxy's
    neg_val_loss, the trial's own value stays and the second is rescored_neg_val_loss."""
    plan = make_plan(config(tmp_path / "run", trials=6, rerank_top=2, rerank_metric="units",
                            rerank_scorer="runner_fakes:score"))

    def rescore(driver, settings, cpus, trials):
        for k, trial in enumerate(trials):
            driver.on_rescored(trial, {"units": 1000 + k, "final": 1}, None)

    def with_units(driver, settings, cpus, num_samples):   # the trials report units too
        finished = driver.on_finished
        driver.on_finished = lambda trial, metrics, error, **extra: finished(
            trial, {**metrics, "units": 7}, error, **extra)
        return loop()(driver, settings, cpus, num_samples)

    Driver(plan, CLUSTER).run(with_units, rescore=rescore)
    records = RunDir(tmp_path / "run").read_trials()
    rescored = [r for r in records if "rescore" in r]
    assert len(rescored) == 2
    for record in rescored:
        assert record["rescore"]["metric"] == "rescored_units"
        assert record["metrics"]["rescored_units"] >= 1000 > record["metrics"]["units"]


def test_a_failed_rescoring_leaves_the_best_to_the_others(tmp_path):
    def rescore(driver, settings, cpus, trials):
        ids = [t["trial_id"] for t in trials]
        rescoring({ids[0]: 0.5}, fail=(ids[1],))(driver, settings, cpus, trials)

    Driver(rerank_plan(tmp_path / "run"), CLUSTER).run(loop(), rescore=rescore)
    records = RunDir(tmp_path / "run").read_trials()
    first = max(records, key=lambda r: r["metrics"]["naswot"])
    assert Genotype.from_json(RunDir(tmp_path / "run").best_path.read_text()) == \
        Genotype.from_dict(first["genotype"])

"""``nasplay search`` on Ray Tune, with a fast fake scorer (tests/runner_fakes.py) in the workers.

One local Ray (4 CPUs and 2 declared GPUs on a machine without any) is shared by the module:
starting Ray takes seconds. Tests of bad input need no Ray at all: they must fail before it.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nasplay import cli
from nasplay.records import RunDir, SearchConfig, trial_record
from nasplay.runner import _Progress, config_from_args, search
from search_space import Genotype, SearchSpace, get_space, register_space

ray = pytest.importorskip("ray")

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
FAKE = "runner_fakes:score"


def fake_config(run_dir, **changes) -> SearchConfig:
    settings = dict(searcher="random", space="nasnet", trials=6, run_dir=str(run_dir),
                    scorer=FAKE, workers=2, cpus_per_trial=1)
    settings.update(changes)
    return SearchConfig(**settings)


@pytest.fixture(scope="module")
def worker_path():
    """Ray workers (and their raylets) inherit this, so they can import the fake scorer."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), str(REPO), saved) if p)
    yield
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved


@pytest.fixture(scope="module")
def ray_session(worker_path):
    """The module's Ray; the runner uses a session it finds initialized and leaves it running."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=4, num_gpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def nasplay(monkeypatch):
    """``nasplay search ...`` through the real CLI (its parser and its error handling); only the
    search subcommand is built, so the other subcommands' modules are not needed here."""
    monkeypatch.setattr(cli, "SUBCOMMANDS", {"search": cli.SUBCOMMANDS["search"]})

    def run(*argv) -> int:
        try:
            return cli.main(["search", *map(str, argv)])
        except SystemExit as exit:  # argparse's own usage errors
            return exit.code

    return run


def lines_of(run_dir) -> list[dict]:
    return RunDir(run_dir).read_trials()


def hashes(records) -> list[str]:
    return [Genotype.from_dict(r["genotype"]).hash() for r in records]


# ---------------------------------------------------------------------- a finished search


@pytest.fixture(scope="module")
def basic_run(ray_session, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("basic") / "run"
    return search(fake_config(run_dir, trials=6, scorer_options={"fail_steps": [2]}))


def test_a_search_writes_one_line_per_trial(basic_run):
    records = lines_of(basic_run.run_dir)
    assert basic_run.stopped == "finished"
    assert len(records) == 6
    assert sorted(r["step"] for r in records) == list(range(6))
    assert len(set(r["trial_id"] for r in records)) == 6
    assert len(set(hashes(records))) == 6
    for record in records:
        assert {"trial_id", "genotype", "status", "metrics", "finished_at"} <= set(record)
        if record["status"] == "completed":
            assert {"val_accuracy", "params", "flops", "train_seconds"} <= set(record["metrics"])


def test_a_failing_trial_is_recorded_failed_and_the_search_goes_on(basic_run):
    records = lines_of(basic_run.run_dir)
    failed = [r for r in records if r["status"] == "failed"]
    assert [r["step"] for r in failed] == [2]
    assert failed[0]["error"] == "ValueError: fake failure at step 2"
    assert "Traceback" in failed[0]["traceback"]
    assert sum(r["status"] == "completed" for r in records) == 5


def test_best_genotype_is_the_best_line(basic_run):
    records = lines_of(basic_run.run_dir)
    best = max((r for r in records if r["status"] == "completed"),
               key=lambda r: r["metrics"]["val_accuracy"])
    saved = Genotype.from_json((basic_run.run_dir / "best_genotype.json").read_text())
    assert saved == Genotype.from_dict(best["genotype"])
    assert basic_run.best["trial_id"] == best["trial_id"]


def test_config_json_holds_the_run_and_nothing_is_left_pending(basic_run):
    config = SearchConfig.load(basic_run.run_dir / "config.json")
    assert (config.searcher, config.trials, config.scorer) == ("random", 6, FAKE)
    assert config.metric == "val_accuracy"
    state, pending_steps = RunDir(basic_run.run_dir).load_state()
    assert state["pending"] == [] and pending_steps == {}


def test_cpu_only_trials_are_hidden_from_the_gpus_and_get_their_threads(basic_run):
    # the session declares 2 GPUs; trials asking for none must not see them
    for record in lines_of(basic_run.run_dir):
        if record["status"] == "completed":
            assert record["metrics"]["cuda_visible_devices"] == ""
            assert record["metrics"]["tf_threads"] == "1"


def test_rays_experiment_folder_is_inside_the_run_dir(basic_run):
    experiments = list((basic_run.run_dir / "ray").glob("search-*"))
    assert len(experiments) == 1
    trial_dirs = {p.name.split("_")[0] for p in experiments[0].iterdir() if p.is_dir()}
    assert trial_dirs == {r["trial_id"] for r in lines_of(basic_run.run_dir)}


def test_resume_with_more_trials_continues_the_same_run(basic_run, tmp_path, capsys, nasplay):
    run_dir = tmp_path / "run"
    shutil.copytree(basic_run.run_dir, run_dir)
    before = (run_dir / "trials.jsonl").read_bytes()
    assert nasplay("--run-dir", run_dir, "--resume", "--trials", 8) == 0
    assert (run_dir / "trials.jsonl").read_bytes().startswith(before)
    records = lines_of(run_dir)
    assert len(records) == 8 and len(set(hashes(records))) == 8
    assert sorted(r["step"] for r in records) == list(range(8))  # the searcher went on
    assert "8 of 8 trials recorded" in capsys.readouterr().out


# ---------------------------------------------------------------------- interruption and faults


def test_ctrl_c_then_resume_loses_and_repeats_no_trial(ray_session, tmp_path, nasplay):
    # Trial 3 presses Ctrl-C (SIGINT to this process) and keeps running: Ray stops the search
    # around it, as for a user's Ctrl-C. The resumed search must run it again, then the rest.
    (tmp_path / "driver_pid").write_text(str(os.getpid()))
    (tmp_path / "armed").touch()
    config = fake_config(tmp_path / "run", trials=6, workers=1,
                         scorer_options={"interrupt_steps": [3], "marker_dir": str(tmp_path)})
    first = search(config)
    assert first.stopped == "interrupted" and first.exit_code == 130
    assert [r["step"] for r in first.records] == [0, 1, 2]
    run = RunDir(config.run_dir)
    before = run.trials_path.read_bytes()
    state, _ = run.load_state()
    assert [p["trial_id"] for p in state["pending"]] == ["random-00003"]

    (tmp_path / "armed").unlink()
    assert nasplay("--run-dir", config.run_dir, "--resume") == 0
    assert run.trials_path.read_bytes().startswith(before)
    records = lines_of(config.run_dir)
    assert [r["trial_id"] for r in records] == [f"random-{i:05d}" for i in range(6)]
    assert len(set(hashes(records))) == 6
    assert all(r["status"] == "completed" for r in records)


@pytest.mark.slow
def test_a_dead_worker_is_retried_then_recorded_failed(ray_session, tmp_path):
    config = fake_config(tmp_path / "run", trials=3, max_failures=1,
                         scorer_options={"die_once_steps": [0], "die_steps": [1],
                                         "marker_dir": str(tmp_path)})
    result = search(config)
    by_step = {r["step"]: r for r in result.records}
    assert by_step[0]["status"] == "completed"  # died once, the retry succeeded
    assert by_step[1]["status"] == "failed"     # died every time: recorded, search went on
    assert "died" in by_step[1]["error"] or "Error" in by_step[1]["error"]
    assert by_step[2]["status"] == "completed"


def test_the_same_genotype_is_never_trained_twice(ray_session, tmp_path):
    # a space of 9 genotypes: asked for 12 trials, the search stops after the 9
    if "runner-tiny" not in _registered():
        register_space(SearchSpace("runner-tiny", ops=("identity",), num_blocks=1))
    result = search(fake_config(tmp_path / "run", space="runner-tiny", trials=12, workers=1))
    assert result.stopped == "exhausted"
    assert len(result.records) == 9
    assert len(set(hashes(result.records))) == 9


def _registered() -> set[str]:
    from search_space import SPACES

    return set(SPACES)


def test_asha_stops_weak_candidates_early(ray_session, tmp_path):
    config = fake_config(tmp_path / "run", trials=6, workers=1, scheduler="asha", epochs=9,
                         scorer_options={"epochs": 9})
    result = search(config)
    assert len(result.records) == 6
    stopped = [r for r in result.records if r["metrics"].get("stopped_early")]
    full = [r for r in result.records if not r["metrics"].get("stopped_early")]
    assert stopped and full
    assert all(r["metrics"]["epoch"] < 9 for r in stopped)


# ---------------------------------------------------------------------- GPUs


def test_half_a_gpu_per_trial_packs_two_trials_on_each_gpu(ray_session, tmp_path):
    # 2 declared GPUs, 0.5 each: all 4 trials must run at once (each waits at a barrier for the
    # others) and each GPU id is given to two of them.
    config = fake_config(tmp_path / "run", trials=4, workers=4, gpus_per_trial=0.5,
                         scorer_options={"barrier_n": 4, "barrier_s": 60,
                                         "marker_dir": str(tmp_path)})
    result = search(config)
    metrics = [r["metrics"] for r in result.records]
    assert [m["peers"] for m in metrics] == [4] * 4
    assert collections.Counter(m["gpu_ids"] for m in metrics) == {"0": 2, "1": 2}
    assert all(m["cuda_visible_devices"] == m["gpu_ids"] for m in metrics)


# ---------------------------------------------------------------------- bad input


@pytest.fixture
def existing_run(tmp_path):
    run = RunDir(tmp_path / "existing")
    run.create(SearchConfig(searcher="random", space="nasnet", trials=4, run_dir=str(run.path),
                            scorer=FAKE, metric="val_accuracy"))
    genotype = get_space("nasnet").sample(__import__("numpy").random.default_rng(0))
    run.append_trial(trial_record("random-00000", genotype.to_dict(), "completed",
                                  {"val_accuracy": 0.3}))
    return run.path


def snapshot(folder: Path) -> dict:
    if not folder.exists():
        return {}
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.parametrize("argv, message", [
    (["--searcher", "bayes", "--space", "nasnet", "--trials", "3"], "invalid choice: 'bayes'"),
    (["--searcher", "random", "--space", "nope", "--trials", "3"], "nope"),
    (["--searcher", "random", "--space", "nasnet", "--trials", "0"], "trials must be"),
    (["--searcher", "random", "--space", "nasnet", "--trials", "3", "--scorer", "no_such:fn"],
     "cannot import no_such"),
    (["--searcher", "random", "--space", "nasnet", "--trials", "3", "--address",
      "127.0.0.1:1"], "cannot reach a Ray cluster"),
    (["--searcher", "random", "--space", "nasnet"], "--trials required"),
    (["--resume"], "nothing to resume"),
])
def test_bad_input_exits_2_in_one_line_and_writes_nothing(tmp_path, capsys, nasplay, argv,
                                                          message):
    run_dir = tmp_path / "new"
    started = time.time()
    assert nasplay("--run-dir", run_dir, *argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert message in err
    assert not run_dir.exists()
    assert time.time() - started < 20


@pytest.mark.parametrize("argv, message", [
    (["--searcher", "random", "--space", "nasnet", "--trials", "3", "--scorer", FAKE],
     "already holds a run"),
    (["--resume", "--searcher", "evolution"], "holds another experiment (searcher is 'random'"),
    (["--resume", "--epochs", "5"], "holds another experiment (epochs"),
    (["--resume", "--address", "127.0.0.1:1"], "cannot reach a Ray cluster"),
])
def test_bad_input_leaves_an_existing_run_untouched(existing_run, capsys, nasplay, worker_path,
                                                    argv, message):
    before = snapshot(existing_run)
    assert nasplay("--run-dir", existing_run, *argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert snapshot(existing_run) == before


def test_resuming_a_finished_run_changes_nothing(existing_run, capsys, nasplay, worker_path):
    before = snapshot(existing_run)
    assert nasplay("--run-dir", existing_run, "--resume", "--trials", 1) == 0
    assert "target of 1 is reached" in capsys.readouterr().out
    assert snapshot(existing_run) == before


def test_flags_override_a_config_file(tmp_path, nasplay):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"searcher": "evolution", "space": "amoebanet", "trials": 50,
                                "run_dir": "runs/a", "searcher_options": {"population_size": 8}}))
    parser = cli.build_parser()
    args = parser.parse_args(["search", "--config", str(path), "--trials", "60",
                              "--gpus-per-trial", "0.5"])
    config, given = config_from_args(args)
    assert (config.searcher, config.space, config.trials) == ("evolution", "amoebanet", 60)
    # a population without a tournament size gets a quarter of it (the class default, 25, would not fit)
    assert config.searcher_options == {"population_size": 8, "sample_size": 2}
    assert config.gpus_per_trial == 0.5
    assert given == {"searcher", "space", "trials", "run_dir", "searcher_options",
                     "gpus_per_trial"}


@pytest.mark.parametrize("script", ["evolution_cifar10.py", "controller_cifar10.py",
                                    "random_baseline.py"])
def test_the_experiment_scripts_hold_valid_configs(script):
    import runpy

    from nasplay.runner import _check_searcher_options

    config = runpy.run_path(str(REPO / "experiments" / script), run_name="experiment")["CONFIG"]
    config.check()
    _check_searcher_options(config)


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
def test_a_lost_trial_is_recorded_with_one_line_of_its_error(tmp_path, error_text, expected):
    from nasplay._tune import error_message

    (tmp_path / "error.txt").write_text(error_text)
    trial = type("Trial", (), {"error_file": str(tmp_path / "error.txt")})()
    assert error_message(trial) == expected


def test_progress_line_is_compact():
    records = [trial_record("r-0", {}, "completed", {"val_accuracy": 0.25}),
               trial_record("r-1", {}, "failed", error="boom")]
    progress = _Progress(target=10, metric="val_accuracy", records=records)
    progress.running = 2
    line = progress.status()
    assert line.startswith("[2/10] 1 failed, 2 running | best val_accuracy 0.2500 | elapsed")
    assert "ETA" in line and "\n" not in line


# ---------------------------------------------------------------------- slow: real processes


@pytest.mark.slow
def test_kill_9_of_the_driver_then_resume(ray_session, tmp_path, nasplay):
    run_dir = tmp_path / "run"
    # `nasplay search ...` in its own process, through the CLI with only `search` built (as the
    # `nasplay` fixture does in this process)
    cli_search = ("import sys; from nasplay import cli; "
                  "cli.SUBCOMMANDS = {'search': cli.SUBCOMMANDS['search']}; "
                  "sys.exit(cli.main(sys.argv[1:]))")
    argv = [sys.executable, "-c", cli_search, "search", "--searcher", "evolution", "--space",
            "nasnet", "--trials", "8", "--run-dir", str(run_dir), "--workers", "2",
            "--cpus-per-trial", "1", "--scorer", FAKE, "--address", ray_session]
    config_file = tmp_path / "c.json"
    config_file.write_text(json.dumps({"scorer_options": {"sleep_s": 1.0},
                                       "searcher_options": {"population_size": 3,
                                                            "sample_size": 2}}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)])}
    log = tmp_path / "driver.log"
    with open(log, "wb") as out:
        driver = subprocess.Popen([*argv, "--config", str(config_file)], env=env, cwd=REPO,
                                  stdout=out, stderr=subprocess.STDOUT)
    trials = run_dir / "trials.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and driver.poll() is None and (
            not trials.exists() or trials.read_bytes().count(b"\n") < 3):
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert trials.exists(), log.read_text()[-2000:]
    before = trials.read_bytes()
    assert before.count(b"\n") >= 3
    state, _ = RunDir(run_dir).load_state()
    pending = {p["trial_id"] for p in state["pending"]}

    assert nasplay("--run-dir", run_dir, "--resume") == 0
    assert trials.read_bytes().startswith(before)
    records = lines_of(run_dir)
    assert len(records) == 8
    assert len(set(r["trial_id"] for r in records)) == 8
    assert len(set(hashes(records))) == 8
    assert pending <= {r["trial_id"] for r in records}


@pytest.mark.slow
def test_two_nodes_on_one_machine_both_run_trials(worker_path, tmp_path):
    # Runs last: it needs the module's Ray session gone, and starts a two-node cluster instead.
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        config = fake_config(tmp_path / "run", trials=2, workers=2, address=cluster.address,
                             scorer_options={"barrier_n": 2, "barrier_s": 60,
                                             "marker_dir": str(tmp_path)})
        result = search(config)
        nodes = {r["metrics"]["node_id"] for r in result.records}
        assert [r["metrics"]["peers"] for r in result.records] == [2, 2]
        assert len(nodes) == 2
    finally:
        cluster.shutdown()


def test_evolution_population_fits_the_budget_unless_given():
    import argparse

    from nasplay.runner import add_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    base = ["--searcher", "evolution", "--space", "nasnet", "--run-dir", "r"]
    small, _ = config_from_args(parser.parse_args(base + ["--trials", "20"]))
    large, _ = config_from_args(parser.parse_args(base + ["--trials", "5000"]))
    chosen, _ = config_from_args(parser.parse_args(
        base + ["--trials", "20", "--population-size", "6", "--sample-size", "3"]))
    assert small.searcher_options == {"population_size": 10, "sample_size": 2}
    assert large.searcher_options == {"population_size": 100, "sample_size": 25}
    assert chosen.searcher_options == {"population_size": 6, "sample_size": 3}
    population_only, _ = config_from_args(parser.parse_args(
        base + ["--trials", "20", "--population-size", "12"]))
    assert population_only.searcher_options == {"population_size": 12, "sample_size": 3}

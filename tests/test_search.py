"""``nasplay search`` on Ray Tune, with a fast fake scorer (tests/runner_fakes.py) in the workers.

The session's Ray (conftest ``ray_session``: 4 CPUs, 2 declared GPUs) serves these tests; the
ones that interrupt or kill a search run it in a child process that joins that Ray.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from conftest import FAKE_SCORER, REPO, nasplay_command, worker_env
from nasplay import search
from nasplay.engine.config import SearchConfig
from nasplay.runs.rundir import RunDir
from search_space import Genotype, SearchSpace

pytest.importorskip("ray")


def fake_config(run_dir, **changes) -> SearchConfig:
    settings = dict(searcher="random", space="nasnet", trials=6, run_dir=str(run_dir),
                    scorer=FAKE_SCORER, workers=2, cpus_per_trial=1)
    settings.update(changes)
    return SearchConfig(**settings)


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


def test_only_the_scorers_metrics_are_recorded_not_rays_bookkeeping(basic_run):
    completed = [r for r in lines_of(basic_run.run_dir) if r["status"] == "completed"]
    for record in completed:
        keys = set(record["metrics"])
        assert not keys & {"training_iteration", "time_total_s", "pid", "date", "done",
                           "trial_id", "config", "hostname", "node_ip", "timestamp"}
        assert "trial_seconds" in keys


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
    assert (config.searcher, config.trials, config.scorer) == ("random", 6, FAKE_SCORER)
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


def test_resume_with_more_trials_continues_the_same_run(basic_run, tmp_path, capsys,
                                                       nasplay_cli):
    run_dir = tmp_path / "run"
    shutil.copytree(basic_run.run_dir, run_dir)
    before = (run_dir / "trials.jsonl").read_bytes()
    assert nasplay_cli("--run-dir", run_dir, "--resume", "--trials", 8) == 0
    assert (run_dir / "trials.jsonl").read_bytes().startswith(before)
    records = lines_of(run_dir)
    assert len(records) == 8 and len(set(hashes(records))) == 8
    assert sorted(r["step"] for r in records) == list(range(8))  # the searcher went on
    assert "8 of 8 trials recorded" in capsys.readouterr().out


# ---------------------------------------------------------------------- interruption and faults


def _child_search(run_dir, ray_address, *argv, log=None) -> subprocess.Popen:
    """``nasplay search`` in a child process that joins the tests' Ray."""
    command = nasplay_command("search", "--run-dir", run_dir, "--scorer", FAKE_SCORER,
                              "--address", ray_address, *argv)
    return subprocess.Popen(command, env=worker_env(), cwd=REPO, stdout=log,
                            stderr=subprocess.STDOUT)


def test_ctrl_c_then_resume_loses_and_repeats_no_trial(ray_session, tmp_path, nasplay_cli):
    # Trial 3 presses Ctrl-C (SIGINT to the driver, a child process) and keeps running: Ray
    # stops the search around it, as for a user's Ctrl-C. The resumed search must run it
    # again, then the rest.
    (tmp_path / "armed").touch()
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"scorer_options": {"interrupt_steps": [3],
                                                     "marker_dir": str(tmp_path)}}))
    run_dir = tmp_path / "run"
    with open(tmp_path / "driver.log", "wb") as log:
        driver = _child_search(run_dir, ray_session, "--searcher", "random", "--space",
                               "nasnet", "--trials", 6, "--workers", 1, "--cpus-per-trial", 1,
                               "--config", config, log=log)
        (tmp_path / "driver_pid").write_text(str(driver.pid))
        assert driver.wait(timeout=300) == 130, (tmp_path / "driver.log").read_text()[-2000:]
    run = RunDir(run_dir)
    assert [r["step"] for r in lines_of(run_dir)] == [0, 1, 2]
    before = run.trials_path.read_bytes()
    state, _ = run.load_state()
    assert [p["trial_id"] for p in state["pending"]] == ["random-00003"]

    (tmp_path / "armed").unlink()
    assert nasplay_cli("--run-dir", run_dir, "--resume") == 0
    assert run.trials_path.read_bytes().startswith(before)
    records = lines_of(run_dir)
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


def test_the_same_genotype_is_never_trained_twice(ray_session, tmp_path, registries):
    # a space of 9 genotypes: asked for 12 trials, the search stops after the 9
    registries(SearchSpace("runner-tiny", ops=("identity",), num_blocks=1))
    result = search(fake_config(tmp_path / "run", space="runner-tiny", trials=12, workers=1))
    assert result.stopped == "exhausted"
    assert len(result.records) == 9
    assert len(set(hashes(result.records))) == 9


def test_asha_stops_weak_candidates_early(ray_session, tmp_path):
    config = fake_config(tmp_path / "run", trials=6, workers=1, scheduler="asha",
                         scorer_options={"epochs": 9})
    result = search(config)
    assert len(result.records) == 6
    stopped = [r for r in result.records if r["metrics"].get("stopped_early")]
    full = [r for r in result.records if not r["metrics"].get("stopped_early")]
    assert stopped and full
    assert all(r["metrics"]["epoch"] < 9 for r in stopped)


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


def test_a_trial_larger_than_the_cluster_is_refused_before_anything_is_written(
        ray_session, tmp_path, refused):
    refused("--gpus-per-trial 3 is more than the cluster has", "--run-dir", tmp_path / "run",
            "--searcher", "random", "--space", "nasnet", "--trials", 2, "--scorer", FAKE_SCORER,
            "--gpus-per-trial", 3)
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------- slow: real processes


@pytest.mark.slow
def test_kill_9_of_the_driver_then_resume(ray_session, tmp_path, nasplay_cli):
    run_dir = tmp_path / "run"
    config_file = tmp_path / "c.json"
    config_file.write_text(json.dumps({"scorer_options": {"sleep_s": 1.0},
                                       "searcher_options": {"population_size": 3,
                                                            "sample_size": 2}}))
    with open(tmp_path / "driver.log", "wb") as log:
        driver = _child_search(run_dir, ray_session, "--searcher", "evolution", "--space",
                               "nasnet", "--trials", 8, "--workers", 2, "--cpus-per-trial", 1,
                               "--config", config_file, log=log)
    trials = run_dir / "trials.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and driver.poll() is None and (
            not trials.exists() or trials.read_bytes().count(b"\n") < 3):
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert trials.exists(), (tmp_path / "driver.log").read_text()[-2000:]
    before = trials.read_bytes()
    assert before.count(b"\n") >= 3
    state, _ = RunDir(run_dir).load_state()
    pending = {p["trial_id"] for p in state["pending"]}

    assert nasplay_cli("--run-dir", run_dir, "--resume") == 0
    assert trials.read_bytes().startswith(before)
    records = lines_of(run_dir)
    assert len(records) == 8
    assert len(set(r["trial_id"] for r in records)) == 8
    assert len(set(hashes(records))) == 8
    assert pending <= {r["trial_id"] for r in records}


TWO_NODES = """
import json, sys
import ray
from ray.cluster_utils import Cluster
from nasplay import SearchConfig, search

cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
try:
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    config = SearchConfig(searcher="random", space="nasnet", trials=2, run_dir=sys.argv[1],
                          scorer="runner_fakes:score", workers=2, cpus_per_trial=1,
                          address=cluster.address,
                          scorer_options={"barrier_n": 2, "barrier_s": 60,
                                          "marker_dir": sys.argv[2]})
    result = search(config)
    print(json.dumps([r["metrics"] for r in result.records]))
finally:
    cluster.shutdown()
"""


@pytest.mark.slow
def test_two_nodes_on_one_machine_both_run_trials(tmp_path):
    # its own two-node cluster, in a child process: the tests' Ray is not touched
    done = subprocess.run([os.sys.executable, "-c", TWO_NODES, str(tmp_path / "run"),
                           str(tmp_path)], env=worker_env(), cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads(done.stdout.strip().splitlines()[-1])
    assert [m["peers"] for m in metrics] == [2, 2]
    assert len({m["node_id"] for m in metrics}) == 2


def test_a_run_directory_is_held_by_one_search_at_a_time(ray_session, tmp_path, capsys,
                                                         nasplay_cli):
    from nasplay.runs.runlock import holder

    run_dir = tmp_path / "run"
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"scorer_options": {"sleep_s": 2.0}}))
    with open(tmp_path / "driver.log", "wb") as log:
        first = _child_search(run_dir, ray_session, "--searcher", "random", "--space", "nasnet",
                              "--trials", 4, "--workers", 1, "--cpus-per-trial", 1,
                              "--config", config, log=log)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run_dir / "trials.jsonl").exists():
            time.sleep(0.1)
        assert holder(run_dir) == first.pid
        for argv in (["--resume", "--trials", 6],
                     ["--searcher", "random", "--space", "nasnet", "--trials", 2]):
            assert nasplay_cli("--run-dir", run_dir, *argv) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"in use by another search (pid {first.pid})" in err
        assert first.wait(timeout=120) == 0
    finally:
        first.kill()
    assert holder(run_dir) is None
    # the refused searches ran nothing: the first one's 4 trials, each once
    assert [r["step"] for r in lines_of(run_dir)] == [0, 1, 2, 3]


def test_kill_9_leaves_no_stale_lock(ray_session, tmp_path):
    from nasplay.runs.runlock import holder

    run_dir = tmp_path / "run"
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"scorer_options": {"sleep_s": 30.0}}))
    with open(tmp_path / "driver.log", "wb") as log:
        driver = _child_search(run_dir, ray_session, "--searcher", "random", "--space",
                               "nasnet", "--trials", 2, "--workers", 1, "--cpus-per-trial", 1,
                               "--config", config, log=log)
    deadline = time.time() + 120
    while time.time() < deadline and holder(run_dir) != driver.pid:
        time.sleep(0.1)
    assert holder(run_dir) == driver.pid
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    assert holder(run_dir) is None


def test_rerank_top_rescores_the_best_and_records_both_scores(ray_session, tmp_path,
                                                              nasplay_cli, capsys):
    # the fake's own score ranks the 6 trials; the best 2 are re-scored (here by the fake
    # again, standing in for the proxy) and keep both scores, and a resume re-scores deeper
    config = fake_config(tmp_path / "run", trials=6, metric="fake_score",
                         scorer_options={"metric_name": "fake_score"},
                         rerank_top=2, rerank_scorer=FAKE_SCORER)
    result = search(config)
    records = lines_of(tmp_path / "run")
    best = sorted(records, key=lambda r: -r["metrics"]["fake_score"])
    assert [r["trial_id"] for r in best if "rescore" in r] == [r["trial_id"] for r in best[:2]]
    for record in best[:2]:
        assert record["metrics"]["val_accuracy"] == record["rescore"]["metrics"]["val_accuracy"]
        assert record["rescore"]["scorer"] == FAKE_SCORER
    assert len(result.records) == 6
    assert nasplay_cli("--run-dir", tmp_path / "run", "--resume", "--rerank-top", 3) == 0
    records = lines_of(tmp_path / "run")
    assert len(records) == 6 and sum("rescore" in r for r in records) == 3
    assert (tmp_path / "run" / "trials.jsonl").read_text().count("\n") == 9

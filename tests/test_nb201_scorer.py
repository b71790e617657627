"""The NAS-Bench-201 table scorer (``--scorer nb201``): the fast real scorer of the nb201 space.

Its score is the table's 12-epoch validation accuracy; the test accuracy and the true rank are
recorded for reports and never reach a searcher. Its Ray trials score candidates in batches
(one trials.jsonl line each), so a search resumes exactly where it stopped. Bad input is one
line and exit status 2 before anything is written. ``nasplay inspect`` of any nb201 run shows
the table's truth. The Ray Tune and keras-tuner adapters, warm start and resume take nb201
genotypes like any other.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, nasplay_command, worker_env
from nasplay.engine.config import SearchConfig
from nasplay.engine.driver import Cluster, Driver
from nasplay.engine.plan import make_plan
from nasplay.runs.records import trial_record
from nasplay.runs.rundir import RunDir
from nasplay.scorers import get_scorer, truth_for
from nasplay.scorers.nb201 import lookup
from nasplay.scorers.nb201 import table as tables
from search_space import (NB201_OPS, EdgeGenotype, EdgeSpace, Genotype, get_space,
                          parse_arch_str)

NB201 = get_space("nb201")
TABLE = tables.table()
SHIPPED = tables.TABLE_PATH
CLUSTER = Cluster(cpus=2, gpus=0, nodes=1, owned=True)


def sample(n: int, seed: int = 0) -> list[EdgeGenotype]:
    rng = np.random.default_rng(seed)
    return [NB201.sample(rng) for _ in range(n)]


def snapshot(folder) -> dict:
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))
            if p.is_file()}


def nb201_run(path, n: int = 6, space: str = "nb201") -> RunDir:
    """A finished table run of ``n`` trials (written as the driver writes them)."""
    run = RunDir(path)
    run.create(SearchConfig(searcher="random", space=space, trials=n, run_dir=str(path),
                            scorer="nb201", metric="val_accuracy"))
    for k, genotype in enumerate(sample(n, seed=7)):
        run.append_trial(trial_record(f"random-{k:05d}", genotype.to_dict(), "completed",
                                      get_scorer("nb201").score(genotype, None), step=k))
    return run


# ---------------------------------------------------------------------- the scorer


def test_the_score_is_the_tables_validation_accuracy_and_the_rest_is_for_reports():
    scorer = get_scorer("nb201")
    assert (scorer.metric, scorer.uses_keras, scorer.trains, scorer.spaces) == (
        "val_accuracy", False, False, ("nb201",))
    assert {"test_accuracy", "nb201_rank"} <= set(scorer.report_only)
    best = TABLE.best()
    metrics = scorer.score(parse_arch_str(best.arch_str), None)
    assert metrics == {"val_accuracy": best.val_accuracy, "test_accuracy": best.test_accuracy,
                       "nb201_rank": 1, "nb201_index": best.index}
    for genotype in sample(20):
        entry = TABLE.lookup(NB201.to_arch_str(genotype))
        metrics = scorer.score(genotype, None)
        assert 0.0 < metrics["val_accuracy"] < 1.0 and metrics["nb201_rank"] == entry.rank
        assert metrics["val_accuracy"] == entry.val_accuracy


@pytest.mark.parametrize("genotype, words", [
    (get_space("nasnet").sample(np.random.default_rng(0)), "got Genotype of space 'nasnet'"),
    (EdgeGenotype(nodes=sample(1)[0].nodes, space="nb201-copy"),
     "got an edge genotype of space 'nb201-copy'"),
])
def test_a_genotype_of_another_space_is_a_one_line_error(genotype, words):
    with pytest.raises(ValueError, match=words) as caught:
        get_scorer("nb201").score(genotype, None)
    assert "\n" not in str(caught.value)


def test_a_worker_scores_a_batch_without_any_framework_and_one_failure_fails_one_candidate():
    # what a Ray worker runs for a batch trial (nasplay.engine.trial), in a fresh process
    good = sample(2)
    items = [{"trial_id": "t0", "genotype": good[0].to_dict(), "step": 0},
             {"trial_id": "t1", "genotype": get_space("nasnet").sample(
                 np.random.default_rng(1)).to_dict(), "step": 1},
             {"trial_id": "t2", "genotype": good[1].to_dict(), "step": 2}]
    code = f"""
import json, sys, time
from nasplay.engine.trial import TrialSettings, _run_batch, batch_results
settings = TrialSettings(scorer="nb201", backend="tensorflow", options={{}}, cpus=1, gpus=0,
                         mixed_precision=None, metric="val_accuracy", report_epochs=False)
report = _run_batch(json.loads({json.dumps(json.dumps(items))}), settings, time.time())
print(json.dumps({{"results": batch_results(report, 3), "size": report["batch_size"],
                  "frameworks": [m for m in ("tensorflow", "keras", "torch", "jax")
                                 if m in sys.modules]}}))
"""
    done = subprocess.run([sys.executable, "-c", code], env=worker_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["frameworks"] == [] and out["size"] == 3
    first, failed, last = out["results"]
    assert first["val_accuracy"] == lookup(good[0]).val_accuracy
    assert last["val_accuracy"] == lookup(good[1]).val_accuracy
    assert failed["failed"] == 1 and "space 'nasnet'" in failed["error"]
    assert "\n" not in failed["error"]


# ---------------------------------------------------------------------- refused before writing


NEW = ["--searcher", "evolution", "--trials", "20", "--scorer", "nb201"]


@pytest.mark.parametrize("argv, message", [
    (["--space", "amoebanet"], "the nb201 scorer scores genotypes of space(s) nb201 only, not "
                               "'amoebanet'"),
    (["--space", "nb201", "--metric", "test_accuracy"], "--metric test_accuracy: the nb201 "
                                                        "scorer records it for reports only"),
    (["--space", "nb201", "--metric", "nb201_rank"], "records it for reports only"),
    (["--space", "nb201", "--epochs", "3"], "--epochs does not apply to the nb201 scorer"),
    (["--space", "nb201", "--data", "cifar10"], "--data does not apply to the nb201 scorer"),
    (["--space", "nb201", "--scheduler", "asha"], "the nb201 scorer does not train"),
])
def test_bad_input_exits_2_in_one_line_and_writes_nothing(tmp_path, refused, argv, message):
    refused(message, "--run-dir", tmp_path / "new", *NEW, *argv)
    assert not (tmp_path / "new").exists()


def test_an_unknown_scorer_is_named_with_the_known_ones(tmp_path, refused):
    line = refused("unknown scorer 'nb-201'; choose one of", "--run-dir", tmp_path / "new",
                   "--searcher", "random", "--space", "nb201", "--trials", 3, "--scorer",
                   "nb-201")
    assert "nb201" in line
    assert not (tmp_path / "new").exists()


def test_edge_genotypes_of_another_space_are_refused(tmp_path, refused, registries):
    # an edge space like NAS-Bench-201's but with a node more: the table holds none of its cells
    registries(EdgeSpace("nb201-wide", NB201_OPS, num_nodes=5))
    refused("not 'nb201-wide'", "--run-dir", tmp_path / "new", *NEW, "--space", "nb201-wide")
    assert not (tmp_path / "new").exists()
    # nor may another space's run seed an nb201 search
    other = nb201_run(tmp_path / "wide", space="nb201-wide")
    refused("that run searched space 'nb201-wide'", "--run-dir", tmp_path / "new", *NEW,
            "--space", "nb201", "--warm-start", other.path)
    assert not (tmp_path / "new").exists()


def test_a_missing_or_damaged_table_is_refused_naming_the_file(tmp_path, refused, monkeypatch):
    missing = tmp_path / "gone" / "nb201_cifar10_12epochs.csv.gz"
    monkeypatch.setattr(tables, "TABLE_PATH", missing)
    refused(f"NAS-Bench-201 table {missing}: cannot read it", "--run-dir", tmp_path / "new",
            *NEW, "--space", "nb201")
    damaged = tmp_path / "nb201_cifar10_12epochs.csv.gz"
    data = bytearray(SHIPPED.read_bytes())
    data[1000] ^= 0xFF
    damaged.write_bytes(bytes(data))
    monkeypatch.setattr(tables, "TABLE_PATH", damaged)
    refused(f"NAS-Bench-201 table {damaged}: damaged", "--run-dir", tmp_path / "new", *NEW,
            "--space", "nb201")
    assert not (tmp_path / "new").exists()


def test_bad_input_leaves_an_existing_run_untouched(tmp_path, refused, worker_path):
    run = nb201_run(tmp_path / "run")
    before = snapshot(run.path)
    refused("not 'amoebanet'", "--run-dir", run.path, *NEW, "--space", "amoebanet")
    refused("records it for reports only", "--run-dir", run.path, "--resume", "--metric",
            "test_accuracy")
    refused("already holds a run", "--run-dir", run.path, *NEW, "--space", "nb201")
    assert snapshot(run.path) == before


# ---------------------------------------------------------------------- the driver, batched


def table_config(run_dir, **changes) -> SearchConfig:
    settings = dict(searcher="random", space="nb201", trials=60, run_dir=str(run_dir),
                    scorer="nb201")
    return SearchConfig(**{**settings, **changes})


class Killed(Exception):
    """The driver's process dies here."""


def batch_loop(kill=None, sizes=None):
    """An executor that runs the real ``RunSearcher`` without Ray's scheduler: each batch it
    suggests is scored at once as a worker would score it, told, then recorded. ``kill(driver,
    config)`` may end the run (raise ``Killed``) after a batch was suggested."""
    from nasplay.engine.trial import BATCH_KEY, batch_results
    from nasplay.engine.tune_backend import RunSearcher

    def execute(driver, settings, cpus, num_samples):
        searcher = RunSearcher(driver)
        scorer = get_scorer(settings.scorer)
        for n in range(num_samples):
            config = searcher.suggest(f"ray-{n}")
            if not isinstance(config, dict):
                return "exhausted" if searcher.exhausted else "done"
            if kill is not None:
                kill(driver, config)
            if sizes is not None:
                sizes.append(len(config[BATCH_KEY]))
            metrics = [scorer.score(Genotype.from_dict(item["genotype"]), None)
                       for item in config[BATCH_KEY]]
            result = {"final": 1, BATCH_KEY: json.dumps(metrics)}
            searcher.on_trial_complete(f"ray-{n}", result)
            driver.on_finished_batch(config, batch_results(result, len(metrics)), None)
        return "done"

    return execute


def test_a_batch_trial_records_a_line_per_candidate_and_tells_only_the_score(tmp_path):
    driver = Driver(make_plan(table_config(tmp_path / "run")), CLUSTER)
    told = []
    driver.open_run = (lambda open_run: lambda: (open_run(), _spy(driver.searcher, told)))(
        driver.open_run)
    sizes = []
    result = driver.run(batch_loop(sizes=sizes))
    records = RunDir(tmp_path / "run").read_trials()
    assert result.stopped == "finished" and len(records) == 60
    assert sizes == [3] * 20                # a 20th of the budget: the searcher learns between
    assert [r["trial_id"] for r in records] == [f"random-{k:05d}" for k in range(60)]
    assert [r["step"] for r in records] == list(range(60))
    for record in records:
        entry = lookup(record["genotype"])
        assert record["metrics"]["val_accuracy"] == entry.val_accuracy
        assert record["metrics"]["test_accuracy"] == entry.test_accuracy
    assert len(told) == 60 and all(set(m) == {"val_accuracy"} for _, m in told)
    state, pending = RunDir(tmp_path / "run").load_state()
    assert state["pending"] == [] and pending == {}


def test_a_one_candidate_trial_tells_the_searcher_its_score_and_nothing_else(tmp_path):
    from nasplay.engine.tune_backend import RunSearcher

    driver = Driver(make_plan(SearchConfig(searcher="random", space="nb201", trials=2,
                                           run_dir=str(tmp_path / "run"), scorer="zero-cost")),
                    CLUSTER)
    driver.open_run()
    told = []
    _spy(driver.searcher, told)
    searcher = RunSearcher(driver)
    config = searcher.suggest("ray-0")
    assert "batch" not in config and driver.batch_size == 1
    searcher.on_trial_complete("ray-0", {"naswot": 12.5, "test_accuracy": 0.9, "params": 7,
                                         "final": 1})
    assert told == [(config["trial_id"], {"naswot": 12.5})]


def _spy(searcher, told: list) -> None:
    tell = searcher.tell

    def spying(trial_id, score, metrics=None):
        told.append((trial_id, metrics or {}))
        return tell(trial_id, score, metrics)

    searcher.tell = spying


def test_a_kill_in_the_middle_of_a_batch_resumes_exactly(tmp_path):
    """Killed while writing the second batch's lines (3 whole and a torn one): the resumed run
    records what an uninterrupted one records, the same candidates under the same ids."""
    config = lambda name: table_config(tmp_path / name, trials=500)  # noqa: E731 - batches of 25
    whole = Driver(make_plan(config("whole")), CLUSTER).run(batch_loop())

    def kill(driver, config):
        if config["batch"][0]["step"] == 0:
            return
        items = config["batch"]
        lines = [trial_record(i["trial_id"], i["genotype"], "completed",
                              get_scorer("nb201").score(Genotype.from_dict(i["genotype"]), None),
                              step=i["step"]) for i in items[:3]]
        driver.run_dir.append_trials(lines)
        with open(driver.run_dir.trials_path, "ab") as f:
            f.write(json.dumps(lines[0]).encode()[:40])     # torn mid-line
        raise Killed

    with pytest.raises(Killed):
        Driver(make_plan(config("parts")), CLUSTER).run(batch_loop(kill))
    state, _ = RunDir(tmp_path / "parts").load_state()
    assert len(state["pending"]) == 25      # the whole second batch, persisted before it ran
    plan = make_plan(config("parts"), resume=True, explicit=set())
    assert plan.remaining == 500 - 28
    resumed = Driver(plan, CLUSTER).run(batch_loop())
    assert resumed.stopped == "finished"
    by_id = lambda records: {r["trial_id"]: (r["genotype"], r["step"], r["metrics"])  # noqa
                             for r in records}
    records = RunDir(tmp_path / "parts").read_trials()
    assert len(records) == 500 and by_id(records) == by_id(whole.records)


# ---------------------------------------------------------------------- inspect shows the truth


def test_inspect_of_an_nb201_run_shows_the_tables_truth_whatever_scored_it(tmp_path, capsys):
    from nasplay.cli import dispatch as cli

    run = RunDir(tmp_path / "run")   # scored by a (fake) training, not by the table
    run.create(SearchConfig(searcher="random", space="nb201", trials=5, run_dir=str(run.path),
                            scorer="proxy", metric="val_accuracy"))
    genotypes = sample(5, seed=3)
    for k, genotype in enumerate(genotypes):
        run.append_trial(trial_record(f"random-{k:05d}", genotype.to_dict(), "completed",
                                      {"val_accuracy": 0.1 * (k + 1)}, step=k))
    assert cli.main(["inspect", str(run.path), "--no-figures"]) == 0
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.startswith("rank"))
    assert header.split()[3:8] == ["nb201", "val", "nb201", "test", "nb201"]
    first = next(line for line in out.splitlines() if line.strip().startswith("1 "))
    entry = lookup(genotypes[4])            # the best by the run's (fake) score
    assert first.split()[1:6] == ["random-00004", "0.5000", f"{entry.val_accuracy:.4f}",
                                  f"{entry.test_accuracy:.4f}", str(entry.rank)]
    top = min((lookup(g) for g in genotypes), key=lambda e: e.rank)
    assert f"ranks {entry.rank:,} of 15,625" in out and f"ranks {top.rank:,}, test" in out
    assert truth_for("nasnet") is None and truth_for("nb201") is get_scorer("nb201")
    # re-scored (--rerank-top): the line names the run's best as best_genotype.json does
    from nasplay.runs.records import rescore_record

    for k, loss in ((4, 1.9), (1, 1.2)):
        run.append_trial(rescore_record(f"random-{k:05d}", "proxy", "neg_val_loss", "completed",
                                        {"neg_val_loss": -loss}))
    assert cli.main(["inspect", str(run.path), "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert (f"the best by neg_val_loss (random-00001) ranks {lookup(genotypes[1]).rank:,} of "
            f"15,625") in out


# ---------------------------------------------------------------------- on Ray, end to end


def search_argv(run_dir, *argv) -> list:
    return ["--run-dir", run_dir, "--space", "nb201", "--scorer", "nb201", *argv]


@pytest.fixture(scope="module")
def table_run(ray_session, tmp_path_factory):
    """An evolution search of 60 candidates on the tests' Ray, 2 workers, through the CLI."""
    from nasplay.cli import dispatch as cli

    run_dir = tmp_path_factory.mktemp("table") / "run"
    code = cli.main(["search", *map(str, search_argv(run_dir, "--searcher", "evolution",
                                                     "--trials", 60, "--workers", 2))])
    assert code == 0
    return run_dir


def test_a_table_search_runs_on_ray_in_batches(table_run):
    records = RunDir(table_run).read_trials()
    assert len(records) == 60 and sorted(r["step"] for r in records) == list(range(60))
    assert len({Genotype.from_dict(r["genotype"]).hash() for r in records}) == 60
    for record in records:
        entry = lookup(record["genotype"])
        assert record["status"] == "completed"
        assert record["metrics"]["val_accuracy"] == entry.val_accuracy
        assert record["metrics"]["nb201_rank"] == entry.rank
    (experiment,) = (table_run / "ray").glob("search-*")
    trials = [p for p in experiment.iterdir() if p.is_dir()]
    assert len(trials) == 20               # batches of 3 (a 20th of the budget), not 60 trials
    config = SearchConfig.load(table_run / "config.json")
    assert (config.scorer, config.metric, config.scorer_options) == ("nb201", "val_accuracy", {})
    best = max(records, key=lambda r: r["metrics"]["val_accuracy"])
    assert Genotype.from_json((table_run / "best_genotype.json").read_text()) == \
        Genotype.from_dict(best["genotype"])
    state, pending = RunDir(table_run).load_state()
    assert state["pending"] == [] and pending == {}


def test_resume_with_more_trials_continues_the_run(table_run, tmp_path, nasplay_cli, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(table_run, run_dir)
    before = (run_dir / "trials.jsonl").read_bytes()
    assert nasplay_cli("--run-dir", run_dir, "--resume", "--trials", 90) == 0
    assert (run_dir / "trials.jsonl").read_bytes().startswith(before)
    records = RunDir(run_dir).read_trials()
    assert sorted(r["step"] for r in records) == list(range(90))
    assert len({Genotype.from_dict(r["genotype"]).hash() for r in records}) == 90
    out = capsys.readouterr().out
    assert "90 of 90 trials recorded" in out and "TensorBoard" not in out


def _rank_average_pick(records, metrics):
    """The trial ``--best-by`` must pick, computed here on its own: each value's rank is the
    count of lower values plus the mean position among its equals; the highest sum wins, the
    earliest of equal sums."""
    def ranks(values):
        return [sum(v < x for v in values) + (sum(v == x for v in values) + 1) / 2
                for x in values]

    total = np.sum([ranks([r["metrics"][m] for r in records]) for m in metrics], axis=0)
    return records[int(np.flatnonzero(total == total.max())[0])]


# a metric with no meaning (the table's index), so that the pick surely differs from the best
# by val_accuracy alone: the mechanism under test, not a rule to use
BEST_BY = ("val_accuracy", "nb201_index")


def test_best_by_decides_the_best_of_a_new_search(tmp_path, nasplay_cli, capsys, ray_session):
    run_dir = tmp_path / "run"
    assert nasplay_cli(*search_argv(run_dir, "--searcher", "random", "--trials", 12,
                                    "--best-by", ",".join(BEST_BY))) == 0
    records = RunDir(run_dir).read_trials()
    expected = _rank_average_pick(records, BEST_BY)
    assert expected is not max(records, key=lambda r: r["metrics"]["val_accuracy"])
    assert Genotype.from_json((run_dir / "best_genotype.json").read_text()) == \
        Genotype.from_dict(expected["genotype"])
    out = capsys.readouterr().out
    assert f"best: {expected['trial_id']} by the rank average of val_accuracy, nb201_index " \
           f"over the 12 trials" in out
    assert SearchConfig.load(run_dir / "config.json").best_by == list(BEST_BY)


def test_a_resume_with_best_by_re_picks_a_finished_runs_best(table_run, tmp_path, nasplay_cli,
                                                             capsys):
    from nasplay.cli import dispatch as cli

    run_dir = tmp_path / "run"
    shutil.copytree(table_run, run_dir)
    before = (run_dir / "trials.jsonl").read_bytes()
    assert nasplay_cli("--run-dir", run_dir, "--resume", "--best-by", ",".join(BEST_BY)) == 0
    assert (run_dir / "trials.jsonl").read_bytes() == before        # nothing re-run
    expected = _rank_average_pick(RunDir(run_dir).read_trials(), BEST_BY)
    assert Genotype.from_json((run_dir / "best_genotype.json").read_text()) == \
        Genotype.from_dict(expected["genotype"])
    capsys.readouterr()
    assert cli.main(["inspect", str(run_dir), "--no-figures"]) == 0
    out = capsys.readouterr().out
    assert f"its best is {expected['trial_id']}, the best by the rank average of " \
           f"val_accuracy, nb201_index" in out
    assert f"({expected['trial_id']}) ranks {lookup(expected['genotype']).rank:,} of 15,625" in out


def test_warm_start_from_a_table_run(table_run, tmp_path, nasplay_cli, capsys):
    assert nasplay_cli(*search_argv(tmp_path / "warm", "--searcher", "evolution", "--trials",
                                    30, "--warm-start", table_run)) == 0
    assert "warm start from" in capsys.readouterr().out
    warm = RunDir(tmp_path / "warm").read_trials()
    seen = {Genotype.from_dict(r["genotype"]).hash() for r in RunDir(table_run).read_trials()}
    assert len(warm) == 30 and not seen & {Genotype.from_dict(r["genotype"]).hash()
                                           for r in warm}


def test_kill_9_mid_search_then_resume_records_what_an_uninterrupted_run_does(
        ray_session, tmp_path, nasplay_cli):
    # random search: its candidates depend on its seed alone, so a killed and resumed run
    # must record exactly the uninterrupted run's candidates, under the same ids
    trials = 1000
    assert nasplay_cli(*search_argv(tmp_path / "whole", "--searcher", "random", "--trials",
                                    trials)) == 0
    run_dir = tmp_path / "parts"
    command = nasplay_command("search", *search_argv(run_dir, "--searcher", "random",
                                                     "--trials", trials, "--workers", 1,
                                                     "--address", ray_session))
    with open(tmp_path / "driver.log", "wb") as log:
        driver = subprocess.Popen(command, env=worker_env(), cwd=REPO, stdout=log,
                                  stderr=subprocess.STDOUT)
    lines = run_dir / "trials.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and driver.poll() is None and (
            not lines.exists() or lines.read_bytes().count(b"\n") < 60):
        time.sleep(0.02)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = lines.read_bytes()
    assert 60 <= before.count(b"\n") < trials, (tmp_path / "driver.log").read_text()[-2000:]
    assert nasplay_cli("--run-dir", run_dir, "--resume") == 0
    assert lines.read_bytes().startswith(before[:before.rfind(b"\n") + 1])
    by_id = lambda run: {r["trial_id"]: (r["genotype"], r["step"],  # noqa: E731
                                         r["metrics"]["val_accuracy"])
                         for r in RunDir(run).read_trials()}
    assert by_id(run_dir) == by_id(tmp_path / "whole")
    assert len(by_id(run_dir)) == trials


# ---------------------------------------------------------------------- the adapters


def table_trainable(config):
    """Ray Tune's trainable: the table's validation accuracy of the suggested genotype."""
    from ray import tune

    from nasplay.scorers.nb201 import lookup

    tune.report({"val_accuracy": lookup(config["genotype"]).val_accuracy})


def test_a_ray_tuner_searches_nb201_with_our_searcher(ray_session, tmp_path):
    from ray import tune

    from searchers import RegularizedEvolution
    from searchers.ray_adapter import TuneSearcher

    searcher = RegularizedEvolution(NB201, population_size=4, sample_size=2, max_trials=8)
    tuner = tune.Tuner(
        table_trainable,
        tune_config=tune.TuneConfig(search_alg=TuneSearcher(searcher, metric="val_accuracy",
                                                            mode="max"),
                                    num_samples=20, reuse_actors=True),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="nb201", verbose=0))
    results = tuner.fit()
    assert len(results) == 8 and searcher.num_completed == 8
    assert searcher.best[0] == max(r.metrics["val_accuracy"] for r in results)
    assert isinstance(searcher.best[1], EdgeGenotype)
    restored = TuneSearcher(RegularizedEvolution(NB201, population_size=4, sample_size=2,
                                                 max_trials=8), metric="val_accuracy",
                            mode="max")
    restored.restore_from_dir(str(tmp_path / "nb201"))
    assert restored.wrapped.best == searcher.best


def test_a_keras_tuner_search_of_nb201_runs_and_resumes(tmp_path):
    keras_tuner = pytest.importorskip("keras_tuner")
    from searchers import RegularizedEvolution
    from searchers.kt_oracle import SearcherOracle, genotype_from_hp

    class TableTuner(keras_tuner.Tuner):
        def run_trial(self, trial, *args, **kwargs):
            genotype = genotype_from_hp(trial.hyperparameters)
            assert isinstance(genotype, EdgeGenotype)
            return {"val_accuracy": lookup(genotype).val_accuracy}

    def evolution(max_trials):
        return RegularizedEvolution(NB201, population_size=3, sample_size=2, max_trials=max_trials)

    searcher = evolution(5)
    oracle = SearcherOracle(searcher, objective="val_accuracy")
    TableTuner(oracle=oracle, directory=str(tmp_path), project_name="nb201").search(verbose=0)
    assert (searcher.num_completed, searcher.finished) == (5, True)
    assert oracle.get_best_trials()[0].score == searcher.best[0]
    resumed = evolution(8)
    oracle2 = SearcherOracle(resumed, objective="val_accuracy")
    TableTuner(oracle=oracle2, directory=str(tmp_path), project_name="nb201",
               overwrite=False).search(verbose=0)
    assert (resumed.num_completed, resumed.num_proposed) == (8, 8)
    genotypes = {t.hyperparameters.get("genotype") for t in oracle2.trials.values()}
    assert len(genotypes) == 8


def test_the_cell_hypermodel_declares_and_builds_nb201_cells():
    keras_tuner = pytest.importorskip("keras_tuner")
    from nasplay.hypermodel import CellHyperModel

    hypermodel = CellHyperModel("nb201", filters=4, cells_per_stage=1, num_classes=3,
                                input_shape=(8, 8, 3))
    hp = keras_tuner.HyperParameters()
    assert hypermodel.genotype(hp) == NB201.decode([0] * 6)
    assert [c.name for c in hp.space] == NB201.decision_labels()
    assert [len(c.values) for c in hp.space] == NB201.decision_sizes()
    target = sample(1, seed=5)[0]
    hp = keras_tuner.HyperParameters()
    for name, value in zip(NB201.decision_labels(), NB201.encode(target)):
        hp.values[name] = value
    assert hypermodel.genotype(hp) == target
    model = hypermodel.build(hp)
    assert model.output_shape == (None, 3) and math.isfinite(model.count_params())

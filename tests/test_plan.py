"""The plan: every setting resolved and checked before Ray starts or anything is written.

No Ray here: bad input must fail before it (``nasplay search`` through the real CLI, in this
process). The searches that do run are in test_search.py.
"""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest

from conftest import FAKE_SCORER, REPO
from nasplay.cli import dispatch as cli
from nasplay.cli.search import config_from_args
from nasplay.engine.config import SearchConfig
from nasplay.engine.plan import check_searcher_options, make_plan
from nasplay.errors import UserError
from nasplay.runs.records import trial_record
from nasplay.runs.rundir import RunDir
from search_space import get_space


@pytest.fixture
def existing_run(tmp_path):
    run = RunDir(tmp_path / "existing")
    run.create(SearchConfig(searcher="random", space="nasnet", trials=4, run_dir=str(run.path),
                            scorer=FAKE_SCORER, metric="val_accuracy"))
    genotype = get_space("nasnet").sample(np.random.default_rng(0))
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
    (["--searcher", "random", "--space", "nasnet", "--trials", "3", "--scorer", "magic"],
     "unknown scorer 'magic'; choose one of zero-cost, oneshot, proxy"),
    (["--searcher", "random", "--space", "nasnet", "--trials", "3", "--address",
      "127.0.0.1:1"], "cannot reach a Ray cluster"),
    (["--searcher", "random", "--space", "nasnet"], "--trials required"),
    (["--resume"], "nothing to resume"),
    (["--searcher", "random", "--space", "nasnet", "--trials", "3", "--scorer", "zero-cost",
      "--subset", "100"], "--subset does not apply to the zero-cost scorer"),
    (["--searcher", "random", "--space", "nasnet", "--trials", "3", "--scorer", "zero-cost",
      "--scheduler", "asha"], "the zero-cost scorer does not train"),
    (["--searcher", "evolution", "--space", "nasnet", "--trials", "3", "--scorer", "zero-cost",
      "--population-size", "0"], "searcher_options for evolution"),
    (["--searcher", "random", "--space", "nb201", "--trials", "3", "--repeats", "2",
      "--scheduler", "asha"], "--repeats 2 scores it by the mean of 2 whole trainings: use "
                              "--scheduler fifo, or --repeats 1"),
    (["--searcher", "random", "--space", "nb201", "--trials", "3", "--repeats", "0"],
     "repeats must be"),
    (["--searcher", "random", "--space", "nb201", "--trials", "3", "--scorer", "zero-cost",
      "--repeats", "2"], "--repeats does not apply to the zero-cost scorer"),
    (["--searcher", "random", "--space", "nb201", "--trials", "3", "--size-prior", "-0.05"],
     "size_prior must be a number >= 0"),
    (["--searcher", "random", "--space", "nb201", "--trials", "3", "--scorer", "synflow",
      "--size-prior", "0.05"], "--size-prior does not apply to the synflow scorer"),
    (["--searcher", "random", "--space", "nb201", "--trials", "3", "--probe", "noise"],
     "--probe does not apply to the proxy scorer"),
])
def test_bad_input_exits_2_in_one_line_and_writes_nothing(tmp_path, refused, argv, message):
    refused(message, "--run-dir", tmp_path / "new", *argv)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("argv, message", [
    (["--searcher", "random", "--space", "nasnet", "--trials", "3", "--scorer", FAKE_SCORER],
     "already holds a run"),
    (["--resume", "--searcher", "evolution"], "holds another experiment (searcher is 'random'"),
    (["--resume", "--epochs", "5"], "holds another experiment (epochs"),
    (["--resume", "--address", "127.0.0.1:1"], "cannot reach a Ray cluster"),
])
def test_bad_input_leaves_an_existing_run_untouched(existing_run, refused, worker_path, argv,
                                                    message):
    before = snapshot(existing_run)
    refused(message, "--run-dir", existing_run, *argv)
    assert snapshot(existing_run) == before


def test_resuming_a_finished_run_changes_nothing(existing_run, capsys, nasplay_cli, worker_path):
    before = snapshot(existing_run)
    assert nasplay_cli("--run-dir", existing_run, "--resume", "--trials", 1) == 0
    assert "target of 1 is reached" in capsys.readouterr().out
    assert snapshot(existing_run) == before


def _config(argv) -> tuple[SearchConfig, set[str]]:
    return config_from_args(cli.build_parser().parse_args(["search", *argv]))


def test_flags_override_a_config_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"searcher": "evolution", "space": "amoebanet", "trials": 50,
                                "run_dir": "runs/a", "searcher_options": {"population_size": 8}}))
    config, given = _config(["--config", str(path), "--trials", "60", "--gpus-per-trial", "0.5"])
    assert (config.searcher, config.space, config.trials) == ("evolution", "amoebanet", 60)
    assert config.searcher_options == {"population_size": 8}
    assert config.gpus_per_trial == 0.5
    assert given == {"searcher", "space", "trials", "run_dir", "searcher_options",
                     "gpus_per_trial"}


def _planned(tmp_path, *argv) -> SearchConfig:
    config, _ = _config(["--searcher", "evolution", "--space", "nasnet", "--scorer",
                         "zero-cost", "--run-dir", str(tmp_path / "r"), *argv])
    return make_plan(config).config


def test_evolution_population_fits_the_budget_unless_given(tmp_path):
    options = lambda *argv: _planned(tmp_path, *argv).searcher_options  # noqa: E731
    assert options("--trials", "20") == {"population_size": 10, "sample_size": 5}
    assert options("--trials", "300") == {"population_size": 30, "sample_size": 15}
    assert options("--trials", "5000") == {"population_size": 50, "sample_size": 25}
    assert options("--trials", "20", "--population-size", "6", "--sample-size", "3") == {
        "population_size": 6, "sample_size": 3}
    # a population without a tournament size gets half of it (the class default, 25,
    # would not fit)
    assert options("--trials", "20", "--population-size", "12") == {"population_size": 12,
                                                                     "sample_size": 6}


def test_a_budget_that_leaves_evolution_no_mutation_is_warned_about(tmp_path):
    config, _ = _config(["--searcher", "evolution", "--space", "nasnet", "--scorer",
                         "zero-cost", "--run-dir", str(tmp_path / "r"), "--trials", "10"])
    plan = make_plan(config)
    assert len(plan.notes) == 1 and "leaves 0 mutations" in plan.notes[0]
    config, _ = _config(["--searcher", "evolution", "--space", "nasnet", "--scorer",
                         "zero-cost", "--run-dir", str(tmp_path / "r"), "--trials", "11"])
    assert make_plan(config).notes == []


def test_the_plan_fills_every_default_into_the_config(tmp_path):
    config = _planned(tmp_path, "--trials", "30")
    assert config.metric == "naswot"
    options = config.scorer_options
    assert (options["filters"], options["cells_per_stage"]) == (8, 1)
    assert config.scorer_flags == {}   # every setting by its field name in scorer_options
    assert config.scorer_options["batch_size"] == 128 and config.scorer_options["seed"] == 0
    # the resolved config plans to itself: config.json repeats the run
    again = make_plan(config).config
    assert again == config


def test_finetune_steps_reach_the_oneshot_scorers_settings(tmp_path, shared_cifar):
    def planned(*flags):
        config, _ = _config(["--searcher", "random", "--space", "amoebanet", "--scorer", "oneshot",
                             "--data", str(shared_cifar), "--subset", "256", "--trials", "3",
                             "--run-dir", str(tmp_path / "r"), *flags])
        return make_plan(config).config

    # filled with the scorer's default: pure one-shot
    assert planned().scorer_options["finetune_steps"] == 0
    tuned = planned("--finetune-steps", "16", "--supernet-epochs", "2")
    assert tuned.scorer_options["finetune_steps"] == 16 and tuned.scorer_flags == {}
    assert tuned.scorer_options["epochs"] == 2   # --supernet-epochs sets OneShotConfig.epochs
    from nasplay.scorers import get_scorer
    from nasplay.scorers.settings import resolve
    _, options = resolve(get_scorer("oneshot"), tuned)  # what each trial's scorer is built from
    assert options["finetune_steps"] == 16
    assert make_plan(tuned).config == tuned                  # config.json repeats the run


def test_the_proxy_plan_takes_gpu_defaults_for_gpu_trials(tmp_path, shared_cifar):
    def planned(**changes):
        config = SearchConfig(searcher="random", trials=2, data=str(shared_cifar),
                              run_dir=str(tmp_path / "r"), **changes)
        return make_plan(config).config

    cpu, gpu = planned(), planned(gpus_per_trial=1)
    def sizes(config):
        return tuple(config.scorer_options[k] for k in ("train_size", "epochs", "filters"))

    assert (sizes(cpu), sizes(gpu)) == ((2000, 3, 8), (20000, 10, 16))
    assert gpu.scorer_options["steps_per_execution"] == 16
    assert "gpus" not in gpu.scorer_options and "cpus" not in gpu.scorer_options
    assert cpu.data == str(shared_cifar) and cpu.metric == "val_accuracy"


def test_a_subset_larger_than_the_data_is_refused_before_anything_is_written(
        tmp_path, refused, shared_cifar):
    refused("60000", "--run-dir", tmp_path / "new", "--searcher", "random", "--space", "nasnet",
            "--trials", 3, "--data", shared_cifar, "--subset", 60000)
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("script", ["evolution_cifar10.py", "controller_cifar10.py",
                                    "random_baseline.py", "oneshot_cifar10.py"])
def test_the_experiment_scripts_hold_valid_configs(script):
    config = runpy.run_path(str(REPO / "experiments" / script), run_name="experiment")["CONFIG"]
    config.check()
    check_searcher_options(config)


def test_make_plan_takes_only_a_search_config():
    with pytest.raises(TypeError, match="SearchConfig"):
        make_plan({"searcher": "random"})
    with pytest.raises(UserError, match="trials must be"):
        make_plan(SearchConfig(trials=-1))


@pytest.mark.parametrize("trials, space, message", [
    ([], "nasnet", "no completed trial there has a 'naswot' score"),
    ([("completed", {"naswot": 300.0})], "darts", "that run searched space 'darts'"),
    ([("failed", {})], "nasnet", "no completed trial there has a 'naswot' score"),
])
def test_a_warm_start_that_cannot_seed_this_search_is_refused(tmp_path, refused, trials, space,
                                                              message):
    other = RunDir(tmp_path / "other")
    other.create(SearchConfig(searcher="random", space=space, trials=4, run_dir=str(other.path),
                              scorer="zero-cost", metric="naswot"))
    for i, (status, metrics) in enumerate(trials):
        genotype = get_space(space).sample(np.random.default_rng(i))
        other.append_trial(trial_record(f"random-{i:05d}", genotype.to_dict(), status, metrics))
    refused(message, "--run-dir", tmp_path / "new", "--searcher", "evolution", "--space",
            "nasnet", "--trials", 20, "--scorer", "zero-cost", "--warm-start", other.path)
    assert not (tmp_path / "new").exists()
    refused("does not exist", "--run-dir", tmp_path / "new", "--searcher", "random", "--space",
            "nasnet", "--trials", 2, "--warm-start", tmp_path / "nowhere")


@pytest.mark.parametrize("argv, message", [
    (["--backend", "theano"], "unknown backend 'theano'; choose one of tensorflow, jax, torch"),
    (["--scorer", "oneshot", "--backend", "jax"], "the oneshot scorer runs on the tensorflow or "
     "torch backend only, not jax"),
    (["--scorer", "oneshot", "--supernet-epochs", "0"], "supernet_epochs must be an integer >= 1"),
    (["--scorer", "oneshot", "--epochs", "3"], "--epochs does not apply to the oneshot scorer"),
    (["--scorer", "zero-cost", "--supernet-epochs", "3"], "--supernet-epochs does not apply"),
    (["--scorer", "oneshot", "--finetune-steps", "-1"], "finetune_steps must be an integer >= 0"),
    (["--scorer", "proxy", "--finetune-steps", "8"], "--finetune-steps does not apply"),
    (["--scorer", "oneshot", "--shallow-epochs", "-1"], "shallow_epochs must be an integer >= 0"),
    (["--scorer", "oneshot", "--shallow-epochs", "2"], "has nothing to grow into"),
    (["--scorer", "oneshot", "--shallow-epochs", "2", "--cells-per-stage", "2"],
     "growing a supernet from a shallow one is built for spaces of ops on edges (nb201), not "
     "'amoebanet'"),
    (["--scorer", "zero-cost", "--cpus-per-trial", "64"], "more than this machine has"),
    (["--scorer", "zero-cost", "--rerank-top", "-1"], "rerank_top must be an integer >= 0"),
    (["--scorer", "zero-cost", "--rerank-top", "4"], "--rerank-top 4 is more than the 3 trials"),
    (["--scorer", "zero-cost", "--rerank-top", "2", "--rerank-scorer", "nope"],
     "unknown scorer 'nope'"),
    (["--scorer", "zero-cost", "--rerank-top", "2", "--rerank-scorer", "zero-cost"],
     "--rerank-scorer zero-cost at the search's own settings would score each candidate again"),
])
def test_bad_backend_and_scorer_settings_exit_2_before_anything_is_written(
        tmp_path, refused, argv, message):
    refused(message, "--run-dir", tmp_path / "new", "--searcher", "random", "--space",
            "amoebanet", "--trials", 3, *argv)
    assert not (tmp_path / "new").exists()


def _write(path: Path, data: dict) -> Path:
    import json

    path.write_text(json.dumps(data))
    return path


def test_any_scorer_re_ranks_any_other_or_itself_at_other_settings(tmp_path, refused,
                                                                    shared_cifar):
    """The re-scorer's settings are ``rerank_options`` over its defaults, its metric any of its
    scores; the same scorer at other settings is a ladder; at the same settings it is refused."""
    import json

    settings = {"rerank_options": {"epochs": 1, "train_size": 500, "val_size": 200},
                "rerank_scorer": "proxy", "rerank_metric": "neg_val_loss"}
    (tmp_path / "ladder.json").write_text(json.dumps(settings))
    base = ["--searcher", "random", "--space", "nb201", "--trials", "4", "--rerank-top", "2",
            "--data", str(shared_cifar), "--config", str(tmp_path / "ladder.json")]
    zero_cost = make_plan(_config([*base, "--scorer", "zero-cost",
                                   "--run-dir", str(tmp_path / "z")])[0])
    assert zero_cost.config.rerank_metric == "neg_val_loss"
    assert zero_cost.rescore_options["epochs"] == 1
    assert zero_cost.rescore_options["train_size"] == 500
    ladder = make_plan(_config([*base, "--epochs", "2", "--run-dir", str(tmp_path / "p")])[0])
    assert (ladder.options["epochs"], ladder.rescore_options["epochs"]) == (2, 1)
    assert ladder.config.metric == "val_accuracy"
    table = make_plan(_config(["--searcher", "random", "--space", "nb201", "--trials", "4",
                               "--scorer", "zero-cost", "--rerank-top", "2", "--rerank-scorer",
                               "nb201", "--run-dir", str(tmp_path / "t")])[0])
    assert table.config.rerank_metric == "val_accuracy"         # a re-scorer without data
    refused("rerank_options: unknown ProxyConfig setting(s) epoch", *base[:-2], "--config",
            _write(tmp_path / "typo.json", {"rerank_options": {"epoch": 1}}),
            "--run-dir", tmp_path / "q")
    own = make_plan(_config([*base, "--epochs", "2", "--rerank-metric", "val_accuracy",
                             "--run-dir", str(tmp_path / "o")])[0])
    assert own.config.rerank_metric == own.config.metric == "val_accuracy"
    refused("--rerank-scorer proxy at the search's own settings would score each candidate "
            "again", *base[:-2], "--rerank-scorer", "proxy", "--rerank-metric", "neg_val_loss",
            "--run-dir", tmp_path / "q")
    assert not (tmp_path / "q").exists()


def test_a_run_saved_before_a_setting_existed_resumes_as_it_ran(tmp_path, shared_cifar):
    """``affine_ops`` came after the first one-shot runs: theirs had affine candidate ops, so a
    resume fills in True (not today's default, False) and is the same experiment."""
    import dataclasses

    config, _ = _config(["--searcher", "random", "--space", "amoebanet", "--scorer", "oneshot",
                         "--data", str(shared_cifar), "--subset", "256", "--trials", "3",
                         "--run-dir", str(tmp_path / "r")])
    fresh = make_plan(config).config
    assert fresh.scorer_options["affine_ops"] is False
    older = dict(fresh.scorer_options)
    del older["affine_ops"], older["loose_mean"]
    RunDir(fresh.run_dir).create(dataclasses.replace(fresh, scorer_options=older))
    again, given = _config(["--resume", "--run-dir", fresh.run_dir])
    resumed = make_plan(again, resume=True, explicit=given).config
    assert resumed.scorer_options == {**older, "affine_ops": True, "loose_mean": False}
    assert dataclasses.replace(resumed, scorer_options=older) == \
        dataclasses.replace(fresh, scorer_options=older)


def test_a_proxy_run_from_before_fused_norms_resumes_with_kerass_norms(tmp_path, shared_cifar):
    import dataclasses

    config, _ = _config(["--searcher", "random", "--space", "nasnet", "--data",
                         str(shared_cifar), "--subset", "256", "--trials", "3",
                         "--run-dir", str(tmp_path / "r")])
    fresh = make_plan(config).config
    assert fresh.scorer_options["fused_norms"] is True
    older = {k: v for k, v in fresh.scorer_options.items() if k != "fused_norms"}
    RunDir(fresh.run_dir).create(dataclasses.replace(fresh, scorer_options=older))
    again, given = _config(["--resume", "--run-dir", fresh.run_dir])
    resumed = make_plan(again, resume=True, explicit=given).config
    assert resumed.scorer_options == {**older, "fused_norms": False}


def test_mixed_precision_without_gpu_trials_is_refused(tmp_path):
    config = SearchConfig(searcher="random", trials=2, scorer="zero-cost", mixed_precision=True,
                          run_dir=str(tmp_path / "r"))
    with pytest.raises(UserError, match="mixed precision needs GPU trials"):
        make_plan(config)


def test_the_backend_is_recorded_and_fixed_on_resume(tmp_path, existing_run, refused,
                                                     worker_path):
    assert make_plan(SearchConfig(searcher="random", trials=2, scorer="zero-cost",
                                  backend="jax", run_dir=str(tmp_path / "r"))).config.backend \
        == "jax"
    refused("holds another experiment (backend is 'tensorflow'", "--run-dir", existing_run,
            "--resume", "--backend", "jax")


def test_a_supernet_to_reuse_must_fit_the_search(tmp_path, refused, shared_cifar):
    for supernet, message in [(tmp_path / "nowhere", "no supernet in"),
                              (tmp_path, "supernet.npz is missing"),
                              (tmp_path, "so a supernet cannot hold it")]:
        space = "nasnet" if "cannot hold" in message else "amoebanet"
        refused(message, "--run-dir", tmp_path / "new", "--searcher", "random", "--space", space,
                "--trials", 3, "--scorer", "oneshot", "--data", shared_cifar, "--supernet",
                supernet)
        assert not (tmp_path / "new").exists()

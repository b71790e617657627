"""The Ray Tune and keras-tuner adapters, driven by the real libraries on trivial objectives."""

import json
import os
import pickle

import numpy as np
import pytest

from search_space import Genotype, SearchSpace
from searchers import RandomSearch, RegularizedEvolution

# 2 ops, 1 block per cell: 100 distinct genotypes.
TINY = SearchSpace("tiny_adapters", ops=("identity", "conv_3x3"), num_blocks=1)


def convs(genotype: Genotype) -> float:
    """Trivial objective: the share of conv_3x3 among the normal cell's ops."""
    ops = [op for block in genotype.normal.blocks for op in block.ops]
    return ops.count("conv_3x3") / len(ops)


# ----------------------------------------------------------------------------- Ray Tune

ray_adapter = pytest.importorskip("searchers.ray_adapter")
TuneSearcher = ray_adapter.TuneSearcher


def test_tune_searcher_suggests_genotypes_and_tells_results():
    searcher = RandomSearch(TINY, seed=0, max_trials=4)
    tune_searcher = TuneSearcher(searcher, metric="val_accuracy", mode="max")
    configs = {rid: tune_searcher.suggest(rid) for rid in ("a", "b", "c", "d")}
    assert set(configs["a"]) == {"genotype", "trial_id"}
    assert Genotype.from_dict(configs["a"]["genotype"]) == searcher._pending[configs["a"]["trial_id"]].genotype
    assert tune_searcher.suggest("e") == TuneSearcher.FINISHED

    tune_searcher.on_trial_complete("a", {"val_accuracy": 0.75})
    tune_searcher.on_trial_complete("b", None, error=True)  # crashed
    tune_searcher.on_trial_complete("c", {"loss": 1.0})  # never reported the metric
    tune_searcher.on_trial_complete("d", {"val_accuracy": float("nan")})
    tune_searcher.on_trial_complete("zzz", {"val_accuracy": 1.0})  # not ours: ignored
    assert (searcher.num_completed, searcher.num_failed) == (1, 3)
    assert searcher.best[0] == 0.75


def test_tune_searcher_negates_a_metric_to_minimize():
    searcher = RandomSearch(TINY)
    tune_searcher = TuneSearcher(searcher, metric="loss", mode="min")
    tune_searcher.suggest("a")
    tune_searcher.on_trial_complete("a", {"loss": 0.25})
    assert searcher.best[0] == -0.25


def test_tune_searcher_state_goes_through_rays_wrappers_as_json(tmp_path):
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.search_generator import SearchGenerator

    def wrapped(seed):
        inner = TuneSearcher(RegularizedEvolution(TINY, population_size=3, sample_size=2, seed=seed))
        return inner, SearchGenerator(ConcurrencyLimiter(inner, max_concurrent=2))

    first, generator = wrapped(0)
    for i in range(6):
        first.suggest(f"r{i}")
        if i < 4:
            first.on_trial_complete(f"r{i}", {"val_accuracy": float(i)})
    generator.save_to_dir(str(tmp_path), session_str="s")
    state_files = [f for f in os.listdir(tmp_path) if f.startswith("searcher-state-")]
    assert state_files == ["searcher-state-s.json"]
    json.loads((tmp_path / state_files[0]).read_text())

    second, generator2 = wrapped(5)
    generator2.restore_from_dir(str(tmp_path))
    for tune_searcher in (first, second):  # the two trials running at the save finish now
        tune_searcher.on_trial_complete("r4", {"val_accuracy": 2.5})
        tune_searcher.on_trial_complete("r5", None, error=True)
    assert [first.suggest(f"n{i}") for i in range(5)] == [second.suggest(f"n{i}") for i in range(5)]


def test_tune_searcher_pickles_for_the_tuner_state():
    tune_searcher = TuneSearcher(RandomSearch(TINY, seed=1))
    tune_searcher.suggest("a")
    copy = pickle.loads(pickle.dumps(tune_searcher))
    assert copy.get_state() == tune_searcher.get_state()


@pytest.mark.slow
def test_a_ray_tuner_runs_a_search_with_a_failing_trial(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    import ray
    from ray import tune

    def trainable(config):  # self-contained: Ray's workers cannot import this test module
        from search_space import Genotype

        genotype = Genotype.from_dict(config["genotype"])
        if config["trial_id"].endswith("2"):
            raise RuntimeError("this trial fails on purpose")
        ops = [op for block in genotype.normal.blocks for op in block.ops]
        tune.report({"val_accuracy": ops.count("conv_3x3") / len(ops)})

    searcher = RegularizedEvolution(TINY, population_size=3, sample_size=2, seed=0, max_trials=5)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=TuneSearcher(searcher), num_samples=10,
                                        metric="val_accuracy", mode="max", reuse_actors=True),
            run_config=tune.RunConfig(storage_path=str(tmp_path), name="search", verbose=0),
        )
        results = tuner.fit()
    finally:
        ray.shutdown()
    assert len(results) == 5  # the searcher's budget, not num_samples
    assert (searcher.num_completed, searcher.num_failed) == (4, 1)
    assert results.get_best_result().metrics["val_accuracy"] == searcher.best[0]
    assert any(f.startswith("searcher-state-") for f in os.listdir(tmp_path / "search"))


# ----------------------------------------------------------------------------- keras-tuner

keras_tuner = pytest.importorskip("keras_tuner")
kt_oracle = pytest.importorskip("searchers.kt_oracle")


class FakeTuner(keras_tuner.Tuner):
    """Scores a trial's genotype without building a model; trial "2" fails."""

    def run_trial(self, trial, *args, **kwargs):
        genotype = kt_oracle.genotype_from_hp(trial.hyperparameters)
        if trial.trial_id == "2":
            raise keras_tuner.errors.FailedTrialError("this trial fails on purpose")
        return {"val_accuracy": convs(genotype)}


def test_a_keras_tuner_search_runs_our_searcher_and_resumes(tmp_path):
    searcher = RegularizedEvolution(TINY, population_size=3, sample_size=2, seed=0, max_trials=6)
    oracle = kt_oracle.SearcherOracle(searcher, objective="val_accuracy")
    FakeTuner(oracle=oracle, directory=str(tmp_path), project_name="nas").search(verbose=0)
    assert (searcher.num_completed, searcher.num_failed, searcher.finished) == (5, 1, True)
    statuses = [t.status for t in oracle.trials.values()]
    assert statuses.count("COMPLETED") == 5 and statuses.count("FAILED") == 1
    assert oracle.get_best_trials()[0].score == searcher.best[0]

    # A new process would do this: same directory, overwrite=False, a larger budget.
    resumed = RegularizedEvolution(TINY, population_size=3, sample_size=2, seed=0, max_trials=9)
    oracle2 = kt_oracle.SearcherOracle(resumed, objective="val_accuracy")
    tuner = FakeTuner(oracle=oracle2, directory=str(tmp_path), project_name="nas", overwrite=False)
    assert resumed.num_proposed == 6
    tuner.search(verbose=0)
    assert (resumed.num_completed, resumed.num_failed, resumed.num_proposed) == (8, 1, 9)
    genotypes = [t.hyperparameters.get("genotype") for t in oracle2.trials.values()]
    assert len(set(genotypes)) == 9


def test_keras_tuner_minimizing_objective_is_negated():
    searcher = RandomSearch(TINY, seed=0, max_trials=1)
    oracle = kt_oracle.SearcherOracle(searcher, objective=keras_tuner.Objective("loss", "min"))
    assert oracle.max_trials == 1
    values = oracle.populate_space("0")["values"]
    assert Genotype.from_json(values["genotype"]) == searcher.pending[0].genotype
    assert oracle.populate_space("1")["status"] == "STOPPED"
    np.testing.assert_equal(searcher.num_proposed, 1)

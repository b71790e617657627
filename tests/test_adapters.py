"""The Ray Tune and keras-tuner adapters, driven by the real libraries on trivial objectives.

Each bug of issue 13 has a test here that runs through a real ``tune.Tuner`` or a real
``keras_tuner.Tuner`` subclass; the objectives are functions of the genotype (no training).
"""

import json
import math
import os
import pickle
import warnings

import numpy as np
import pytest

from search_space import Genotype, SearchSpace
from searchers import RandomSearch, RegularizedEvolution

# 2 ops, 1 block per cell: 100 distinct genotypes.
TINY = SearchSpace("tiny_adapters", ops=("identity", "conv_3x3"), num_blocks=1)


def convs(genotype: Genotype, cell: str = "normal") -> float:
    """Trivial objective: the share of conv_3x3 among a cell's ops."""
    ops = [op for block in getattr(genotype, cell).blocks for op in block.ops]
    return ops.count("conv_3x3") / len(ops)


def evolution(max_trials=None, seed=0):
    return RegularizedEvolution(TINY, population_size=3, sample_size=2, seed=seed, max_trials=max_trials)


# ----------------------------------------------------------------------------- Ray Tune, unit

ray_adapter = pytest.importorskip("searchers.ray_adapter")
TuneSearcher = ray_adapter.TuneSearcher


def test_tune_searcher_suggests_genotypes_and_tells_results(monkeypatch):
    searcher = RandomSearch(TINY, seed=0, max_trials=4)
    tune_searcher = TuneSearcher(searcher, metric="val_accuracy", mode="max")
    configs = {rid: tune_searcher.suggest(rid) for rid in ("a", "b", "c", "d")}
    assert set(configs["a"]) == {"genotype", "trial_id"}
    assert Genotype.from_dict(configs["a"]["genotype"]) == searcher.pending[0].genotype
    assert tune_searcher.suggest("e") == TuneSearcher.FINISHED

    tune_searcher.on_trial_complete("a", {"val_accuracy": 0.75})
    tune_searcher.on_trial_complete("b", None, error=True)  # crashed
    tune_searcher.on_trial_complete("c", {"val_accuracy": math.inf})
    tune_searcher.on_trial_complete("d", {"val_accuracy": float("nan")})
    tune_searcher.on_trial_complete("zzz", {"val_accuracy": 1.0})  # not ours: ignored
    assert (searcher.num_completed, searcher.num_failed) == (1, 3)
    assert searcher.best[0] == 0.75


def test_a_result_without_the_metric_is_an_error_unless_strict_checking_is_off(monkeypatch):
    tune_searcher = TuneSearcher(RandomSearch(TINY), metric="val_accuracy", mode="max")
    tune_searcher.suggest("a")
    with pytest.raises(ValueError, match="trial a finished without reporting 'val_accuracy'.*loss"):
        tune_searcher.on_trial_complete("a", {"loss": 1.0})
    monkeypatch.setenv("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")  # as a failure report does
    tune_searcher.on_trial_complete("a", {"failed": 1})
    assert tune_searcher.wrapped.num_failed == 1


def test_a_metric_that_is_not_a_number_is_an_error():
    tune_searcher = TuneSearcher(RandomSearch(TINY), metric="val_accuracy", mode="max")
    tune_searcher.suggest("a")
    with pytest.raises(ValueError, match="'val_accuracy' is 'high'.*not a number"):
        tune_searcher.on_trial_complete("a", {"val_accuracy": "high"})


def test_tune_searcher_negates_a_metric_to_minimize():
    searcher = RandomSearch(TINY)
    tune_searcher = TuneSearcher(searcher, metric="loss", mode="min")
    tune_searcher.suggest("a")
    tune_searcher.on_trial_complete("a", {"loss": 0.25})
    assert searcher.best[0] == -0.25


@pytest.mark.parametrize("kwargs, words", [
    ({"mode": "maximize"}, "mode must be 'min' or 'max', got 'maximize'"),
    ({"metric": ""}, "metric must be the name"),
])
def test_tune_searcher_refuses_bad_settings(kwargs, words):
    with pytest.raises(ValueError, match=words):
        TuneSearcher(RandomSearch(TINY), **kwargs)


def test_tune_searcher_wraps_only_our_searchers():
    from ray.tune.search import BasicVariantGenerator

    with pytest.raises(ValueError, match="wraps one of our searchers"):
        TuneSearcher(BasicVariantGenerator())


def test_set_search_properties_fills_what_was_not_given_and_says_so():
    from ray import tune

    tune_searcher = TuneSearcher(RandomSearch(TINY), metric="loss")
    assert tune_searcher.set_search_properties("loss", "min", {"epochs": 3}) is True
    assert (tune_searcher.metric, tune_searcher.mode) == ("loss", "min")
    with pytest.warns(UserWarning, match="metric='loss' given to TuneSearcher wins"):
        assert tune_searcher.set_search_properties("val_accuracy", None, {}) is True
    assert tune_searcher.metric == "loss"
    # Distributions are not ours to sample: False, and Tune raises its own error.
    assert TuneSearcher(RandomSearch(TINY)).set_search_properties(
        "loss", "min", {"lr": tune.choice([0.1, 0.01])}) is False
    with pytest.raises(ValueError, match="TuneConfig\\(mode=...\\) must be 'min' or 'max'"):
        TuneSearcher(RandomSearch(TINY)).set_search_properties("loss", "lowest", {"epochs": 3})


def test_no_metric_or_mode_is_a_clear_error_at_the_first_suggestion():
    with pytest.raises(ValueError, match="TuneSearcher has no mode: pass"):
        TuneSearcher(RandomSearch(TINY), metric="loss").suggest("a")


def test_tune_searcher_state_goes_through_rays_wrappers_as_json(tmp_path):
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.search_generator import SearchGenerator

    def wrapped(seed):
        inner = TuneSearcher(evolution(seed=seed), metric="val_accuracy", mode="max")
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


def test_the_concurrency_limit_is_kept_by_the_adapter():
    from ray.tune.search import ConcurrencyLimiter

    inner = TuneSearcher(RandomSearch(TINY), metric="val_accuracy", mode="max")
    limiter = ConcurrencyLimiter(inner, max_concurrent=2)
    assert limiter.suggest("a") is not None and limiter.suggest("b") is not None
    assert limiter.suggest("c") is None
    limiter.on_trial_complete("a", {"val_accuracy": 0.5})
    assert limiter.suggest("c") is not None
    assert inner.wrapped.num_completed == 1


def test_a_checkpoint_with_another_metric_wins_with_a_warning(tmp_path):
    saved = TuneSearcher(RandomSearch(TINY, seed=1), metric="loss", mode="min")
    saved.suggest("a")
    saved.save(str(tmp_path / "state.json"))
    restored = TuneSearcher(RandomSearch(TINY), metric="val_accuracy", mode="max")
    with pytest.warns(UserWarning, match="checkpoint's metric='loss' replaces metric='val_accuracy'"):
        restored.restore(str(tmp_path / "state.json"))
    assert (restored.metric, restored.mode) == ("loss", "min")
    assert restored.wrapped.pending == saved.wrapped.pending


def test_a_checkpoint_of_a_searcher_with_other_settings_names_the_setting(tmp_path):
    TuneSearcher(evolution(), "loss", "min").save(str(tmp_path / "state.json"))
    other = TuneSearcher(RegularizedEvolution(TINY, population_size=4, sample_size=2), "loss", "min")
    with pytest.raises(ValueError, match="population_size: state 3 vs 4"):
        other.restore(str(tmp_path / "state.json"))


def test_add_evaluated_point_warm_starts_the_searcher():
    searcher = evolution()
    tune_searcher = TuneSearcher(searcher, metric="loss", mode="min")
    genotypes = [TINY.sample(np.random.default_rng(i)) for i in range(4)]
    for genotype, loss in zip(genotypes[:3], (0.5, 0.2, 0.9)):
        tune_searcher.add_evaluated_point({"genotype": genotype.to_dict()}, loss)
    tune_searcher.add_evaluated_point({"genotype": genotypes[3].to_dict()}, 0.0, error=True)
    assert searcher.best == (-0.2, genotypes[1])
    assert [score for _, _, score in searcher.population] == [-0.5, -0.2, -0.9]
    assert searcher.num_observed == 4
    config = tune_searcher.suggest("a")  # the population is full: a mutation, never a repeat
    assert Genotype.from_dict(config["genotype"]) not in genotypes
    with pytest.raises(ValueError, match="parameters must be a trial config holding 'genotype'"):
        tune_searcher.add_evaluated_point({"lr": 0.1}, 0.3)


def test_add_evaluated_trials_goes_by_trial_status_not_by_the_saved_done_flag():
    from ray.tune.experiment import Trial

    genotypes = [TINY.sample(np.random.default_rng(i)) for i in range(4)]
    trials = []
    for genotype, status, result in zip(genotypes, ("TERMINATED", "TERMINATED", "ERROR", "RUNNING"),
                                        ({"loss": 0.4, "done": True}, {"loss": 0.3}, {}, {"loss": 0.1})):
        trial = Trial("trainable", config={"genotype": genotype.to_dict()}, stub=True)
        trial.set_status(status)
        trial.run_metadata.last_result = dict(result)
        trials.append(trial)
    searcher = evolution()
    TuneSearcher(searcher, metric="loss", mode="min").add_evaluated_trials(trials)
    # The second finished without `done` saved (Ray can save that, see add_evaluated_trials): it
    # still counts; the errored one is remembered unscored; the running one is not evaluated yet.
    assert [score for _, _, score in searcher.population] == [-0.4, -0.3]
    assert searcher.num_observed == 3 and searcher.best == (-0.3, genotypes[1])
    with pytest.raises(ValueError, match="expected a Trial, a list of Trials or an ExperimentAnalysis"):
        TuneSearcher(evolution(), metric="loss", mode="min").add_evaluated_trials("runs/search")
    other = evolution()
    with pytest.warns(UserWarning, match="none of the 2 finished trials reported 'val_loss'"):
        TuneSearcher(other, metric="val_loss", mode="min").add_evaluated_trials(trials)
    assert other.num_observed == 1  # the errored trial only


def test_tune_searcher_pickles_for_the_tuner_state():
    tune_searcher = TuneSearcher(RandomSearch(TINY, seed=1), metric="val_accuracy", mode="max")
    tune_searcher.suggest("a")
    copy = pickle.loads(pickle.dumps(tune_searcher))
    assert copy.get_state() == tune_searcher.get_state()


# ----------------------------------------------------------------------------- Ray Tune, Tuner


@pytest.fixture(scope="module")
def ray_tune():
    """A small local Ray for this module's Tuners (one already running is used as it is)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    from ray import tune

    yield tune
    if started:
        ray.shutdown()


def make_trainable(fail_until=None):
    """A trainable scoring the genotype: ``loss`` from the normal cell, ``val_accuracy`` from the
    reduction cell, so the two disagree. Trial ``*-00001`` fails while the file ``fail_until``
    does not exist. Self-contained: Ray's workers cannot import this test module."""

    def trainable(config):
        import os

        from ray import tune

        from search_space import Genotype

        if fail_until and config["trial_id"].endswith("1") and not os.path.exists(fail_until):
            raise RuntimeError("fails on purpose until its flag file exists")
        genotype = Genotype.from_dict(config["genotype"])
        share = {cell: [op for b in getattr(genotype, cell).blocks for op in b.ops]
                 for cell in ("normal", "reduction")}
        tune.report({"loss": 1.0 - share["normal"].count("conv_3x3") / 2,
                     "val_accuracy": share["reduction"].count("conv_3x3") / 2})

    return trainable


def fit(tune, tmp_path, search_alg, param_space=None, name="search", **tune_config):
    tuner = tune.Tuner(
        make_trainable(tune_config.pop("fail_until", None)), param_space=param_space,
        tune_config=tune.TuneConfig(search_alg=search_alg, num_samples=20, reuse_actors=True,
                                    **tune_config),
        run_config=tune.RunConfig(storage_path=str(tmp_path), name=name, verbose=0))
    return tuner.fit()


def test_tuneconfig_metric_and_mode_reach_the_searcher_through_a_concurrency_limiter(ray_tune, tmp_path):
    searcher = evolution(max_trials=4)
    results = fit(ray_tune, tmp_path, TuneSearcher(searcher), param_space={"epochs": 1},
                  metric="loss", mode="min", max_concurrent_trials=2)
    losses = [r.metrics["loss"] for r in results]
    assert len(losses) == 4 and searcher.num_completed == 4
    assert searcher.best[0] == -min(losses)


def test_metric_and_mode_given_to_the_searcher_win_over_tuneconfig(ray_tune, tmp_path):
    searcher = evolution(max_trials=4)
    with pytest.warns(UserWarning, match="given to TuneSearcher wins"):
        results = fit(ray_tune, tmp_path, TuneSearcher(searcher, metric="loss", mode="min"),
                      param_space={"epochs": 1}, metric="val_accuracy", mode="max")
    assert searcher.best[0] == -min(r.metrics["loss"] for r in results)


@pytest.mark.parametrize("given, missing", [({}, "metric and mode"), ({"metric": "loss"}, "mode")])
def test_without_a_param_space_tuneconfig_cannot_reach_the_searcher_so_it_says_so(
        ray_tune, tmp_path, given, missing):
    with pytest.raises(ValueError, match=f"TuneSearcher has no {missing}: pass"):
        fit(ray_tune, tmp_path, TuneSearcher(evolution(max_trials=2), **given),
            metric="loss", mode="min")


def test_a_failed_trial_rerun_by_resume_errored_reaches_the_searcher(ray_tune, tmp_path):
    from ray.tune import ExperimentAnalysis

    flag = tmp_path / "fixed"
    searcher = evolution(max_trials=3)
    first = fit(ray_tune, tmp_path, TuneSearcher(searcher, metric="val_accuracy", mode="max"),
                max_concurrent_trials=2, fail_until=str(flag))
    assert len(first.errors) == 1 and (searcher.num_completed, searcher.num_failed) == (2, 1)

    flag.touch()
    path = str(tmp_path / "search")
    again = ray_tune.Tuner.restore(path, make_trainable(str(flag)), resume_errored=True).fit()
    assert not again.errors
    rerun = next(r for r in again if r.config["trial_id"] == "evolution-00001")
    restored = TuneSearcher(evolution(max_trials=3), metric="val_accuracy", mode="max")
    restored.restore_from_dir(path)  # the state Tune saved at the end of the resumed run
    population = {tid: score for tid, _, score in restored.wrapped.population}
    assert population["evolution-00001"] == rerun.metrics["val_accuracy"]
    assert restored.wrapped.num_observed == 1

    # Ray's warm-start idiom: another search learns the finished trials of this one.
    warm = TuneSearcher(evolution(seed=1), metric="val_accuracy", mode="max")
    analysis = ExperimentAnalysis(path)
    warm.add_evaluated_trials(analysis)
    seen = [(t.config.get("trial_id"), t.status, t.last_result.get("done"),
             t.last_result.get("val_accuracy")) for t in analysis.trials]
    assert warm.wrapped.num_observed == 3 and len(warm.wrapped.population) == 3, seen
    assert warm.wrapped.best[0] == max(r.metrics["val_accuracy"] for r in again)


@pytest.mark.slow
def test_a_ray_tuner_runs_a_search_with_a_failing_trial(ray_tune, tmp_path):
    searcher = RegularizedEvolution(TINY, population_size=3, sample_size=2, seed=0, max_trials=5)
    results = fit(ray_tune, tmp_path, TuneSearcher(searcher), param_space={"epochs": 1},
                  metric="val_accuracy", mode="max", fail_until=str(tmp_path / "never"))
    assert len(results) == 5  # the searcher's budget, not num_samples
    assert (searcher.num_completed, searcher.num_failed) == (4, 1)
    assert results.get_best_result().metrics["val_accuracy"] == searcher.best[0]
    assert any(f.startswith("searcher-state-") for f in os.listdir(tmp_path / "search"))


# ----------------------------------------------------------------------------- keras-tuner

keras_tuner = pytest.importorskip("keras_tuner")
kt_oracle = pytest.importorskip("searchers.kt_oracle")


class FakeTuner(keras_tuner.Tuner):
    """Scores a trial's genotype without building a model; trial "2" fails. Its hyperparameters
    are kept in ``self.seen`` (genotype JSON and the other values)."""

    def __init__(self, *args, score=None, **kwargs):
        self.score = score or (lambda genotype, hp: {"val_accuracy": convs(genotype)})
        self.seen = []
        super().__init__(*args, **kwargs)

    def run_trial(self, trial, *args, **kwargs):
        hp = trial.hyperparameters
        genotype = kt_oracle.genotype_from_hp(hp)
        self.seen.append(dict(hp.values))
        if trial.trial_id == "2":
            raise keras_tuner.errors.FailedTrialError("this trial fails on purpose")
        return self.score(genotype, hp)


class WidthHyperModel(keras_tuner.HyperModel):
    """A hypermodel with other hyperparameters beside the genotype it reads."""

    def build(self, hp):
        import keras

        kt_oracle.genotype_from_hp(hp)  # what a NAS hypermodel does first
        width = hp.Int("width", 8, 64, step=8)
        hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(width)])


def test_a_keras_tuner_search_runs_our_searcher_and_resumes(tmp_path):
    searcher = evolution(max_trials=6)
    oracle = kt_oracle.SearcherOracle(searcher, objective="val_accuracy")
    FakeTuner(oracle=oracle, directory=str(tmp_path), project_name="nas").search(verbose=0)
    assert (searcher.num_completed, searcher.num_failed, searcher.finished) == (5, 1, True)
    statuses = [t.status for t in oracle.trials.values()]
    assert statuses.count("COMPLETED") == 5 and statuses.count("FAILED") == 1
    assert oracle.get_best_trials()[0].score == searcher.best[0]

    # A new process would do this: same directory, overwrite=False, a larger budget.
    resumed = evolution(max_trials=9)
    oracle2 = kt_oracle.SearcherOracle(resumed, objective="val_accuracy")
    tuner = FakeTuner(oracle=oracle2, directory=str(tmp_path), project_name="nas", overwrite=False)
    assert resumed.num_proposed == 6
    tuner.search(verbose=0)
    assert (resumed.num_completed, resumed.num_failed, resumed.num_proposed) == (8, 1, 9)
    genotypes = [t.hyperparameters.get("genotype") for t in oracle2.trials.values()]
    assert len(set(genotypes)) == 9


def test_a_tuner_can_be_built_around_a_hypermodel_that_reads_the_genotype(tmp_path):
    oracle = kt_oracle.SearcherOracle(evolution(max_trials=2), objective="val_accuracy")
    tuner = FakeTuner(oracle=oracle, hypermodel=WidthHyperModel(), directory=str(tmp_path),
                      project_name="nas")  # keras-tuner builds the hypermodel once here
    tuner.search(verbose=0)
    assert len(tuner.seen) == 2


def test_other_hyperparameters_are_seeded_and_a_resumed_search_repeats_nothing(tmp_path):
    def search(directory, max_trials, overwrite=True):
        oracle = kt_oracle.SearcherOracle(evolution(max_trials=max_trials), objective="val_accuracy")
        tuner = FakeTuner(oracle=oracle, hypermodel=WidthHyperModel(), directory=str(directory),
                          project_name="nas", overwrite=overwrite)
        tuner.search(verbose=0)
        return [(t.hyperparameters.values["genotype"], t.hyperparameters.values["width"],
                 t.hyperparameters.values["learning_rate"])
                for t in sorted(oracle.trials.values(), key=lambda t: t.trial_id)]

    whole = search(tmp_path / "whole", 8)
    search(tmp_path / "parts", 4)
    resumed = search(tmp_path / "parts", 8, overwrite=False)
    assert resumed == whole
    assert len({lr for _, _, lr in whole}) == 8  # drawn, not keras-tuner's default
    assert search(tmp_path / "again", 8) == whole  # seeded


def test_cell_hypermodel_builds_the_genotype_the_searcher_proposed(tmp_path):
    from nasplay.hypermodel import CellHyperModel

    hypermodel = CellHyperModel(TINY, filters=2, cells_per_stage=0, num_classes=2,
                                input_shape=(8, 8, 3))
    searcher = evolution(max_trials=3)
    oracle = kt_oracle.SearcherOracle(searcher, objective="val_accuracy")
    built = []
    tuner = FakeTuner(oracle=oracle, hypermodel=hypermodel, directory=str(tmp_path),
                      project_name="nas",
                      score=lambda g, hp: built.append((g, hypermodel.genotype(hp))) or
                      {"val_accuracy": convs(g)})
    tuner.search(verbose=0)
    assert len(built) == 2 and all(proposed == used for proposed, used in built)
    assert [hp.name for hp in oracle.hyperparameters.space] == ["genotype"]  # no random choices


def test_a_bare_float_from_run_trial_is_minimized_as_keras_tuner_does(tmp_path):
    searcher = evolution(max_trials=4)
    oracle = kt_oracle.SearcherOracle(searcher)  # keras-tuner's default objective
    tuner = FakeTuner(oracle=oracle, directory=str(tmp_path), project_name="nas",
                      score=lambda genotype, hp: convs(genotype))
    tuner.search(verbose=0)
    best = oracle.get_best_trials()[0]
    assert best.score == min(t.score for t in oracle.trials.values() if t.status == "COMPLETED")
    assert searcher.best[0] == -best.score


def test_an_infinite_score_fails_in_keras_tuner_as_in_the_searcher(tmp_path):
    searcher = evolution(max_trials=4)
    oracle = kt_oracle.SearcherOracle(searcher, objective="val_accuracy")
    tuner = FakeTuner(oracle=oracle, directory=str(tmp_path), project_name="nas",
                      score=lambda g, hp: {"val_accuracy": math.inf if len(tuner.seen) == 1
                                           else convs(g)})
    tuner.search(verbose=0)
    assert oracle.trials["0"].status == "FAILED"
    assert searcher.num_failed == 2  # trial 0 (inf) and trial 2 (raised)
    assert oracle.get_best_trials()[0].score == searcher.best[0] < math.inf


def test_keras_tuner_minimizing_objective_is_negated():
    searcher = RandomSearch(TINY, seed=0, max_trials=1)
    oracle = kt_oracle.SearcherOracle(searcher, objective=keras_tuner.Objective("loss", "min"))
    assert oracle.max_trials == 1
    values = oracle.populate_space("0")["values"]
    assert Genotype.from_json(values["genotype"]) == searcher.pending[0].genotype
    assert oracle.populate_space("1")["status"] == "STOPPED"
    assert searcher.num_proposed == 1


def test_an_objective_the_searcher_cannot_read_is_refused():
    with pytest.raises(ValueError, match="objective direction must be 'min' or 'max', got 'up'"):
        kt_oracle.SearcherOracle(evolution(), objective=keras_tuner.Objective("acc", "up"))
    with pytest.raises(ValueError, match="wraps one of our searchers"):
        kt_oracle.SearcherOracle(object())


def test_genotype_from_hp_says_where_the_genotype_comes_from():
    with pytest.raises(ValueError, match="hold no 'genotype'.*SearcherOracle.*CellHyperModel"):
        kt_oracle.genotype_from_hp(keras_tuner.HyperParameters())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        oracle = kt_oracle.SearcherOracle(evolution(), objective="val_accuracy")
    genotype = kt_oracle.genotype_from_hp(oracle.get_space())  # what a Tuner's first build sees
    TINY.validate(genotype)

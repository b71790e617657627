"""Random search, regularized evolution and the shared ask/tell bookkeeping, on fake objectives."""

import json
import math
import pickle
import warnings

import numpy as np
import pytest

from search_space import SearchSpace, get_space
from searchers import Proposal, RandomSearch, RegularizedEvolution, Searcher, make_searcher

# 2 ops, 1 block per cell: 256 encodings, 100 distinct genotypes (branches are unordered).
TINY = SearchSpace("tiny_searchers", ops=("identity", "conv_3x3"), num_blocks=1)
TINY_GENOTYPES = TINY.size(canonical=True)


def closeness(space, target):
    """Fake objective: the fraction of decisions equal to the target's (1.0 at the target)."""
    goal = np.asarray(space.encode(target))
    return lambda genotype: float(np.mean(np.asarray(space.encode(genotype)) == goal))


def make(name, space=TINY, seed=0, **kw):
    if name == "evolution":
        kw.setdefault("population_size", 4)
        kw.setdefault("sample_size", 2)
    return make_searcher(name, space, seed=seed, **kw)


def drive(searcher, objective, steps, workers=1, rng=None):
    """Ask/tell ``steps`` trials with ``workers`` outstanding; returns the proposals in order."""
    rng = rng or np.random.default_rng(0)
    outstanding, proposals = [], []
    while len(proposals) < steps:
        while len(outstanding) < workers and len(proposals) + len(outstanding) < steps:
            p = searcher.ask()
            assert p is not None
            outstanding.append(p)
        p = outstanding.pop(int(rng.integers(len(outstanding))))
        searcher.tell(p.trial_id, objective(p.genotype))
        proposals.append(p)
    return proposals


@pytest.mark.parametrize("name", ["random", "evolution"])
def test_searchers_speak_the_protocol(name):
    searcher = make(name)
    assert isinstance(searcher, Searcher)
    p = searcher.ask()
    assert isinstance(p, Proposal) and p.trial_id == f"{name}-00000"
    assert searcher.pending == (p,)
    searcher.tell(p.trial_id, 0.5, {"val_accuracy": 0.5})
    assert searcher.pending == () and searcher.best == (0.5, p.genotype)


def test_make_searcher_names_the_known_searchers():
    with pytest.raises(ValueError, match="controller, evolution, random"):
        make_searcher("bayes", TINY)


@pytest.mark.parametrize("name", ["random", "evolution"])
def test_same_seed_same_proposals_other_seed_others(name):
    objective = closeness(TINY, TINY.sample(np.random.default_rng(7)))
    first = [p.genotype for p in drive(make(name, seed=3), objective, 30, workers=3)]
    again = [p.genotype for p in drive(make(name, seed=3), objective, 30, workers=3)]
    other = [p.genotype for p in drive(make(name, seed=4), objective, 30, workers=3)]
    assert first == again
    assert first != other


@pytest.mark.parametrize("name", ["random", "evolution"])
def test_never_proposes_a_genotype_twice_and_stops_when_the_space_is_exhausted(name):
    searcher = make(name)
    hashes = set()
    for _ in range(TINY_GENOTYPES):
        p = searcher.ask()
        assert p is not None and p.genotype.hash() not in hashes
        hashes.add(p.genotype.hash())
        searcher.tell(p.trial_id, 0.0)
    assert searcher.ask() is None
    assert searcher.finished


@pytest.mark.parametrize("name", ["random", "evolution"])
def test_state_through_json_continues_identically(name):
    space = get_space("amoebanet")
    objective = closeness(space, space.sample(np.random.default_rng(1)))
    original = make(name, space, population_size=8, sample_size=3) if name == "evolution" else make(name, space)
    drive(original, objective, 25, workers=3)
    pending = [original.ask() for _ in range(2)]  # saved while trials are outstanding
    state = json.loads(json.dumps(original.state_dict()))
    restored = make(name, space, seed=99, population_size=8, sample_size=3) if name == "evolution" \
        else make(name, space, seed=99)
    restored.load_state_dict(state)
    assert restored.pending == original.pending
    for searcher in (original, restored):
        for p in pending:
            searcher.tell(p.trial_id, objective(p.genotype))
    a = [p.genotype for p in drive(original, objective, 20, workers=2)]
    b = [p.genotype for p in drive(restored, objective, 20, workers=2)]
    assert a == b
    assert original.state_dict() == restored.state_dict()


def test_state_refuses_another_searcher_or_other_settings():
    state = make("evolution").state_dict()
    with pytest.raises(ValueError, match="not 'random'"):
        make("random").load_state_dict(state)
    with pytest.raises(ValueError, match="population_size"):
        make("evolution", population_size=5).load_state_dict(state)


def test_a_larger_budget_can_resume_a_finished_search():
    searcher = make("random", max_trials=3)
    drive(searcher, lambda g: 0.0, 3)
    assert searcher.finished and searcher.ask() is None
    resumed = make("random", max_trials=5)
    resumed.load_state_dict(searcher.state_dict())
    assert not resumed.finished and resumed.ask().trial_id == "random-00003"


@pytest.mark.parametrize("name", ["random", "evolution"])
def test_pickles_through_its_state(name):
    searcher = make(name)
    drive(searcher, lambda g: 0.1, 6)
    copy = pickle.loads(pickle.dumps(searcher))
    assert copy.state_dict() == searcher.state_dict()


def test_tell_refuses_unknown_and_repeated_trials():
    searcher = make("random")
    p = searcher.ask()
    with pytest.raises(ValueError, match="not pending"):
        searcher.tell("random-99999", 1.0)
    searcher.tell(p.trial_id, 1.0)
    with pytest.raises(ValueError, match="told twice"):
        searcher.tell(p.trial_id, 1.0)


@pytest.mark.parametrize("bad", [None, math.nan, math.inf])
def test_failed_trials_count_as_failures_not_scores(bad):
    searcher = make("random")
    p, q = searcher.ask(), searcher.ask()
    searcher.tell(p.trial_id, bad)
    assert searcher.num_failed == 1 and searcher.best is None
    searcher.tell(q.trial_id, 0.25)
    assert searcher.best == (0.25, q.genotype) and searcher.num_completed == 1


def test_evolution_fills_the_population_at_random_then_mutates_tournament_winners():
    space = get_space("amoebanet")
    searcher = RegularizedEvolution(space, population_size=5, sample_size=2, seed=0)
    first = [searcher.ask() for _ in range(5)]
    assert all(searcher._pending[p.trial_id].extra["origin"] == "initial" for p in first)
    # Everything is still running: nothing to mutate yet, so another random sample.
    extra = searcher.ask()
    assert searcher._pending[extra.trial_id].extra["origin"] == "random"
    for i, p in enumerate(first):
        searcher.tell(p.trial_id, float(i))
    child = searcher.ask()
    notes = searcher._pending[child.trial_id].extra
    assert notes["origin"] == "mutation"
    parent = dict((tid, g) for tid, g, _ in searcher.population)[notes["parent"]]
    differing = sum(a != b for a, b in zip(space.encode(parent), space.encode(child.genotype)))
    assert 1 <= differing <= 2  # one branch changed; canonical branch order may move its partner


def test_evolution_ages_out_the_oldest_not_the_worst():
    searcher = RegularizedEvolution(TINY, population_size=3, sample_size=2, seed=0)
    proposals = [searcher.ask() for _ in range(3)]
    for p, score in zip(proposals, (9.0, 1.0, 2.0)):
        searcher.tell(p.trial_id, score)
    newer = searcher.ask()
    searcher.tell(newer.trial_id, 0.0)
    ids = [tid for tid, _, _ in searcher.population]
    assert ids == [proposals[1].trial_id, proposals[2].trial_id, newer.trial_id]


def test_evolution_keeps_failures_out_of_the_population_and_replaces_failed_initial_samples():
    searcher = RegularizedEvolution(TINY, population_size=3, sample_size=2, seed=0)
    for i in range(3):
        p = searcher.ask()
        searcher.tell(p.trial_id, None if i == 0 else 1.0)
    assert len(searcher.population) == 2
    p = searcher.ask()  # the failed initial sample is replaced by a random one
    assert searcher._pending[p.trial_id].extra["origin"] == "initial"
    searcher.tell(p.trial_id, 1.0)
    p = searcher.ask()
    assert searcher._pending[p.trial_id].extra["origin"] == "mutation"


def test_evolution_validates_its_settings():
    with pytest.raises(ValueError, match="sample_size"):
        RegularizedEvolution(TINY, population_size=3, sample_size=4)
    with pytest.raises(ValueError, match="population_size"):
        RegularizedEvolution(TINY, population_size=0, sample_size=1)


def test_evolution_beats_random_on_a_fake_objective():
    space = get_space("amoebanet")
    results = {"random": [], "evolution": []}
    for seed in range(3):
        objective = closeness(space, space.sample(np.random.default_rng(100 + seed)))
        for name in results:
            kw = {"population_size": 20, "sample_size": 5} if name == "evolution" else {}
            searcher = make_searcher(name, space, seed=seed, **kw)
            scores = [objective(p.genotype) for p in drive(searcher, objective, 200, workers=4)]
            results[name].append(max(scores))
    assert np.mean(results["evolution"]) > np.mean(results["random"]) + 0.05


# ----------------------------------------------------------------------------- scores

@pytest.mark.parametrize("raw, clean", [
    (0.5, 0.5), (np.float32(0.25), 0.25), (3, 3.0), (None, None), (math.nan, None),
    (math.inf, None), (-math.inf, None), (True, None), ("0.5", None), ([0.5], None),
])
def test_clean_score_is_a_finite_float_or_none(raw, clean):
    from searchers import clean_score

    assert clean_score(raw) == clean


# ----------------------------------------------------------------------------- observe / warm start

def test_random_search_never_proposes_an_observed_genotype():
    searcher = make("random")
    observed = [TINY.sample(np.random.default_rng(i)) for i in range(30)]
    for k, genotype in enumerate(observed):
        searcher.observe(genotype, None if k % 3 == 0 else float(k))
    hashes = {g.hash() for g in observed}
    proposals = [searcher.ask() for _ in range(TINY_GENOTYPES - len(hashes))]
    assert all(p is not None and p.genotype.hash() not in hashes for p in proposals)
    assert searcher.ask() is None and searcher.finished
    assert searcher.best == (29.0, observed[29])
    assert (searcher.num_observed, searcher.num_completed, searcher.num_proposed) == \
        (30, 0, TINY_GENOTYPES - len(hashes))


def test_observed_results_fill_evolutions_population_so_it_starts_with_tournaments():
    searcher = make("evolution", population_size=4, sample_size=2)
    observed = [TINY.sample(np.random.default_rng(i)) for i in range(5)]
    for k, genotype in enumerate(observed):
        searcher.observe(genotype, float(k), trial_id=f"old-{k}")
    assert [tid for tid, _, _ in searcher.population] == ["old-1", "old-2", "old-3", "old-4"]
    p = searcher.ask()
    notes = searcher._pending[p.trial_id].extra
    assert notes["origin"] == "mutation" and notes["parent"] in {"old-1", "old-2", "old-3", "old-4"}
    assert p.trial_id == "evolution-00000" and p.genotype not in observed


def test_a_few_observed_results_leave_the_rest_of_the_population_to_random_samples():
    searcher = make("evolution", population_size=4, sample_size=2)
    searcher.observe(TINY.sample(np.random.default_rng(0)), 1.0)
    searcher.observe(TINY.sample(np.random.default_rng(1)), None)  # failed: takes no slot
    origins = [searcher._pending[searcher.ask().trial_id].extra["origin"] for _ in range(3)]
    assert origins == ["initial", "initial", "initial"]


def test_observe_relabels_a_fitting_genotype_and_refuses_one_that_does_not_fit():
    from search_space import get_space

    searcher = make("random", space=get_space("article"))
    amoeba = get_space("amoebanet").sample(np.random.default_rng(0))  # fits article too
    searcher.observe(amoeba, 0.5)
    assert searcher.best[1].space == "article"
    with pytest.raises(ValueError, match="5 blocks; space 'tiny_searchers' has 1"):
        make("random").observe(get_space("nasnet").sample(np.random.default_rng(0)), 0.5)


def test_state_keeps_observed_results():
    searcher = make("evolution")
    searcher.observe(TINY.sample(np.random.default_rng(0)), 0.5)
    drive(searcher, lambda g: 0.1, 3)
    restored = make("evolution", seed=9)
    restored.load_state_dict(json.loads(json.dumps(searcher.state_dict())))
    assert restored.num_observed == 1 and restored.state_dict() == searcher.state_dict()
    assert [p.genotype for p in drive(restored, lambda g: 0.1, 5)] == \
        [p.genotype for p in drive(searcher, lambda g: 0.1, 5)]


def test_warm_start_observes_every_result_and_counts_the_scores():
    from searchers import warm_start

    searcher = make("evolution", population_size=3, sample_size=2)
    results = [(TINY.sample(np.random.default_rng(i)), score)
               for i, score in enumerate((0.1, None, 0.3, 0.2))]
    results[0] = (results[0][0].to_dict(), 0.1)  # a trials.jsonl record's genotype
    assert warm_start(searcher, results) == 3
    assert [score for _, _, score in searcher.population] == [0.1, 0.3, 0.2]


@pytest.mark.parametrize("results, words", [
    ([], "no results to start from"),
    ([("g", None)], "expected a Genotype or its dict, got str"),
    ([(None, 0.5)], "expected a Genotype or its dict, got NoneType"),
    ([0.5], "result 0 is not a \\(genotype, score\\) pair"),
    ([({"space": "tiny_searchers"}, 0.5)], "result 0 is not a genotype"),
])
def test_warm_start_refuses_bad_results_in_one_line(results, words):
    from searchers import warm_start

    with pytest.raises(ValueError, match=words) as error:
        warm_start(make("random"), results)
    assert "\n" not in str(error.value)


def test_warm_start_refuses_another_space_and_changes_nothing():
    from searchers import warm_start

    searcher = make("evolution")
    before = searcher.state_dict()
    good = (TINY.sample(np.random.default_rng(0)), 0.5)
    other = (get_space("amoebanet").sample(np.random.default_rng(0)), 0.5)
    with pytest.raises(ValueError, match="result 1 is a genotype of space 'amoebanet'; this "
                                         "search is in space 'tiny_searchers'"):
        warm_start(searcher, [good, other])
    with pytest.raises(ValueError, match="none of the 2 results has a score"):
        warm_start(searcher, [(good[0], None), (good[0], math.nan)])
    assert searcher.state_dict() == before


# ----------------------------------------------------------------------------- evolution's budget

@pytest.mark.parametrize("trials, population, sample", [
    (20, 10, 5), (150, 15, 7), (300, 30, 15), (500, 50, 25), (5000, 50, 25),
])
def test_evolution_for_budget_sizes_the_population_to_the_trials(trials, population, sample):
    searcher = RegularizedEvolution.for_budget(TINY, trials, seed=3)
    assert (searcher.population_size, searcher.sample_size) == (population, sample)
    assert (searcher.max_trials, searcher.seed) == (trials, 3)


def test_evolution_for_budget_keeps_given_sizes_and_fits_the_tournament_to_a_given_population():
    assert RegularizedEvolution.for_budget(TINY, 300, population_size=40).config() == \
        {"population_size": 40, "sample_size": 20}
    assert RegularizedEvolution.for_budget(TINY, 300, population_size=3).config() == \
        {"population_size": 3, "sample_size": 2}
    assert RegularizedEvolution.for_budget(TINY, 300, population_size=1).config() == \
        {"population_size": 1, "sample_size": 1}
    assert RegularizedEvolution.for_budget(TINY, 300, population_size=20, sample_size=3,
                                           max_trials=50).max_trials == 50
    with pytest.raises(ValueError, match="trials must be an int >= 1"):
        RegularizedEvolution.for_budget(TINY, 0)


def test_evolution_warns_when_the_budget_leaves_no_mutations():
    from searchers import BudgetWarning

    with pytest.warns(BudgetWarning, match="8 trials do not exceed the population of 10, which "
                                           "leaves 0 mutations"):
        searcher = RegularizedEvolution.for_budget(TINY, 8)
    assert searcher.budget_note(11) is None and searcher.budget_note(10) is not None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RegularizedEvolution.for_budget(TINY, 50)

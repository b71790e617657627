"""Random search, regularized evolution and the shared ask/tell bookkeeping, on fake objectives."""

import json
import math
import pickle

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

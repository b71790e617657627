"""The RL controller: its numpy sampler against its Keras model, learning, async updates, state."""

import json
import pickle

import numpy as np
import pytest

from search_space import SearchSpace
from searchers import Controller, make_searcher

# 2 ops, 1 block per cell: 8 decisions, 100 distinct genotypes.
TINY = SearchSpace("tiny_controller", ops=("identity", "conv_3x3"), num_blocks=1)
# 3 ops, 2 blocks and both combines: 22 decisions, enough to learn something.
SMALL = SearchSpace("small_controller", ops=("identity", "conv_3x3", "max_pool_3x3"), num_blocks=2,
                    combines=("add", "concat"))


def controller(space=TINY, seed=0, **kw):
    kw.setdefault("lstm_units", 8)
    kw.setdefault("batch_size", 2)
    return Controller(space, seed=seed, **kw)


def closeness(space, target):
    goal = np.asarray(space.encode(target))
    return lambda genotype: float(np.mean(np.asarray(space.encode(genotype)) == goal))


def test_numpy_sampler_matches_the_keras_policy():
    c = controller(SMALL, lstm_units=16)
    decisions, log_prob, logits = c._numpy_policy.run(np.random.default_rng(0))
    tokens = c._layout.tokens(np.asarray([decisions])).astype("int32")
    keras_logits = np.asarray(c._model(tokens))[0]
    assert np.allclose(keras_logits, logits, atol=1e-5)
    # Impossible choices of a step (beyond its size) are masked out.
    sizes = SMALL.decision_sizes()
    assert all((keras_logits[t, s:] < -1e8).all() for t, s in enumerate(sizes))
    shifted = keras_logits - keras_logits.max(-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    assert log_prob == pytest.approx(log_softmax[np.arange(len(sizes)), decisions].sum(), abs=1e-4)


def test_same_seed_same_proposals_other_seed_others():
    def run(seed):
        c = controller(seed=seed, batch_size=3)
        genotypes = []
        for i in range(6):  # two policy updates
            p = c.ask()
            c.tell(p.trial_id, float(i % 3))
            genotypes.append(p.genotype)
        return genotypes

    first = run(5)
    assert run(5) == first
    assert [p.genotype for p in _asks(controller(seed=6), 6)] != first


def _asks(searcher, n):
    return [searcher.ask() for _ in range(n)]


@pytest.mark.parametrize("algorithm", ["reinforce", "ppo"])
def test_state_through_json_continues_identically(algorithm):
    objective = closeness(SMALL, SMALL.sample(np.random.default_rng(3)))
    original = controller(SMALL, algorithm=algorithm, batch_size=3)
    outstanding = _asks(original, 4)
    for p in outstanding[:2]:
        original.tell(p.trial_id, objective(p.genotype))
    for _ in range(3):  # updates happen; a score stays buffered; two trials stay pending
        for p in _asks(original, 2):
            original.tell(p.trial_id, objective(p.genotype))
    assert original.num_updates >= 2
    state = json.loads(json.dumps(original.state_dict()))
    restored = controller(SMALL, seed=42, algorithm=algorithm, batch_size=3)
    restored.load_state_dict(state)

    def continue_(searcher):
        proposals = []
        for p in searcher.pending:
            searcher.tell(p.trial_id, objective(p.genotype))
        for _ in range(8):
            p = searcher.ask()
            searcher.tell(p.trial_id, objective(p.genotype))
            proposals.append(p.genotype)
        return proposals

    assert continue_(original) == continue_(restored)
    assert original.num_updates == restored.num_updates


def test_scores_arriving_out_of_order_update_in_batches_and_failures_are_dropped():
    c = controller(batch_size=3)
    proposals = _asks(c, 5)
    c.tell(proposals[4].trial_id, 0.9)
    c.tell(proposals[0].trial_id, None)  # failed: no reward, not in any batch
    c.tell(proposals[2].trial_id, 0.1)
    assert c.num_updates == 0
    c.tell(proposals[1].trial_id, 0.5)
    assert c.num_updates == 1 and c.num_failed == 1
    c.tell(proposals[3].trial_id, float("nan"))
    assert c.num_updates == 1 and c.num_failed == 2 and c.pending == ()


def test_never_repeats_itself_even_when_the_policy_does():
    c = controller()
    hashes = {p.genotype.hash() for p in _asks(c, TINY.size(canonical=True))}
    assert len(hashes) == TINY.size(canonical=True)
    assert c.ask() is None and c.finished


def test_learns_to_prefer_the_target():
    objective = closeness(SMALL, SMALL.sample(np.random.default_rng(11)))
    c = controller(SMALL, seed=1, lstm_units=32, batch_size=5, learning_rate=0.05)
    scores = []
    for _ in range(150):
        p = c.ask()
        scores.append(objective(p.genotype))
        c.tell(p.trial_id, scores[-1])
    assert np.mean(scores[-30:]) > np.mean(scores[:30]) + 0.15


def test_pickles_through_its_state():
    c = controller(batch_size=10)
    for p in _asks(c, 3):
        c.tell(p.trial_id, 0.3)
    copy = pickle.loads(pickle.dumps(c))
    assert copy.state_dict() == c.state_dict()


def test_validates_its_settings():
    with pytest.raises(ValueError, match="algorithm"):
        Controller(TINY, algorithm="a2c")
    with pytest.raises(ValueError, match="batch_size"):
        Controller(TINY, batch_size=0)


def test_make_searcher_builds_a_controller():
    c = make_searcher("controller", TINY, seed=2, lstm_units=4, max_trials=1)
    assert isinstance(c, Controller)
    assert c.ask() is not None and c.finished


def test_observed_results_move_the_baseline_and_train_the_policy():
    objective = closeness(SMALL, SMALL.sample(np.random.default_rng(11)))
    c = controller(SMALL, seed=1, lstm_units=32, batch_size=5, learning_rate=0.05)

    def policy_score(rng):  # mean objective of what the policy samples now
        return np.mean([objective(SMALL.decode(c._numpy_policy.run(rng)[0])) for _ in range(200)])

    before = policy_score(np.random.default_rng(0))
    rng = np.random.default_rng(1)
    observed = [SMALL.sample(rng) for _ in range(150)]  # another search's random samples
    for genotype in observed:
        c.observe(genotype, objective(genotype))
    assert (c.num_updates, c.num_observed, c.num_proposed) == (30, 150, 0)
    assert c._baseline == pytest.approx(np.mean([objective(g) for g in observed]), abs=0.1)
    assert policy_score(np.random.default_rng(0)) > before + 0.1
    assert c.ask().genotype not in observed  # observed: never proposed


def test_an_observed_failure_is_remembered_but_not_learned():
    c = controller(batch_size=1)
    genotype = TINY.sample(np.random.default_rng(0))
    c.observe(genotype, None)
    assert c.num_updates == 0 and c.best is None
    assert all(p.genotype != genotype for p in _asks(c, TINY.size(canonical=True) - 1))
    assert c.ask() is None

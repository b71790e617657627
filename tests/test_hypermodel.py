"""CellHyperModel: keras-tuner's own tuners over a cell search space."""

import keras_tuner
import numpy as np
import pytest

from nasplay.hypermodel import CellHyperModel
from search_space.spaces import SearchSpace, get_space

TINY_SPACE = SearchSpace("kt_tiny", ops=("identity", "conv_1x1", "avg_pool_3x3"), num_blocks=2)


@pytest.mark.parametrize("name", ["nasnet", "amoebanet", "darts"])
def test_one_unordered_int_choice_per_decision(name):
    space = get_space(name)
    hypermodel = CellHyperModel(name)
    hp = keras_tuner.HyperParameters()
    genotype = hypermodel.genotype(hp)  # declares every choice at its default (the first value)
    assert genotype == space.decode([0] * len(space.decision_sizes()))
    choices = hp.space
    assert [c.name for c in choices] == space.decision_labels()
    assert [len(c.values) for c in choices] == space.decision_sizes()
    assert all(not c.ordered for c in choices)


def test_set_values_decode_to_that_genotype():
    space = get_space("nasnet")
    target = space.sample(np.random.default_rng(0))
    hp = keras_tuner.HyperParameters()
    for name, value in zip(space.decision_labels(), space.encode(target)):
        hp.values[name] = value
    assert CellHyperModel(space).genotype(hp) == target


def test_a_genotype_put_in_the_trial_by_searcher_oracle_is_built_as_it_is():
    space = get_space("amoebanet")
    proposed = space.sample(np.random.default_rng(3))
    hp = keras_tuner.HyperParameters()
    hp.Fixed("genotype", proposed.to_json(indent=None))
    assert CellHyperModel(space).genotype(hp) == proposed
    assert [c.name for c in hp.space] == ["genotype"]  # no decision choices to fill at random
    with pytest.raises(ValueError, match="space 'kt_tiny' has 2 blocks per cell"):
        CellHyperModel(TINY_SPACE).genotype(hp)


def test_bad_space():
    with pytest.raises(ValueError, match="unknown space"):
        CellHyperModel("no_such_space")


@pytest.mark.slow
def test_random_search_runs_two_trials(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 8, 8, 3)).astype("float32")
    y = rng.integers(0, 3, size=8)
    hypermodel = CellHyperModel(TINY_SPACE, filters=4, cells_per_stage=0, num_classes=3,
                                input_shape=(8, 8, 3))
    tuner = keras_tuner.RandomSearch(hypermodel, objective="val_accuracy", max_trials=2, seed=0,
                                     directory=tmp_path, project_name="kt")
    tuner.search(x, y, validation_data=(x, y), epochs=1, batch_size=4, verbose=0)
    assert len(tuner.oracle.trials) == 2
    best = hypermodel.genotype(tuner.get_best_hyperparameters()[0])
    TINY_SPACE.validate(best)

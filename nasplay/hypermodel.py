"""A keras-tuner ``HyperModel`` over a cell search space, for keras-tuner's own tuners.

    import keras_tuner
    from nasplay.hypermodel import CellHyperModel

    hypermodel = CellHyperModel("amoebanet", filters=16, cells_per_stage=1)
    tuner = keras_tuner.BayesianOptimization(hypermodel, objective="val_accuracy", max_trials=20)
    tuner.search(x, y, validation_data=(x_val, y_val), epochs=3)
    best = hypermodel.genotype(tuner.get_best_hyperparameters()[0])

Every decision of the space's integer encoding (``SearchSpace.decision_sizes``) becomes one
unordered ``hp.Choice`` of ints (keras-tuner's ``Choice`` holds only int/float/str/bool), named
after what it decides (``SearchSpace.decision_labels``, e.g. ``normal[2].op_a``);
``SearchSpace.decode`` turns the values into a genotype. That is for keras-tuner's own RandomSearch,
BayesianOptimization or Hyperband. Under ``searchers.kt_oracle.SearcherOracle`` (*our* searchers
driving keras-tuner) the trial carries the proposed genotype itself: the hypermodel builds exactly
that one and declares no decision choices, which keras-tuner would otherwise fill at random.
"""

from __future__ import annotations

import keras
import keras_tuner

from cells import build_network
from search_space.genotype import Genotype
from search_space.spaces import SPACE_TYPES, SearchSpace, get_space
from searchers.kt_oracle import genotype_from_hp, has_genotype


class CellHyperModel(keras_tuner.HyperModel):
    """Builds and compiles ``cells.build_network`` for the genotype a trial's choices encode.

    Args:
        space: a ``SearchSpace`` or ``EdgeSpace`` (``nb201``), or a registered one's name.
        filters, cells_per_stage, stem_multiplier, num_classes, input_shape, drop_path_rate:
            passed to ``build_network`` (a small proxy network by default; ``stem_multiplier``
            None is build_network's: 3 for two-cell genotypes, 1 for NAS-Bench-201's).
        learning_rate: of the Adam optimizer the model is compiled with.
    """

    def __init__(self, space: SearchSpace | str, filters: int = 16, cells_per_stage: int = 1,
                 stem_multiplier: int | None = None, num_classes: int = 10,
                 input_shape=(32, 32, 3), drop_path_rate: float = 0.0,
                 learning_rate: float = 1e-3, name=None, tunable: bool = True):
        super().__init__(name=name, tunable=tunable)
        self.space = get_space(space) if isinstance(space, str) else space
        if not isinstance(self.space, SPACE_TYPES):  # a cell space, or an edge one (nb201)
            raise ValueError(f"space must be a SearchSpace, an EdgeSpace or a registered space "
                             f"name, got {type(space).__name__}")
        self.network_kwargs = {"filters": filters, "cells_per_stage": cells_per_stage,
                               "stem_multiplier": stem_multiplier, "num_classes": num_classes,
                               "input_shape": tuple(input_shape), "drop_path_rate": drop_path_rate}
        self.learning_rate = learning_rate

    def genotype(self, hp: keras_tuner.HyperParameters) -> Genotype:
        """The genotype a ``SearcherOracle`` proposed (checked against this space), or else:
        declare one ``Choice`` per decision (if not yet declared) and decode their values."""
        if has_genotype(hp):
            return self.space.validate(genotype_from_hp(hp))
        decisions = [hp.Choice(label, list(range(size)), ordered=False)
                     for label, size in zip(self.space.decision_labels(), self.space.decision_sizes())]
        return self.space.decode(decisions)

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        model = build_network(self.genotype(hp), **self.network_kwargs)
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model

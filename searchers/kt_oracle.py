"""Run any of our searchers as a keras-tuner ``Oracle``.

    import keras_tuner
    from searchers import RegularizedEvolution
    from searchers.kt_oracle import SearcherOracle, genotype_from_hp

    class NASTuner(keras_tuner.Tuner):
        def run_trial(self, trial, x, y, validation_data):
            hp = trial.hyperparameters
            model = cells.build_network(genotype_from_hp(hp), filters=hp.Choice("filters", [8, 16]))
            ...
            return {"val_accuracy": float(val_accuracy)}

    oracle = SearcherOracle(RegularizedEvolution(space, 30, 10, max_trials=100), objective="val_accuracy")
    NASTuner(oracle=oracle, directory="kt", project_name="nas").search(x, y, validation_data=...)

keras-tuner's ``Choice`` holds only int/float/str/bool, so a trial's hyperparameters carry the
genotype as one JSON string under ``"genotype"`` (``genotype_from_hp`` reads it back). The oracle
declares it (``Fixed``, a valid genotype of the space) before the Tuner is built, so the build
keras-tuner runs on the bare search space when a Tuner is constructed gets a genotype too.
``nasplay.hypermodel.CellHyperModel`` reads it as well, so it builds exactly the genotype the
searcher proposed.

Every other hyperparameter the model declares (learning rate, width, ...) is drawn at random,
seeded (``seed``, default the searcher's), and the generator's position is saved with the
oracle's state like the searcher's, so a resumed search continues both sequences and repeats
nothing.

Scores follow keras-tuner's rules: the objective defaults to keras-tuner's own (``None``: a bare
float returned by ``run_trial``, minimized); a named objective takes keras-tuner's direction. The
searcher is told a trial's score when keras-tuner ends it for good: ``COMPLETED`` with its score
(negated for "min"; our searchers maximize), ``FAILED`` as ``None``; an ``INVALID`` trial that
keras-tuner will retry stays pending. keras-tuner makes a NaN score ``INVALID``; an infinite one
is treated the same way here, as the searcher treats it (failed), so that keras-tuner's best
trial and the searcher's best agree. The searcher's state goes into keras-tuner's
``oracle.json``, so ``overwrite=False`` resumes the search where it stopped.
"""

from __future__ import annotations

import math

import keras_tuner
from keras_tuner.engine.trial import TrialStatus

from search_space import Genotype

from .base import MODES, BaseSearcher, Searcher, clean_score, oriented

GENOTYPE_KEY = "genotype"


def genotype_from_hp(hyperparameters: keras_tuner.HyperParameters) -> Genotype:
    """The genotype a ``SearcherOracle`` put into a trial's hyperparameters."""
    if GENOTYPE_KEY not in hyperparameters.values:
        raise ValueError(f"these hyperparameters hold no {GENOTYPE_KEY!r}: genotype_from_hp reads "
                         f"the genotype a SearcherOracle proposes; for keras-tuner's own tuners "
                         f"use nasplay.hypermodel.CellHyperModel")
    return Genotype.from_json(hyperparameters.values[GENOTYPE_KEY])


def has_genotype(hyperparameters: keras_tuner.HyperParameters) -> bool:
    """Whether a ``SearcherOracle`` put a genotype into these hyperparameters."""
    return GENOTYPE_KEY in hyperparameters.values


def _objective_directions(objective) -> list[str]:
    objectives = getattr(objective, "objectives", None) or [objective]
    return [o.direction for o in objectives]


class SearcherOracle(keras_tuner.Oracle):
    """A keras-tuner ``Oracle`` that asks one of our searchers; see the module docstring.

    The searcher is ``self.wrapped`` (as in ``TuneSearcher``). ``max_trials`` defaults to the
    searcher's and ``seed`` to its seed; other keyword arguments go to ``Oracle``
    (``hyperparameters``, ``max_retries_per_trial``, ``max_consecutive_failed_trials``, ...).
    """

    def __init__(self, searcher: BaseSearcher, objective=None, max_trials: int | None = None,
                 seed: int | None = None, **kwargs):
        if not isinstance(searcher, Searcher) or not hasattr(searcher, "space"):
            raise ValueError(f"SearcherOracle wraps one of our searchers (searchers.RandomSearch, "
                             f"RegularizedEvolution, Controller), got {type(searcher).__name__}")
        if max_trials is None:
            max_trials = getattr(searcher, "max_trials", None)
        seed = searcher.seed if seed is None else int(seed)
        super().__init__(objective=objective, max_trials=max_trials, seed=seed, **kwargs)
        bad = [d for d in _objective_directions(self.objective) if d not in MODES]
        if bad:
            raise ValueError(f"objective direction must be 'min' or 'max', got {bad[0]!r} "
                             f"({self.objective})")
        self.seed = self._seed_state = seed  # Oracle takes seed 0 for "no seed"
        self.wrapped = searcher
        self._proposals: dict[str, str] = {}  # keras-tuner trial id -> our proposal's trial id
        space = searcher.space
        placeholder = space.decode([0] * len(space.decision_sizes()))
        self.hyperparameters.Fixed(GENOTYPE_KEY, placeholder.to_json(indent=None))

    def populate_space(self, trial_id: str) -> dict:
        if self.wrapped.finished:
            return {"status": TrialStatus.STOPPED, "values": None}
        proposal = self.wrapped.ask()
        if proposal is None:
            status = TrialStatus.STOPPED if self.wrapped.finished else TrialStatus.IDLE
            return {"status": status, "values": None}
        self._proposals[trial_id] = proposal.trial_id
        values = self._other_values()
        values[GENOTYPE_KEY] = proposal.genotype.to_json(indent=None)
        return {"status": TrialStatus.RUNNING, "values": values}

    def _other_values(self) -> dict:
        """A seeded draw of every active hyperparameter but the genotype (keras-tuner would fill
        any value left out with an unseeded draw)."""
        hps = keras_tuner.HyperParameters()
        for hp in self.hyperparameters.space:
            hps.merge([hp])
            if hp.name != GENOTYPE_KEY and hps.is_active(hp):
                hps.values[hp.name] = hp.random_sample(self._seed_state)
                self._seed_state += 1
        return dict(hps.values)

    def score_trial(self, trial) -> None:
        """keras-tuner's score; an infinite one becomes NaN, which keras-tuner marks INVALID."""
        super().score_trial(trial)
        if trial.score is not None and clean_score(trial.score) is None:
            trial.score = math.nan

    @keras_tuner.synchronized
    def end_trial(self, trial) -> None:
        super().end_trial(trial)
        ended = self.trials[trial.trial_id]
        if ended.status not in (TrialStatus.COMPLETED, TrialStatus.FAILED):
            return  # INVALID: queued for a retry, still pending for the searcher
        proposal_id = self._proposals.pop(ended.trial_id, None)
        if proposal_id is None:
            return
        score = None
        if ended.status == TrialStatus.COMPLETED:
            score = oriented(ended.score, self.objective.direction,
                             f"trial {ended.trial_id}'s objective {self.objective.name!r}")
        self.wrapped.tell(proposal_id, score)
        self.save()  # super().end_trial saved the state before this tell

    def get_state(self) -> dict:
        state = super().get_state()
        state["searcher"] = self.wrapped.state_dict()
        state["proposals"] = dict(self._proposals)
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.wrapped.load_state_dict(state["searcher"])
        self._proposals = dict(state["proposals"])

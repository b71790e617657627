"""Run any of our searchers as a keras-tuner ``Oracle``.

    import keras_tuner
    from searchers import RegularizedEvolution
    from searchers.kt_oracle import SearcherOracle, genotype_from_hp

    class NASTuner(keras_tuner.Tuner):
        def run_trial(self, trial, x, y, validation_data):
            genotype = genotype_from_hp(trial.hyperparameters)
            model = cells.build_network(genotype)
            ...
            return {"val_accuracy": float(val_accuracy)}

    oracle = SearcherOracle(RegularizedEvolution(space, 30, 10, max_trials=100), objective="val_accuracy")
    NASTuner(oracle=oracle, directory="kt", project_name="nas").search(x, y, validation_data=...)

keras-tuner's ``Choice`` holds only int/float/str/bool, so a trial's hyperparameters carry the
genotype as one JSON string under ``"genotype"`` (``genotype_from_hp`` reads it back). The
searcher is told a trial's score when keras-tuner ends it for good: ``COMPLETED`` with its score
(negated when the objective's direction is "min"; our searchers maximize), ``FAILED`` as ``None``;
an ``INVALID`` trial that keras-tuner will retry stays pending. The searcher's state goes into
keras-tuner's ``oracle.json``, so ``overwrite=False`` resumes the search where it stopped.
"""

from __future__ import annotations

import math

import keras_tuner
from keras_tuner.engine.trial import TrialStatus

from search_space import Genotype

from .base import BaseSearcher

GENOTYPE_KEY = "genotype"


def genotype_from_hp(hyperparameters: keras_tuner.HyperParameters) -> Genotype:
    """The genotype a ``SearcherOracle`` put into a trial's hyperparameters."""
    return Genotype.from_json(hyperparameters.get(GENOTYPE_KEY))


class SearcherOracle(keras_tuner.Oracle):
    """A keras-tuner ``Oracle`` that asks one of our searchers; see the module docstring.

    ``max_trials`` defaults to the searcher's; other keyword arguments go to ``Oracle``
    (``max_retries_per_trial``, ``max_consecutive_failed_trials``, ...).
    """

    def __init__(self, searcher: BaseSearcher, objective="val_accuracy", max_trials: int | None = None, **kwargs):
        if max_trials is None:
            max_trials = getattr(searcher, "max_trials", None)
        super().__init__(objective=objective, max_trials=max_trials, **kwargs)
        self.searcher = searcher
        self._proposals: dict[str, str] = {}  # keras-tuner trial id -> our proposal's trial id

    def populate_space(self, trial_id: str) -> dict:
        if self.searcher.finished:
            return {"status": TrialStatus.STOPPED, "values": None}
        proposal = self.searcher.ask()
        if proposal is None:
            status = TrialStatus.STOPPED if self.searcher.finished else TrialStatus.IDLE
            return {"status": status, "values": None}
        self._proposals[trial_id] = proposal.trial_id
        return {"status": TrialStatus.RUNNING, "values": {GENOTYPE_KEY: proposal.genotype.to_json(indent=None)}}

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
        if ended.status == TrialStatus.COMPLETED and ended.score is not None and math.isfinite(ended.score):
            score = -ended.score if self.objective.direction == "min" else ended.score
        self.searcher.tell(proposal_id, score)
        self.save()  # super().end_trial saved the state before this tell

    def get_state(self) -> dict:
        state = super().get_state()
        state["searcher"] = self.searcher.state_dict()
        state["proposals"] = dict(self._proposals)
        return state

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        self.searcher.load_state_dict(state["searcher"])
        self._proposals = dict(state["proposals"])

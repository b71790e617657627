"""Run any of our searchers as a Ray Tune search algorithm.

    from ray import tune
    from searchers import RegularizedEvolution
    from searchers.ray_adapter import TuneSearcher

    search = TuneSearcher(RegularizedEvolution(space, population_size=30, sample_size=10, max_trials=300))
    tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(search_alg=search, num_samples=300,
                                                              max_concurrent_trials=4))

Each trial's config is ``{"genotype": Genotype.to_dict(), "trial_id": <our proposal's id>}``;
the trainable rebuilds the genotype with ``Genotype.from_dict(config["genotype"])`` and reports
``metric`` with ``ray.tune.report``. A trial that errors, or ends without reporting ``metric``
(or reports NaN), is told to the searcher as failed.

State: ``save``/``restore`` write and read JSON (temp file + ``os.replace``, so a crash never
leaves half a file): the searcher's ``state_dict`` plus the map from Ray trial ids to our
proposals, which is what lets a restored Tune run tell results of trials that were running.
Tune calls them itself through ``save_to_dir``/``restore_from_dir`` (``Tuner.restore``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile

from ray.tune.search import Searcher as RaySearcher

from .base import BaseSearcher

logger = logging.getLogger(__name__)


class TuneSearcher(RaySearcher):
    """A ``ray.tune.search.Searcher`` around one of our searchers.

    Our searchers maximize; with ``mode="min"`` the negated metric is told. The searcher is
    ``self.wrapped``.
    """

    # JSON, not Ray's default pickle; Ray finds the file by this pattern in restore_from_dir.
    CKPT_FILE_TMPL = "searcher-state-{}.json"

    def __init__(self, searcher: BaseSearcher, metric: str = "val_accuracy", mode: str = "max"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        super().__init__(metric=metric, mode=mode)
        # Not ``self.searcher``: Ray's SearchGenerator takes any object with a ``searcher``
        # attribute for a wrapper (like ConcurrencyLimiter) and saves what it wraps instead.
        self.wrapped = searcher
        self._proposals: dict[str, str] = {}  # Ray trial id -> our proposal's trial id

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        """Take ``metric``/``mode`` from ``TuneConfig``. Returns False when ``param_space`` is
        given: its constants are still merged into every config by Tune, but distributions
        (``tune.choice`` ...) are refused by Tune with its own message, since we do not sample
        them."""
        if metric:
            self._metric = metric
        if mode:
            if mode not in ("min", "max"):
                raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
            self._mode = mode
        return not config

    def suggest(self, trial_id: str) -> dict | str | None:
        if self.wrapped.finished:
            return RaySearcher.FINISHED
        proposal = self.wrapped.ask()
        if proposal is None:
            return RaySearcher.FINISHED if self.wrapped.finished else None
        self._proposals[trial_id] = proposal.trial_id
        return {"genotype": proposal.genotype.to_dict(), "trial_id": proposal.trial_id}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        proposal_id = self._proposals.pop(trial_id, None)
        if proposal_id is None:
            logger.warning("TuneSearcher: trial %s was not suggested by this searcher; ignored", trial_id)
            return
        self.wrapped.tell(proposal_id, self._score(result, error), result)

    def _score(self, result: dict | None, error: bool) -> float | None:
        if error or not result or self.metric not in result:
            return None
        try:
            value = float(result[self.metric])
        except (TypeError, ValueError):
            return None
        if not math.isfinite(value):
            return None
        return -value if self.mode == "min" else value

    # ----------------------------------------------------------------- state

    def get_state(self) -> dict:
        return {
            "metric": self.metric,
            "mode": self.mode,
            "proposals": dict(self._proposals),
            "searcher": self.wrapped.state_dict(),
        }

    def set_state(self, state: dict) -> None:
        self._metric = state["metric"]
        self._mode = state["mode"]
        self._proposals = dict(state["proposals"])
        self.wrapped.load_state_dict(state["searcher"])

    def save(self, checkpoint_path: str) -> None:
        directory = os.path.dirname(os.path.abspath(checkpoint_path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".searcher-", suffix=".json.tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.get_state(), f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, checkpoint_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            self.set_state(json.load(f))

    def __repr__(self) -> str:
        return f"TuneSearcher({type(self.wrapped).__name__}, metric={self.metric!r}, mode={self.mode!r})"


"""Run any of our searchers as a Ray Tune search algorithm.

    from ray import tune
    from searchers import RegularizedEvolution
    from searchers.ray_adapter import TuneSearcher

    search = TuneSearcher(RegularizedEvolution(space, population_size=30, sample_size=10, max_trials=300))
    tuner = tune.Tuner(trainable, tune_config=tune.TuneConfig(
        search_alg=search, metric="val_accuracy", mode="max", num_samples=300, max_concurrent_trials=4),
        param_space={"epochs": 3})

Each trial's config is ``{"genotype": Genotype.to_dict(), "trial_id": <our proposal's id>}`` plus
the constants of ``param_space``; the trainable rebuilds the genotype with
``Genotype.from_dict(config["genotype"])`` and reports ``metric`` with ``ray.tune.report``.

Metric and mode follow Ray's searchers: ``TuneSearcher(searcher, metric=None, mode=None)`` takes
them from ``TuneConfig`` when Tune passes them on (``set_search_properties``), and an argument
given here wins over ``TuneConfig``. Tune passes them on only when the Tuner has a
``param_space`` (any constants will do); without one, give them here. Neither: a ``ValueError``
at the first suggestion, never a silent default. Our searchers maximize; with ``mode="min"`` the
negated metric is told.

A trial that errors, or reports the metric as NaN or infinite, is told to the searcher as failed.
A finished trial without the metric is Tune's strict-metric error (and ours, which names the
trial); with ``TUNE_DISABLE_STRICT_METRIC_CHECKING=1`` it is a failed trial. A metric that is not
a number is an error. ``Tuner.restore(..., resume_errored=True)`` re-runs failed trials: their
new results reach the searcher through ``observe``.

Concurrency: under a ``ConcurrencyLimiter`` (``TuneConfig(max_concurrent_trials=N)``) the adapter
limits itself (``set_max_concurrency``), so every trial's end, also of a trial re-run after a
restore, reaches the searcher; Ray's limiter would drop those it did not start.

Warm start: ``add_evaluated_point(config, value)`` / ``add_evaluated_trials(trials)`` tell the
searcher results from elsewhere (``searcher.observe``). ``add_evaluated_trials`` takes a trial by
its status, not by Ray's ``done`` flag: a terminated trial with the metric is scored, an errored
one is failed, an unfinished one is left out (Ray's version would score a running trial's
intermediate value, and call a finished trial "pruned" when the run's saved state lacks ``done``,
which Ray 2.60 can save for a trial that finished normally, see ``add_evaluated_trials``).

State: ``save``/``restore`` write and read JSON atomically (``search_space.files``): the
searcher's ``state_dict``, metric and mode, the map from Ray trial ids to our proposals (which is
what lets a restored Tune run tell results of trials that were running) and the trials that
failed (so a re-run can be told). Tune calls them itself through ``save_to_dir`` /
``restore_from_dir`` (``Tuner.restore``). A checkpoint restored into a TuneSearcher built with
another metric or mode wins, with a warning (Ray's practice); into a searcher built with other
settings it is refused by ``load_state_dict``, which names the setting.
"""

from __future__ import annotations

import json
import logging
import os
import warnings

from ray.tune.search import Searcher as RaySearcher

from nasplay.runtime._internals.ray_internals import has_unresolved_values
from search_space import GENOTYPE_TYPES, Genotype
from search_space.files import atomic_write_text

from .base import BaseSearcher, Searcher, check_mode, oriented

logger = logging.getLogger(__name__)

class TuneSearcher(RaySearcher):
    """A ``ray.tune.search.Searcher`` around one of our searchers; see the module docstring.

    The searcher is ``self.wrapped`` (not ``self.searcher``: Ray's ``SearchGenerator`` takes any
    object with a ``searcher`` attribute for a wrapper like ``ConcurrencyLimiter`` and saves
    what it wraps instead).
    """

    # JSON, not Ray's default pickle; Ray finds the file by this pattern in restore_from_dir.
    CKPT_FILE_TMPL = "searcher-state-{}.json"

    def __init__(self, searcher: BaseSearcher, metric: str | None = None, mode: str | None = None):
        if not isinstance(searcher, Searcher) or not hasattr(searcher, "observe"):
            raise ValueError(f"TuneSearcher wraps one of our searchers (searchers.RandomSearch, "
                             f"RegularizedEvolution, Controller), got {type(searcher).__name__}; "
                             f"give a Ray searcher to TuneConfig(search_alg=...) directly")
        if metric is not None and (not isinstance(metric, str) or not metric):
            raise ValueError(f"metric must be the name of a reported metric, got {metric!r}")
        if mode is not None:
            check_mode(mode)
        super().__init__(metric=metric, mode=mode)
        self.wrapped = searcher
        self._explicit = {"metric": metric is not None, "mode": mode is not None}
        self._proposals: dict[str, str] = {}  # Ray trial id -> our proposal's trial id (running)
        self._errored: dict[str, dict] = {}  # Ray trial id -> {"trial_id", "genotype"} (failed)
        self._max_concurrent: int | None = None  # set by a ConcurrencyLimiter

    # ----------------------------------------------------------------- Tune's settings

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec) -> bool:
        """Take ``metric``/``mode`` from ``TuneConfig`` where none was given to the constructor.

        Returns True: the properties are set (an explicit argument that differs wins, with a
        warning). Returns False, and Tune raises its own error, when ``param_space`` holds search
        distributions (``tune.choice`` ...): the genotype is all this searcher samples, and
        constants are all Tune may merge into its configs.
        """
        if config and has_unresolved_values(config):
            return False
        if mode is not None:
            check_mode(mode, "TuneConfig(mode=...)")
        for name, value in (("metric", metric), ("mode", mode)):
            if value is None:
                continue
            current = getattr(self, f"_{name}")
            if self._explicit[name]:
                if value != current:
                    warnings.warn(f"TuneSearcher: {name}={current!r} given to TuneSearcher wins "
                                  f"over TuneConfig's {name}={value!r}", stacklevel=2)
                continue
            setattr(self, f"_{name}", value)
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        """Limit concurrency here rather than in Ray's ``ConcurrencyLimiter``, which would drop
        the end of any trial it did not start itself (a trial re-run by ``Tuner.restore``). As
        for Ray's searchers that limit themselves, the limiter's ``batch=True`` then does not
        apply: our searchers are asynchronous anyway."""
        self._max_concurrent = int(max_concurrent)
        return True

    def _check_properties(self) -> None:
        if self._metric is None or self._mode is None:
            missing = " and ".join(n for n in ("metric", "mode") if getattr(self, f"_{n}") is None)
            raise ValueError(
                f"TuneSearcher has no {missing}: pass TuneSearcher(searcher, metric=..., "
                f"mode='max' or 'min'), or set them in tune.TuneConfig together with a "
                f"param_space (Tune hands TuneConfig's metric and mode to a search algorithm "
                f"only with one)")
        if not isinstance(self._metric, str):
            raise ValueError(f"TuneSearcher optimizes one metric (a name), got {self._metric!r}")

    # ----------------------------------------------------------------- suggest / complete

    def _at_capacity(self) -> bool:
        """Whether the trials running (suggested, not yet complete) fill the concurrency limit;
        a subclass that suggests by other means (re-issued proposals) checks it first too."""
        return self._max_concurrent is not None and len(self._proposals) >= self._max_concurrent

    def suggest(self, trial_id: str) -> dict | str | None:
        self._check_properties()
        if self._at_capacity():
            return None
        if self.wrapped.finished:
            return RaySearcher.FINISHED
        proposal = self.wrapped.ask()
        if proposal is None:
            return RaySearcher.FINISHED if self.wrapped.finished else None
        self._proposals[trial_id] = proposal.trial_id
        return {"genotype": proposal.genotype.to_dict(), "trial_id": proposal.trial_id}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        score = self._score(trial_id, result, error)
        proposal_id = self._proposals.pop(trial_id, None)
        if proposal_id is not None:
            if error:  # remembered, so that a re-run (Tuner.restore(resume_errored=True)) counts
                pending = {p.trial_id: p.genotype for p in self.wrapped.pending}
                if proposal_id in pending:
                    self._errored[trial_id] = {"trial_id": proposal_id,
                                               "genotype": pending[proposal_id].to_dict()}
            self.wrapped.tell(proposal_id, score, result)
            return
        rerun = self._errored.get(trial_id)
        if rerun is not None:
            if not error:
                del self._errored[trial_id]
                self.wrapped.observe(Genotype.from_dict(rerun["genotype"]), score, result,
                                     trial_id=rerun["trial_id"])
            return
        logger.warning("TuneSearcher: trial %s was not suggested by this searcher; ignored", trial_id)

    def _score(self, trial_id: str, result: dict | None, error: bool) -> float | None:
        if error or not result:
            return None
        if self._metric not in result:
            if int(os.environ.get("TUNE_DISABLE_STRICT_METRIC_CHECKING", 0)) != 1:
                reported = ", ".join(sorted(k for k in result if not k.startswith("_")))[:300]
                raise ValueError(f"TuneSearcher: trial {trial_id} finished without reporting "
                                 f"{self._metric!r} (it reported: {reported}); report it, or set "
                                 f"metric= to one of those")
            return None  # strict checking off: a trial without the metric failed
        return oriented(result[self._metric], self._mode,
                        f"TuneSearcher: trial {trial_id}'s {self._metric!r}")

    # ----------------------------------------------------------------- warm start

    def add_evaluated_point(self, parameters: dict, value: float, error: bool = False,
                            pruned: bool = False, intermediate_values=None) -> None:
        """Tell the searcher a result from elsewhere (Ray's warm-start hook).

        ``parameters`` is a trial config as this adapter suggests it (``{"genotype": ...}``),
        ``value`` the metric in ``mode``'s direction. An errored or pruned trial is remembered
        (never proposed) without a score.
        """
        self._check_properties()
        if not isinstance(parameters, dict) or "genotype" not in parameters:
            raise ValueError("add_evaluated_point: parameters must be a trial config holding "
                             "'genotype' (a Genotype.to_dict(), as TuneSearcher suggests)")
        genotype = parameters["genotype"]
        genotype = genotype if isinstance(genotype, GENOTYPE_TYPES) else Genotype.from_dict(genotype)
        score = None if error or pruned else oriented(
            value, self._mode, f"add_evaluated_point: {self._metric!r}")
        self.wrapped.observe(genotype, score, {self._metric: value})

    def add_evaluated_trials(self, trials_or_analysis, metric: str | None = None) -> None:
        """Tell the searcher the finished trials of another Tune run (``Trial``s, a list of them
        or an ``ExperimentAnalysis``): a terminated trial that reported ``metric`` is scored, an
        errored one is failed (never proposed), one still pending or running is left out.
        ``metric`` defaults to this searcher's and may not differ from it, since the values are
        read in its ``mode``."""
        self._check_properties()
        metric = self._metric if metric is None else metric
        if metric != self._metric:
            raise ValueError(f"add_evaluated_trials: metric {metric!r} differs from this "
                             f"searcher's {self._metric!r}")
        trials = _trials_of(trials_or_analysis)
        finished = [t for t in trials if t.status == t.TERMINATED]
        if finished and not any(metric in t.last_result for t in finished):
            warnings.warn(f"add_evaluated_trials: none of the {len(finished)} finished trials "
                          f"reported {metric!r}; check the metric's name", stacklevel=2)
        for trial in trials:
            # Not Ray's `done` flag: for a function trainable Ray sets it in place on a dict whose
            # JSON it caches (TuneController._process_trial_result, the duplicate-result branch,
            # skips update_last_result), so a state snapshot taken between a trial's last report
            # and its end is saved without it, and Ray's add_evaluated_trials then calls that
            # finished trial pruned. A trial a scheduler stops is saved with done=True anyway.
            if trial.status == trial.ERROR:
                self.add_evaluated_point(trial.config, None, error=True)
            elif trial.status == trial.TERMINATED and metric in trial.last_result:
                self.add_evaluated_point(trial.config, trial.last_result[metric])

    # ----------------------------------------------------------------- state

    def get_state(self) -> dict:
        return {
            "metric": self._metric,
            "mode": self._mode,
            "proposals": dict(self._proposals),
            "errored": dict(self._errored),
            "searcher": self.wrapped.state_dict(),
        }

    def set_state(self, state: dict) -> None:
        """Load a checkpoint. Its metric and mode win over this TuneSearcher's (with a warning
        when they differ); the wrapped searcher refuses a state saved with other settings."""
        self.wrapped.load_state_dict(state["searcher"])
        replaced = [f"{name}={state[name]!r} replaces {name}={getattr(self, f'_{name}')!r}"
                    for name in ("metric", "mode")
                    if getattr(self, f"_{name}") not in (None, state[name])]
        if replaced:
            warnings.warn(f"TuneSearcher: the checkpoint's {', '.join(replaced)}", stacklevel=2)
        self._metric, self._mode = state["metric"], state["mode"]
        self._proposals = dict(state["proposals"])
        self._errored = {key: dict(value) for key, value in state.get("errored", {}).items()}

    def save(self, checkpoint_path: str) -> None:
        atomic_write_text(checkpoint_path, json.dumps(self.get_state()))

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path) as f:
            self.set_state(json.load(f))

    def __repr__(self) -> str:
        return f"TuneSearcher({type(self.wrapped).__name__}, metric={self._metric!r}, mode={self._mode!r})"


def _trials_of(trials_or_analysis) -> list:
    """The trials of a ``Trial``, a list of them or an ``ExperimentAnalysis`` (Ray's forms)."""
    from ray.tune import ExperimentAnalysis
    from ray.tune.experiment import Trial

    if isinstance(trials_or_analysis, Trial):
        return [trials_or_analysis]
    if isinstance(trials_or_analysis, ExperimentAnalysis):
        return list(trials_or_analysis.trials)
    if isinstance(trials_or_analysis, (list, tuple)) and all(
            isinstance(t, Trial) for t in trials_or_analysis):
        return list(trials_or_analysis)
    raise ValueError(f"add_evaluated_trials: expected a Trial, a list of Trials or an "
                     f"ExperimentAnalysis, got {type(trials_or_analysis).__name__}")

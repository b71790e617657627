"""Ray Tune for the driver: the one module of the search that imports Ray at import time.

- ``ray_session``: start or join Ray (or use the caller's session) and say what it offers;
- ``RunSearcher``: ``searchers.ray_adapter.TuneSearcher`` plus what a resumable run needs: the
  proposals pending in a saved state are issued again before new ones, every new proposal is
  persisted before it runs, a trial cancelled by the end of the experiment stays pending, a
  cheap scorer's trial carries a batch of candidates, and the searcher is told the run's
  metric only (never a scorer's report-only metrics);
- ``Recorder``: the Tune callback through which the driver, and only the driver, writes the
  run directory as trials end (Tune tells the search algorithm first, then the callbacks);
- ``run_experiment``: one Tuner for the remaining trials (the driver's executor).

Trials run ``nasplay.engine.trial.run_trial`` in Ray's workers; this module is never imported there.
Ray's own experiment state (``Tuner.restore``) is not used: a run resumes from its run directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from pathlib import Path

import ray
from ray import tune
from ray.tune import Callback, ProgressReporter
from ray.tune.search import ConcurrencyLimiter, SearchGenerator
from ray.tune.result import (AUTO_RESULT_KEYS, DEFAULT_EXPERIMENT_INFO_KEYS, DONE,
                             SHOULD_CHECKPOINT)
from ray.tune.search import Searcher as RaySearcher

from nasplay.engine.driver import Cluster
from nasplay.engine.trial import BATCH_KEY, TrialSettings, batch_results, run_trial
from nasplay.errors import UserError, first_line
from nasplay.runtime.quiet import no_colour_reset_at_exit, quiet
from searchers.base import oriented
from searchers.ray_adapter import TuneSearcher

# ASHA (--scheduler asha): candidates are compared after 1, 3, 9, ... epochs; a third go on.
ASHA_GRACE_EPOCHS = 1
ASHA_REDUCTION_FACTOR = 3
# What Ray adds to every reported result (read off Ray's own constants); the rest is the
# scorer's metrics.
RAY_RESULT_KEYS = frozenset({*AUTO_RESULT_KEYS, *DEFAULT_EXPERIMENT_INFO_KEYS, DONE,
                             SHOULD_CHECKPOINT})


@contextlib.contextmanager
def ray_session(config):
    """Start or join Ray for a search (or use the caller's initialized session, left running
    after); yields the ``Cluster`` it offers."""
    owned = not ray.is_initialized()
    if owned:
        kwargs = dict(include_dashboard=False, log_to_driver=False,
                      logging_level="ERROR" if quiet() else "WARNING")
        if config.address in (None, "local"):
            kwargs["num_cpus"] = config.num_cpus or os.cpu_count() or 1
        else:
            kwargs["address"] = config.address
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise UserError(f"cannot start or join Ray ({config.address or 'local'}): "
                            f"{first_line(e)}") from None
        except Exception as e:
            if type(e).__name__ == "AuthenticationError":
                raise UserError(f"--address {config.address}: the cluster asks for a token; put "
                                f"it in ~/.ray/auth_token or RAY_AUTH_TOKEN ({first_line(e)})"
                                ) from None
            raise
        no_colour_reset_at_exit()
    try:
        resources = ray.cluster_resources()
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        yield Cluster(cpus=float(resources.get("CPU", 0)), gpus=float(resources.get("GPU", 0)),
                       nodes=nodes, owned=owned)
    finally:
        if owned:
            ray.shutdown()


class RunSearcher(TuneSearcher):
    """The run's searcher as a Ray Tune ``Searcher``; see the module docstring.

    A cheap scorer's trial scores a batch of candidates (``Driver.batch_size``): its config
    holds them under ``"batch"``, each asked of the searcher (or re-issued) and persisted as
    pending before the trial starts, each told its own score when it ends.
    """

    def __init__(self, driver):
        super().__init__(driver.searcher, metric=driver.metric, mode="max")
        self._driver = driver
        self._reissue = driver.pending_proposals()  # (trial_id, genotype dict, step), oldest first
        self._configs: dict[str, dict] = {}        # Ray trial id -> the config we suggested
        self.exhausted = False

    def suggest(self, trial_id: str):
        if self._at_capacity():
            return None
        if self._driver.batch_size > 1:
            return self._suggest_batch(trial_id, self._driver.batch_size)
        if self._reissue:
            our_id, genotype, step = self._reissue.pop(0)
            config = {"trial_id": our_id, "genotype": genotype, "step": step}
            self._proposals[trial_id] = our_id
        else:
            config = super().suggest(trial_id)
            searcher = self._driver.searcher
            if not isinstance(config, dict):
                self._note_finished(config)
                return config
            config["step"] = searcher.num_proposed - 1
            self._driver.on_proposed(config["trial_id"], config["step"])
        self._configs[trial_id] = config
        return config

    def _note_finished(self, answer) -> None:
        searcher = self._driver.searcher
        if answer == RaySearcher.FINISHED and searcher.num_proposed < (searcher.max_trials or 0):
            self.exhausted = True  # finished before its budget: no new genotype left

    def _suggest_batch(self, trial_id: str, size: int):
        """Up to ``size`` candidates: re-issued ones first, then new ones (persisted at once)."""
        self._check_properties()
        searcher = self._driver.searcher
        items, new = [], []
        while len(items) < size and self._reissue:
            our_id, genotype, step = self._reissue.pop(0)
            items.append({"trial_id": our_id, "genotype": genotype, "step": step})
        while len(items) < size and not searcher.finished:
            proposal = searcher.ask()
            if proposal is None:
                break
            step = searcher.num_proposed - 1
            items.append({"trial_id": proposal.trial_id, "genotype": proposal.genotype.to_dict(),
                          "step": step})
            new.append((proposal.trial_id, step))
        if new:
            self._driver.on_proposed_batch(new)
        if not items:
            answer = RaySearcher.FINISHED if searcher.finished else None
            self._note_finished(answer)
            return answer
        name = items[0]["trial_id"] + (f"+{len(items) - 1}" if len(items) > 1 else "")
        config = {"trial_id": name, BATCH_KEY: items}
        self._proposals[trial_id] = name
        self._configs[trial_id] = config
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        config = self._configs.pop(trial_id, None)
        if not error and (not result or "final" not in result):
            # Cancelled before it ran to the end (the experiment is stopping): not a result. The
            # proposal stays pending, to be issued again in this session or on resume.
            self._proposals.pop(trial_id, None)
            if config is not None:
                self._reissue += [(c["trial_id"], c["genotype"], c["step"])
                                  for c in config.get(BATCH_KEY, [config])]
            return
        if config is not None and BATCH_KEY in config:
            self._proposals.pop(trial_id, None)
            self._tell_batch(config[BATCH_KEY], None if error else result)
            return
        # the searcher is told the run's metric, nothing else the scorer reported
        told = {k: result[k] for k in (self.metric,) if k in result} if result else result
        super().on_trial_complete(trial_id, result=told, error=error)

    def _tell_batch(self, items: list[dict], result: dict | None) -> None:
        results = batch_results(result, len(items)) if result is not None else None
        for k, item in enumerate(items):
            metrics = results[k] if results is not None else {}
            score = None if metrics.get("failed") else oriented(
                metrics.get(self.metric), "max", f"trial {item['trial_id']}'s {self.metric!r}")
            self.wrapped.tell(item["trial_id"], score, self._driver.told(score))

    def __getstate__(self) -> dict:
        # Tuner pickles its settings into tuner.pkl (for Tuner.restore, which we do not use);
        # the driver's live objects (open run, progress stream) stay out of it.
        return {"_metric": self._metric, "_mode": self._mode}


class RecordsGenerator(SearchGenerator):
    """Ray's ``SearchGenerator`` without its periodic checkpoints of the searcher.

    A run resumes from its own records (``searcher_state.json`` is written after every ask and
    every finished trial); a second copy of the state in Ray's folder, written on Ray's schedule,
    could only disagree with it.
    """

    def save_to_dir(self, dirpath: str, session_str: str) -> None:
        pass

    def has_checkpoint(self, dirpath: str) -> bool:
        return False


class Recorder(Callback):
    """Trial events -> the driver (records, searcher state, progress line); ``finished`` is the
    driver's handler of an ended trial (``on_finished``, or ``on_rescored`` when re-scoring)."""

    def __init__(self, driver, finished=None):
        self._driver = driver
        self._finished = finished or driver.on_finished
        self._started: dict[str, float] = {}

    def on_trial_start(self, iteration, trials, trial, **info):
        self._started.setdefault(trial.trial_id, time.time())

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial, None)

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, error_message(trial))

    def on_step_end(self, iteration, trials, **info):
        running = sum(t.status == "RUNNING" for t in trials)
        if self._driver.progress is not None:
            self._driver.progress.tick(running)

    def _finish(self, trial, error: str | None) -> None:
        result = dict(trial.last_result or {})
        if error is None and "final" not in result:
            return  # cancelled, not finished: stays pending (see RunSearcher.on_trial_complete)
        started_at = self._started.pop(trial.trial_id, None)
        if BATCH_KEY in trial.config:
            items = trial.config[BATCH_KEY]
            results = batch_results(result, len(items)) if error is None else None
            self._driver.on_finished_batch(trial.config, results, error, started_at=started_at,
                                           node_ip=result.get("node_ip"))
            return
        metrics = {k: v for k, v in result.items() if k not in RAY_RESULT_KEYS}
        self._finished(trial.config, metrics if error is None else {}, error,
                       started_at=started_at, node_ip=result.get("node_ip"))

    def __getstate__(self) -> dict:
        return {}


class SilentReporter(ProgressReporter):
    """No Ray status table: ``nasplay.engine.progress.Progress`` prints our compact line instead."""

    def should_report(self, trials, done: bool = False) -> bool:
        return False

    def report(self, trials, done, *sys_info) -> None:
        pass


# Ray's error files hold "Failure # 1 (occurred at ...)" and then a traceback or an actor's
# death notice; the line that names the exception is the one worth recording.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b.*")


def error_message(trial) -> str:
    """One line saying why Ray gave up on a trial (its worker or node died, ...)."""
    text = ""
    with contextlib.suppress(Exception):
        if trial.error_file:
            text = Path(trial.error_file).read_text(errors="replace")
    if not text:
        with contextlib.suppress(Exception):
            text = str(trial.get_error() or "")
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith("Failure #")]
    named = [line for line in lines if _EXCEPTION_LINE.match(line)]
    death = [line for line in lines if "actor is dead" in line or "exit detail" in line.lower()]
    message = named[-1] if named else (lines[0] if lines else "")
    if death and death[0] not in message:
        message = f"{message} {death[0]}".strip()
    message = message.split(" Some common causes")[0]  # Ray's advice paragraph: not the error
    return message[:500] or "the trial's worker failed (see the trial's error.txt under ray/)"


def trial_name(trial) -> str:
    return str(trial.config.get("trial_id", trial.trial_id))


def trial_dirname(trial) -> str:
    return f"{trial_name(trial)}_{trial.trial_id}"


@contextlib.contextmanager
def _quiet_ray(tensorboard: bool = True):
    """Ray's legacy output engine (so our silent reporter is used), no strict metric check
    (a failed trial reports an error, not a score), Tune's own log lines off: failures are
    recorded in trials.jsonl and shown on the progress line. Without ``tensorboard`` Tune adds
    no loggers of its own (``_fit`` gives it the CSV and JSON ones)."""
    env = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
           "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "0" if tensorboard else "1"}
    saved_env = {key: os.environ.get(key) for key in env}
    loggers = [logging.getLogger(name) for name in ("ray.tune", "ray.train", "ray.air")]
    saved_levels = [log.level for log in loggers]
    os.environ.update(env)
    for log in loggers:
        log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for log, level in zip(loggers, saved_levels):
            log.setLevel(level)


class FixedSearcher(RaySearcher):
    """Suggests the given trial configs, in order, then says it is finished (re-scoring)."""

    def __init__(self, configs: list[dict], metric: str):
        super().__init__(metric=metric, mode="max")
        self._todo = list(configs)

    def suggest(self, trial_id: str):
        return dict(self._todo.pop(0)) if self._todo else RaySearcher.FINISHED

    def on_trial_complete(self, trial_id: str, result=None, error: bool = False) -> None:
        pass


def run_experiment(driver, settings: TrialSettings, cpus: float, num_samples: int) -> str:
    """Run the remaining trials; returns "exhausted" if the searcher ran out of genotypes."""
    config = driver.config
    searcher = RunSearcher(driver)
    scheduler = None
    if config.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(time_attr="epoch", metric=driver.metric, mode="max",
                                  max_t=driver.plan.scorer.rungs(driver.plan.options),
                                  grace_period=ASHA_GRACE_EPOCHS,
                                  reduction_factor=ASHA_REDUCTION_FACTOR)
    _fit(driver, settings, cpus, searcher, num_samples, Recorder(driver), scheduler, "search")
    return "exhausted" if searcher.exhausted else "done"


def run_rescoring(driver, settings: TrialSettings, cpus: float, trials: list[dict]) -> None:
    """Score ``trials`` again with ``settings``' scorer (``--rerank-top``), one Tune trial each;
    each result goes to ``driver.on_rescored``."""
    searcher = FixedSearcher(trials, metric=settings.metric)
    _fit(driver, settings, cpus, searcher, len(trials), Recorder(driver, driver.on_rescored),
         None, "rescore")


def _fit(driver, settings: TrialSettings, cpus: float, searcher, num_samples: int,
         recorder: Recorder, scheduler, name: str) -> None:
    """One Tuner over the run's Ray folder: ``workers`` trials at once, ``cpus`` each."""
    config = driver.config
    search_alg = RecordsGenerator(ConcurrencyLimiter(searcher, max_concurrent=config.workers))
    trainable = tune.with_resources(tune.with_parameters(run_trial, settings=settings),
                                    {"cpu": cpus, "gpu": config.gpus_per_trial})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=search_alg, scheduler=scheduler, num_samples=num_samples,
            reuse_actors=True, time_budget_s=config.time_budget_s,
            trial_name_creator=trial_name, trial_dirname_creator=trial_dirname),
        run_config=tune.RunConfig(
            name=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
            storage_path=str(driver.run_dir.ray_path.resolve()),
            callbacks=[recorder, *_loggers(driver.tensorboard)],
            failure_config=tune.FailureConfig(max_failures=config.max_failures),
            verbose=0, progress_reporter=SilentReporter(), log_to_file=True),
    )
    with _quiet_ray(driver.tensorboard):
        tuner.fit()


def _loggers(tensorboard: bool) -> list:
    """Tune's CSV and JSON loggers where its TensorBoard one is left out: batch trials report
    no scalars worth a curve, and tensorboardX costs seconds to import (it imports torch)."""
    if tensorboard:
        return []  # Tune adds all three itself
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return [CSVLoggerCallback(), JsonLoggerCallback()]

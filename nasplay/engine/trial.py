"""One trial, in a Ray worker: devices first, then the scorer, then one report.

This is the only code Ray ships to its workers (``nasplay.engine.tune_backend`` wraps ``run_trial``
as the Tune trainable). It imports neither the CLI nor the driver: a worker needs the scorer
registry, the search space and, for Keras scorers, ``nasplay.runtime.devices``.

A batch trial (a cheap scorer's, ``config["batch"]``) scores several candidates and reports
each one's metrics or failure in one report. A scorer's exception becomes a reported failure
(recorded with its error by the driver); the traceback goes to the trial's stderr file under
the run's ``ray/`` folder. Nothing is retried: the same candidate would fail the same way.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any

from nasplay.errors import first_line


@dataclass(frozen=True)
class TrialContext:
    """What a scorer gets besides the genotype. A scorer is ``fn(genotype, ctx) -> metrics``:
    it returns a dict of numbers (at least ``ctx.metric``), and raises to fail the trial."""

    trial_id: str           # our id of the proposal ("evolution-00012")
    step: int               # the order the searcher proposed it in
    options: dict           # the scorer's settings (ProxyConfig fields for the proxy)
    cpus: int               # threads this trial may use (its CPU share, at least 1)
    gpus: float             # its GPU share (0: none; CUDA_VISIBLE_DEVICES shows the given ones)
    mixed_precision: bool | None
    metric: str             # the score the search maximizes
    report_epochs: bool     # ASHA runs: call report() after each epoch but the last

    def report(self, metrics: dict) -> None:
        """An intermediate result (an epoch's ``metric`` and ``epoch``) for ASHA to judge."""
        from ray import tune

        tune.report({**plain(metrics), "final": 0})


@dataclass(frozen=True)
class TrialSettings:
    """The same for every trial of a run: sent once to the workers with the trainable."""

    scorer: str             # a registered scorer name or package.module:function
    backend: str            # the Keras backend (set in the worker before Keras is imported)
    options: dict           # the scorer's resolved settings
    cpus: float             # CPUs per trial
    gpus: float             # GPUs per trial
    mixed_precision: bool | None
    metric: str
    report_epochs: bool     # ASHA: report after each epoch
    quiet: bool = True      # frameworks start without their start-up logs (nasplay.runtime.quiet)


def run_trial(config: dict, settings: TrialSettings) -> None:
    """Ray Tune's trainable: score ``config["genotype"]`` and report the metrics once; or, for
    a batch (``config["batch"]``, a cheap scorer's candidates), each candidate's metrics."""
    from ray import tune

    started = time.time()
    if BATCH_KEY in config:
        tune.report(_run_batch(config[BATCH_KEY], settings, started))
        return
    try:
        cpus = configure_environment(settings)
        metrics = _score(config, settings, cpus)
    except Exception as exc:  # noqa: BLE001 - any scorer failure is the trial's failure
        tune.report({**_failure(exc), "trial_seconds": time.time() - started})
        return
    metrics["trial_seconds"] = time.time() - started
    tune.report({**metrics, "final": 1})


BATCH_KEY = "batch"      # a trial config's candidates, [{"trial_id", "genotype", "step"}, ...]


def _run_batch(items: list[dict], settings: TrialSettings, started: float) -> dict:
    """Score every candidate of a batch: each one's metrics, or its failure (one candidate's
    error fails that candidate only). The results travel as one JSON text (Ray's loggers
    would try to draw a list of dicts)."""
    results = []
    try:
        cpus = configure_environment(settings)
    except Exception as exc:  # noqa: BLE001 - the whole batch fails alike
        results = [_failure(exc)] * len(items)
    for item in items[len(results):]:
        begun = time.time()
        try:
            metrics = _score(item, settings, cpus)
        except Exception as exc:  # noqa: BLE001 - this candidate's failure
            metrics = _failure(exc)
        metrics["trial_seconds"] = time.time() - begun
        results.append(metrics)
    return {"final": 1, BATCH_KEY: json.dumps(results, allow_nan=True),
            "batch_size": len(items), "trial_seconds": time.time() - started}


def _failure(exc: BaseException) -> dict:
    text = traceback.format_exc()
    print(text, file=sys.stderr)
    return {"final": 1, "failed": 1, "error": first_line(exc)[:2000], "traceback": text[-8000:]}


def batch_results(result: dict, size: int) -> list[dict]:
    """A batch trial's report, one metrics dict per candidate (driver side)."""
    results = json.loads(result[BATCH_KEY])
    if not isinstance(results, list) or len(results) != size:
        raise ValueError(f"a batch of {size} reported {len(results)} result(s)")
    return results


def _score(config: dict, settings: TrialSettings, cpus: int) -> dict:
    from nasplay.scorers import get_scorer
    from search_space import Genotype

    scorer = get_scorer(settings.scorer)
    ctx = TrialContext(trial_id=config["trial_id"], step=config.get("step", -1),
                       options=dict(settings.options), cpus=cpus, gpus=settings.gpus,
                       mixed_precision=settings.mixed_precision, metric=settings.metric,
                       report_epochs=settings.report_epochs)
    if scorer.uses_keras or "keras" in sys.modules:
        from nasplay.runtime import devices, quiet

        quiet.start_keras(lambda: devices.configure(cpus, settings.gpus > 0,
                                                    settings.mixed_precision))
    return plain(scorer.score(Genotype.from_dict(config["genotype"]), ctx))


def configure_environment(settings: TrialSettings) -> int:
    """Device setup that must precede any framework import: done with environment variables
    (``nasplay.runtime.backends.worker_env``), so it costs nothing for scorers that never import one
    and cannot come too late for those that do. Returns the trial's thread count.

    - the Keras backend (``KERAS_BACKEND``); a worker whose Keras already runs another one fails;
    - CPU-only trials are hidden from the GPUs (Ray 2.60 no longer does it for them);
    - GPU memory grows on demand, so fractional-GPU trials can share a card;
    - thread pools match the trial's CPU share, not the machine's cores.
    """
    from nasplay.runtime.backends import worker_env

    cpus = max(1, int(settings.cpus))
    if settings.quiet:
        from nasplay.runtime.quiet import QUIET_ENV

        os.environ[QUIET_ENV] = "1"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.update(worker_env(settings.backend, cpus, settings.gpus > 0))
    if "keras" in sys.modules:
        from nasplay.runtime.backends import select_backend

        select_backend(settings.backend)   # one line if this worker's Keras runs another
    return cpus


def plain(metrics: Any) -> dict:
    """Metrics as JSON-able Python values (numpy scalars become floats and ints)."""
    if not isinstance(metrics, dict):
        raise TypeError(f"a scorer must return a dict of metrics, got {type(metrics).__name__}")
    result = {}
    for key, value in metrics.items():
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()
        result[str(key)] = value
    return result

"""``nasplay search``: evaluate the candidates of a searcher on Ray Tune, one trial each.

The same experiment runs on a laptop, a GPU box and a cluster; only where it runs changes::

    nasplay search --searcher evolution --space nasnet --trials 200 --run-dir runs/evo
    nasplay search ... --workers 8 --gpus-per-trial 0.5           # 2 candidates per GPU
    ray start --head; nasplay search ... --address auto            # an existing Ray cluster
    nasplay search --run-dir runs/evo --resume                     # after Ctrl-C or kill -9

How it is put together (the Ray side is in ``nasplay._tune``, imported only when a search runs):

- one Ray Tune experiment; our searcher plugs in through ``searchers.ray_adapter.TuneSearcher``
  (which never proposes a genotype twice), ``max_concurrent_trials`` runs ``workers`` trials at
  once and ``tune.with_resources`` gives each its CPUs and (fractional) GPUs;
- the trial (``_trial``, in a Ray worker) sets up its devices first, then calls the scorer:
  ``nasplay.proxy`` trains the candidate briefly, ``zero-cost`` scores it untrained, or any
  ``package.module:function`` (how tests inject fast fakes into worker processes). A scorer that
  raises is reported as a failed result, not as a crashed actor: the error is recorded, the
  actor is reused, and nothing is retried (the same candidate would fail the same way). Ray's
  ``FailureConfig`` retries are for workers and nodes that die, where a retry can succeed;
- only the driver writes the run directory (``nasplay.records``), from a Tune callback, and it
  is our own records, not ``Tuner.restore``, that a resumed search continues from: completed
  lines stay as they are, the searcher reloads its saved state, and the proposals it had
  pending (trials that were running) are issued again before any new one.

Nothing is written and Ray is not started until every input has been checked: bad input is
one line on stderr and exit status 2 (``UserError``), and leaves an existing run untouched.
This module imports neither TensorFlow nor Ray at import time (the CLI and Ray workers import it).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import math
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from nasplay.errors import UserError
from nasplay.records import (BUILTIN_SCORERS, EXPERIMENT_FIELDS, SCHEDULERS, SEARCHERS, RunDir,
                             SearchConfig, best_record, score_of, trial_record)

# How long --address may take to answer a TCP connect before we call it unreachable. Ray itself
# retries an unreachable address for minutes before giving up.
CONNECT_TIMEOUT_S = 5.0
# ASHA (--scheduler asha): candidates are compared after 1, 3, 9, ... epochs; a third go on.
ASHA_GRACE_EPOCHS = 1
ASHA_REDUCTION_FACTOR = 3


# ====================================================================== CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``nasplay search`` flags. Defaults are None so that ``run`` knows which flags were
    given: a ``--config`` file or (with ``--resume``) the run's own config supplies the rest."""
    add = parser.add_argument
    add("--searcher", choices=SEARCHERS, help="search algorithm (needed for a new search)")
    add("--space", metavar="NAME",
        help="search space: nasnet, amoebanet, article, ... (needed for a new search)")
    add("--trials", type=int, metavar="N",
        help="candidates to evaluate, completed + failed (needed for a new search)")
    add("--run-dir", metavar="DIR", help="where the run's records go (required)")
    add("--data", metavar="SRC", help="cifar10, or a folder of CIFAR python batches or images")
    add("--subset", type=int, metavar="N", help="training images per candidate")
    add("--epochs", type=int, metavar="E", help="proxy training epochs per candidate")
    add("--filters", type=int, metavar="F", help="width of the candidate network's first stage")
    add("--cells-per-stage", type=int, metavar="N", help="normal cells between reductions")
    add("--workers", type=int, metavar="W", help="trials evaluated at once (default 1)")
    add("--cpus-per-trial", type=float, metavar="C",
        help="CPUs per trial (default: the cluster's CPUs / workers)")
    add("--gpus-per-trial", type=float, metavar="G",
        help="GPUs per trial, fractions allowed: 0.5 packs two per GPU (default 0)")
    add("--address", metavar="RAY",
        help="join a running Ray cluster: auto, or HOST:PORT; local (the default) starts one")
    add("--resume", action="store_true",
        help="continue the run in --run-dir up to --trials (after Ctrl-C, kill -9, a crash)")
    add("--seed", type=int, metavar="S", help="seeds the searcher and the proxy (default 0)")
    add("--config", metavar="FILE",
        help="a JSON file of settings (nasplay.records.SearchConfig's fields); flags override it")
    add("--scheduler", choices=SCHEDULERS,
        help="fifo: train every candidate fully; asha: stop weak candidates early (by epoch)")
    add("--scorer", metavar="NAME",
        help="proxy (train briefly, the default), zero-cost (score untrained), or "
             "package.module:function")
    add("--max-failures", type=int, metavar="N",
        help="retries of a trial whose worker or node died (default 1)")
    add("--population-size", type=int, metavar="P",
        help="evolution: population size (default: trials / 5, between 10 and 100)")
    add("--sample-size", type=int, metavar="S",
        help="evolution: tournament size (default: population / 4, at least 2)")


def evolution_defaults(trials: int, population: int | None = None) -> dict:
    """Population and tournament sizes that fit the budget (a given population: its tournament).

    AmoebaNet's 100/25 suit 20,000 candidates; with a few hundred, a population of 100 would spend
    the whole budget on random initial samples (on the synthetic benchmark 30/10 beat 100/25 at
    300 evaluations, see BENCHMARKS.md).
    """
    if population is None:
        population = max(10, min(100, trials // 5))
    return {"population_size": population, "sample_size": max(2, population // 4)}


# argparse destination -> SearchConfig field, for every flag that is a setting
_FLAG_FIELDS = {
    "searcher": "searcher", "space": "space", "trials": "trials", "run_dir": "run_dir",
    "data": "data", "subset": "subset", "epochs": "epochs", "filters": "filters",
    "cells_per_stage": "cells_per_stage", "workers": "workers", "cpus_per_trial": "cpus_per_trial",
    "gpus_per_trial": "gpus_per_trial", "address": "address", "seed": "seed",
    "scheduler": "scheduler", "scorer": "scorer", "max_failures": "max_failures",
}


def config_from_args(args: argparse.Namespace) -> tuple[SearchConfig, set[str]]:
    """The SearchConfig the flags describe, and the names of the settings given explicitly
    (in ``--config FILE`` or as flags; flags win)."""
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(_read_config_file(args.config))
    for dest, name in _FLAG_FIELDS.items():
        value = getattr(args, dest, None)
        if value is not None:
            if name in ("cpus_per_trial", "gpus_per_trial") and float(value).is_integer():
                value = int(value)
            values[name] = value
    options = {key: getattr(args, key, None) for key in ("population_size", "sample_size")}
    options = {key: value for key, value in options.items() if value is not None}
    if options:
        values["searcher_options"] = {**values.get("searcher_options", {}), **options}
    if (not args.resume and values.get("searcher") == "evolution"
            and isinstance(values.get("trials"), int) and values["trials"] >= 1):
        given_options = values.get("searcher_options", {})
        population = given_options.get("population_size")
        if population is None or isinstance(population, int):  # else the searcher says what's wrong
            given_options = {**evolution_defaults(values["trials"], population), **given_options}
        values["searcher_options"] = given_options
    given = set(values)
    if "run_dir" not in given:
        raise UserError("--run-dir DIR is required (where the run's records go)")
    if not args.resume:
        missing = [f"--{name}" for name in ("searcher", "space", "trials") if name not in given]
        if missing:
            raise UserError(f"{', '.join(missing)} required for a new search (or --resume "
                            f"an existing run, or give them in --config FILE)")
    return SearchConfig(**values), given


def _read_config_file(path) -> dict:
    """The settings a ``--config`` file gives (checked by SearchConfig.load), as a dict."""
    config = SearchConfig.load(path)
    import json

    keys = json.loads(Path(path).read_text(encoding="utf-8")).keys()
    return {key: getattr(config, key) for key in keys}


def run(args: argparse.Namespace) -> int:
    config, given = config_from_args(args)
    result = search(config, resume=args.resume, explicit=given)
    return result.exit_code


# ====================================================================== Python API


@dataclass
class SearchResult:
    """What a search left behind; ``records`` are the run's trial lines, oldest first."""

    run_dir: Path
    records: list[dict]
    target: int                  # the trials the run was asked for
    metric: str
    stopped: str                 # finished | exhausted | time budget | interrupted

    @property
    def completed(self) -> int:
        return sum(r.get("status") == "completed" for r in self.records)

    @property
    def failed(self) -> int:
        return sum(r.get("status") == "failed" for r in self.records)

    @property
    def best(self) -> dict | None:
        return best_record(self.records, self.metric)

    @property
    def exit_code(self) -> int:
        return 130 if self.stopped == "interrupted" else 0


def search(config: SearchConfig, resume: bool = False,
           explicit: set[str] | None = None) -> SearchResult:
    """Run (or with ``resume`` continue) the search ``config`` describes; see the module doc.

    ``explicit``: with ``resume``, the settings the caller actually chose (the CLI's flags); the
    others come from the run's ``config.json``. None means all of ``config``'s, so a resumed
    ``search(config, resume=True)`` checks that ``config`` is the run's experiment.
    Uses the Ray session of the caller if one is initialized (and leaves it running), else
    starts or joins one for the search and shuts it down after.
    """
    plan = _plan(config, resume, explicit)
    if len(plan.records) >= plan.config.trials:
        print(f"nasplay search: {plan.run_dir.path} holds {len(plan.records)} trials, the target "
              f"of {plan.config.trials} is reached; raise --trials to continue")
        return SearchResult(run_dir=plan.run_dir.path, records=plan.records,
                            target=plan.config.trials, metric=plan.config.score_metric,
                            stopped="finished")
    with _ray_session(plan.config) as cluster:
        return _Search(plan, cluster).run()


def main(config: SearchConfig, argv: list[str] | None = None) -> int:
    """Run ``config`` from a script (``experiments/``): ``--resume`` among ``argv`` continues
    the run; errors are one line on stderr as with ``nasplay search``. Returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return search(config, resume="--resume" in argv).exit_code
    except UserError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; continue with --resume", file=sys.stderr)
        return 130


# ====================================================================== checks, before anything


@dataclass
class _Plan:
    """A checked search: nothing has been written and Ray has not been touched yet."""

    config: SearchConfig
    resume: bool
    run_dir: RunDir
    options: dict                       # the scorer's resolved settings
    records: list[dict] = field(default_factory=list)
    state: tuple[dict, dict] | None = None
    rewrite_config: bool = True


def _plan(config: SearchConfig, resume: bool, explicit: set[str] | None) -> _Plan:
    if not isinstance(config, SearchConfig):
        raise TypeError(f"config must be a SearchConfig, got {type(config).__name__}")
    run_dir = RunDir(config.run_dir)
    saved = None
    if resume:
        if not run_dir.config_path.is_file():
            raise UserError(f"nothing to resume in {run_dir.path}: it has no config.json; "
                            f"start the search without --resume")
        saved = run_dir.load_config()
        if explicit is not None:  # the run's settings, overridden by what was given
            config = dataclasses.replace(saved, **{k: getattr(config, k) for k in explicit})
    config.check()
    _check_space(config.space)
    _check_scorer(config)
    config, options = _resolve(config)
    if resume:
        _check_same_experiment(run_dir, saved, config)
    elif run_dir.path.exists() and not run_dir.path.is_dir():
        raise UserError(f"--run-dir {run_dir.path} is a file, not a directory")
    elif not run_dir.is_empty():
        what = "a run" if run_dir.config_path.exists() else "other files"
        raise UserError(f"--run-dir {run_dir.path} already holds {what}; continue it with "
                        f"--resume, or choose a new --run-dir")
    _check_searcher_options(config)
    _check_address(config.address)
    plan = _Plan(config=config, resume=resume, run_dir=run_dir, options=options)
    if resume:
        plan.records = run_dir.read_trials(repair=False)
        plan.state = run_dir.load_state()
        if plan.state is None and plan.records and len(plan.records) < config.trials:
            raise UserError(f"{run_dir.state_path} is missing, so the searcher cannot continue "
                            f"where it stopped; start a new run (a new --run-dir)")
        plan.rewrite_config = config.to_dict() != saved.to_dict()
    return plan


def _check_space(name: str) -> None:
    from search_space import get_space

    try:
        get_space(name)
    except (KeyError, ValueError) as e:
        raise UserError(str(e).strip("'\"")) from None


def _check_scorer(config: SearchConfig) -> None:
    if config.scorer not in BUILTIN_SCORERS:
        resolve_scorer(config.scorer)  # importable here, or a one-line UserError
    if config.scheduler == "asha" and config.scorer == "zero-cost":
        raise UserError("--scheduler asha stops candidates between training epochs; the "
                        "zero-cost scorer does not train: use --scheduler fifo")


def _check_searcher_options(config: SearchConfig) -> None:
    """Unknown or out-of-range searcher options fail here, not once the run has started. (The
    controller is checked when the search starts: constructing it builds a Keras model.)"""
    if config.searcher == "controller":
        return
    try:
        _make_searcher(config)
    except (TypeError, ValueError) as e:
        raise UserError(f"searcher_options for {config.searcher}: {_first_line(e)}") from None


def _make_searcher(config: SearchConfig):
    from search_space import get_space
    from searchers import make_searcher

    return make_searcher(config.searcher, get_space(config.space), seed=config.seed,
                         max_trials=config.trials, **config.searcher_options)


def _check_same_experiment(run_dir: RunDir, saved: SearchConfig, config: SearchConfig) -> None:
    """``--resume`` must continue the same experiment, not a different one in the same place."""
    for name in EXPERIMENT_FIELDS:
        ours, theirs = getattr(config, name), getattr(saved, name)
        if ours != theirs:
            raise UserError(f"--resume: {run_dir.path} holds another experiment ({name} is "
                            f"{theirs!r} there, {ours!r} here); use a new --run-dir, or resume "
                            f"with the run's own settings")


def _check_address(address: str | None) -> None:
    """Fail fast, in one line, on an address with no Ray behind it.

    ``ray.init`` retries an unreachable address for minutes and then exits the process; a TCP
    connect with a timeout answers in seconds. ``ray://`` (Ray Client) addresses are left to Ray.
    """
    if address is None or address == "local" or address.startswith("ray://"):
        return
    try:
        from ray._private.services import canonicalize_bootstrap_address

        resolved = canonicalize_bootstrap_address(address)
    except ImportError:
        resolved = address
    except (ConnectionError, ValueError) as e:
        hint = ("start one with `ray start --head`" if address == "auto"
                else "give HOST:PORT of a Ray head node")
        raise UserError(f"--address {address}: {_first_line(e)} ({hint})") from None
    if resolved is None:
        raise UserError(f"--address {address}: no running Ray cluster found; start one with "
                        f"`ray start --head`")
    host, _, port = resolved.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise UserError(f"--address {address}: cannot reach a Ray cluster at {resolved} ({why}); "
                        f"is `ray start --head` running there?") from None


# ---------------------------------------------------------------------- scorer settings


def _resolve(config: SearchConfig) -> tuple[SearchConfig, dict]:
    """Fill the settings left to defaults with the values the scorer will use, so that
    ``config.json`` holds everything needed to repeat the run; also the scorer's settings.

    The proxy's defaults depend on the hardware (``ProxyConfig.for_gpu`` with GPU trials), so
    they are taken once, here, and a resumed run keeps them.
    """
    data = config.data
    if data is not None and data != "cifar10":
        if os.path.exists(data):
            data = os.path.abspath(data)  # Ray runs trials in their own working directories
        elif config.address in (None, "local"):
            raise UserError(f"--data {data}: no such file or directory; give cifar10, or a folder "
                            f"of CIFAR-10 python batches or of images (<dir>/train/<class>/*.jpg)")
    config = dataclasses.replace(config, data=data, metric=config.score_metric)
    if config.scorer == "proxy":
        return _resolve_proxy(config)
    if config.scorer == "zero-cost":
        return _resolve_zero_cost(config)
    options = {name: getattr(config, name) for name in
               ("data", "subset", "epochs", "filters", "cells_per_stage", "seed")
               if getattr(config, name) is not None}
    return config, {**options, **config.scorer_options}


# SearchConfig field -> ProxyConfig field
_PROXY_FIELDS = {"data": "data", "subset": "train_size", "epochs": "epochs", "filters": "filters",
                 "cells_per_stage": "cells_per_stage"}
# ProxyConfig fields that each trial sets from its resources
_PER_TRIAL_PROXY_FIELDS = ("cpus", "gpus", "mixed_precision")


def _resolve_proxy(config: SearchConfig) -> tuple[SearchConfig, dict]:
    """ProxyConfig from the defaults (CPU or GPU ones), the flags and ``scorer_options``; the
    resolved values go back into the config: the flags' fields at top level, every other
    ProxyConfig field in ``scorer_options``, so a resume on other hardware trains the same way."""
    from nasplay.proxy import ProxyConfig

    allowed = [f.name for f in dataclasses.fields(ProxyConfig)
               if f.name not in _PER_TRIAL_PROXY_FIELDS]
    _check_options(config.scorer_options, allowed, "ProxyConfig")
    given = {proxy_name: getattr(config, name) for name, proxy_name in _PROXY_FIELDS.items()
             if getattr(config, name) is not None}
    seeds = {"seed": config.seed, "subset_seed": config.seed}
    base = ProxyConfig.for_gpu() if config.gpus_per_trial > 0 else ProxyConfig()
    try:
        proxy = base.replace(**{**seeds, **given, **config.scorer_options})
    except TypeError as e:
        raise UserError(f"scorer_options: {_first_line(e)}") from None
    proxy.check()
    options = {k: v for k, v in proxy.to_dict().items() if k not in _PER_TRIAL_PROXY_FIELDS}
    top = {name: options[proxy_name] for name, proxy_name in _PROXY_FIELDS.items()}
    rest = {k: v for k, v in options.items() if k not in _PROXY_FIELDS.values()}
    return dataclasses.replace(config, **top, scorer_options=rest), options


def _resolve_zero_cost(config: SearchConfig) -> tuple[SearchConfig, dict]:
    """ZeroCostConfig from its defaults, the flags and ``scorer_options`` (resolved back into the
    config as for the proxy). ``data`` given: the probe batch is real images, else noise."""
    from nasplay.zero_cost import ZeroCostConfig

    allowed = [f.name for f in dataclasses.fields(ZeroCostConfig)]
    _check_options(config.scorer_options, allowed, "ZeroCostConfig")
    for name in ("subset", "epochs"):
        if getattr(config, name) is not None:
            raise UserError(f"--{name} does not apply to the zero-cost scorer (it does not train)")
    given = {name: getattr(config, name) for name in ("filters", "cells_per_stage")
             if getattr(config, name) is not None}
    values = {"seed": config.seed, **given, **config.scorer_options}
    if "input_shape" in values:
        values["input_shape"] = tuple(values["input_shape"])
    try:
        zc = ZeroCostConfig(**values)
    except (TypeError, ValueError) as e:
        raise UserError(f"zero-cost settings: {_first_line(e)}") from None
    options = {**dataclasses.asdict(zc), "input_shape": list(zc.input_shape)}
    rest = {k: v for k, v in options.items() if k not in ("filters", "cells_per_stage")}
    config = dataclasses.replace(config, filters=zc.filters, cells_per_stage=zc.cells_per_stage,
                                 scorer_options=rest)
    return config, {**options, "data": config.data}


def _check_options(options: dict, allowed: list[str], what: str) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UserError(f"scorer_options: unknown {what} setting(s) {', '.join(unknown)}; "
                        f"known: {', '.join(allowed)}")


def resolve_scorer(spec: str) -> Callable:
    """The scorer function ``spec`` names: a built-in or ``package.module:function``."""
    if spec == "proxy":
        return score_proxy
    if spec == "zero-cost":
        return score_zero_cost
    module_name, _, attr = str(spec).partition(":")
    if not module_name or not attr:
        raise UserError(f"scorer {spec!r}: expected proxy, zero-cost or package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UserError(f"scorer {spec!r}: cannot import {module_name} ({_first_line(e)}); "
                        f"it must be importable on every Ray node") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UserError(f"scorer {spec!r}: {module_name} has no function {attr!r}")
    return fn


# ====================================================================== Ray session


@dataclass
class _Cluster:
    """The Ray session a search runs on."""

    cpus: float
    gpus: float
    nodes: int
    owned: bool       # started or joined by this search (and shut down after it)


@contextlib.contextmanager
def _ray_session(config: SearchConfig):
    import ray

    owned = not ray.is_initialized()
    if owned:
        kwargs = dict(include_dashboard=False, log_to_driver=False,
                      logging_level="WARNING")
        if config.address in (None, "local"):
            kwargs["num_cpus"] = config.num_cpus or os.cpu_count() or 1
        else:
            kwargs["address"] = config.address
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise UserError(f"cannot start or join Ray ({config.address or 'local'}): "
                            f"{_first_line(e)}") from None
        except Exception as e:
            if type(e).__name__ == "AuthenticationError":
                raise UserError(f"--address {config.address}: the cluster asks for a token; put "
                                f"it in ~/.ray/auth_token or RAY_AUTH_TOKEN ({_first_line(e)})"
                                ) from None
            raise
    try:
        resources = ray.cluster_resources()
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        yield _Cluster(cpus=float(resources.get("CPU", 0)), gpus=float(resources.get("GPU", 0)),
                       nodes=nodes, owned=owned)
    finally:
        if owned:
            ray.shutdown()


# ====================================================================== the search (driver)


class _Search:
    """Drives one Ray Tune experiment and keeps the run directory; see the module docstring."""

    def __init__(self, plan: _Plan, cluster: _Cluster):
        self.plan = plan
        self.config = plan.config
        self.cluster = cluster
        self.run_dir = plan.run_dir
        self.metric = self.config.score_metric
        self.records = list(plan.records)
        self.recorded = {r["trial_id"] for r in self.records}
        self.best = best_record(self.records, self.metric)
        self.pending_steps: dict[str, int] = {}
        self.searcher = None
        self.progress: _Progress | None = None

    # -------------------------------------------------------------- setup

    def _open_run(self) -> None:
        """Write the config (new run) or repair the trials file (resume); set up the searcher."""
        if self.config.searcher == "controller":
            # The controller's policy is a Keras model in this process: keep TensorFlow here off
            # the GPUs, which belong to the trials (Ray's own GPU detection is not affected).
            from nasplay import devices

            devices.configure(cpus=None, gpus=False)
        self.searcher = _make_searcher(self.config)
        if self.plan.resume:
            self.records = self.run_dir.read_trials(repair=True)
            if self.plan.rewrite_config:
                self.run_dir.write_config(self.config)
            searcher_state, self.pending_steps = self.plan.state or ({}, {})
            if searcher_state:
                try:
                    self.searcher.load_state_dict(searcher_state)
                except (KeyError, ValueError) as e:
                    raise UserError(f"{self.run_dir.state_path}: {_first_line(e)}") from None
            self._tell_recorded_pending()
        else:
            self.run_dir.create(self.config)
        self.save_state()

    def _tell_recorded_pending(self) -> None:
        """A trial recorded just before a kill may still be pending in the saved state (the
        state is written after the line): tell it from its record instead of running it again."""
        by_id = {r["trial_id"]: r for r in self.records}
        for proposal in self.searcher.pending:
            trial_id = proposal.trial_id
            record = by_id.get(trial_id)
            if record is not None:
                self.searcher.tell(trial_id, score_of(record, self.metric), record.get("metrics"))
                self.pending_steps.pop(trial_id, None)

    def pending_proposals(self) -> list[tuple[str, dict, int]]:
        """The saved state's pending proposals, oldest first: they are issued again first."""
        return [(p.trial_id, p.genotype.to_dict(), self.pending_steps.get(p.trial_id, -1))
                for p in self.searcher.pending]

    def save_state(self) -> None:
        pending = {p.trial_id for p in self.searcher.pending}
        self.pending_steps = {k: v for k, v in self.pending_steps.items() if k in pending}
        self.run_dir.save_state(self.searcher.state_dict(), self.pending_steps)

    # -------------------------------------------------------------- events from Tune

    def on_proposed(self, trial_id: str, step: int) -> None:
        """A new proposal left the searcher: persist it as pending before it runs."""
        self.pending_steps[trial_id] = step
        self.save_state()

    def on_finished(self, config: dict, result: dict, error: str | None,
                    started_at: float | None, node_ip: str | None) -> None:
        """A trial ended (the searcher has been told): append its line, then save the state."""
        trial_id = config.get("trial_id")
        if trial_id is None or trial_id in self.recorded:
            return
        metrics = {k: v for k, v in result.items() if k not in _RAY_RESULT_KEYS}
        final = metrics.pop("final", 1)
        scorer_failed = metrics.pop("failed", 0)
        scorer_error = metrics.pop("error", None)
        extra = {}
        if error is None and scorer_failed:
            error = scorer_error or "the scorer failed without a message"
            extra["traceback"] = metrics.pop("traceback", "")
        if error is None and not final:
            metrics["stopped_early"] = True
        if node_ip:
            extra["node_ip"] = node_ip
        record = trial_record(trial_id, config["genotype"],
                              "failed" if error is not None else "completed",
                              metrics=metrics, error=error, step=config.get("step"),
                              started_at=started_at, **extra)
        self.run_dir.append_trial(record)
        self.records.append(record)
        self.recorded.add(trial_id)
        score = score_of(record, self.metric)
        if score is not None and (self.best is None or score > score_of(self.best, self.metric)):
            self.best = record
            from search_space import Genotype

            self.run_dir.write_best(Genotype.from_dict(record["genotype"]).to_json())
        self.save_state()
        if self.progress:
            self.progress.trial_done(record)

    # -------------------------------------------------------------- run

    def run(self) -> SearchResult:
        config = self.config
        target = config.trials
        self._open_run()
        remaining = config.trials - len(self.records)  # the repair may have dropped a torn line
        cpus = config.cpus_per_trial or max(1, int(self.cluster.cpus // config.workers))
        self._announce(cpus, remaining)
        self.progress = _Progress(target=target, metric=self.metric, records=self.records)
        from nasplay import _tune

        settings = {"scorer": config.scorer, "options": self.plan.options, "cpus": cpus,
                    "gpus": config.gpus_per_trial, "mixed_precision": config.mixed_precision,
                    "metric": self.metric, "report_epochs": config.scheduler == "asha"}
        start = time.time()
        outcome = _tune.run_experiment(self, settings, cpus=cpus, num_samples=remaining)
        self.progress.close()
        if len(self.records) >= target:
            stopped = "finished"
        elif outcome == "exhausted":
            stopped = "exhausted"
        elif config.time_budget_s and time.time() - start >= config.time_budget_s:
            stopped = "time budget"
        else:
            stopped = "interrupted"
        result = self._result(stopped)
        self._summarize(result)
        return result

    def _result(self, stopped: str) -> SearchResult:
        return SearchResult(run_dir=self.run_dir.path, records=list(self.records),
                            target=self.config.trials, metric=self.metric, stopped=stopped)

    def _announce(self, cpus: float, remaining: int) -> None:
        c = self.config
        where = (f"Ray cluster at {c.address}" if c.address not in (None, "local")
                 else "local Ray")
        if not self.cluster.owned:
            where = "the running Ray session"
        gpus = f" + {c.gpus_per_trial:g} GPU" if c.gpus_per_trial else ""
        fits = self.cluster.cpus // cpus if cpus else c.workers
        if c.gpus_per_trial:
            fits = min(fits, self.cluster.gpus // c.gpus_per_trial)
        verb = "resuming" if self.plan.resume else "starting"
        print(f"nasplay search: {verb} {c.searcher} on {c.space}, {remaining} of {c.trials} "
              f"trials to go; {where} ({self.cluster.nodes} node(s), {self.cluster.cpus:g} CPUs, "
              f"{self.cluster.gpus:g} GPUs), {c.workers} worker(s) x {cpus:g} CPU{gpus}")
        if fits < c.workers:
            print(f"nasplay search: note: only {int(fits)} trial(s) fit on the cluster at once, "
                  f"not {c.workers}")
        sys.stdout.flush()

    def _summarize(self, result: SearchResult) -> None:
        path = self.run_dir.path
        lines = [f"{len(result.records)} of {result.target} trials recorded "
                 f"({result.completed} completed, {result.failed} failed) in {path}"]
        best = result.best
        if best is not None:
            lines.append(f"best: {best['trial_id']} {self.metric} "
                         f"{score_of(best, self.metric):.4f} -> {self.run_dir.best_path}")
        if result.stopped == "exhausted":
            lines.append("the searcher has no new genotype left to propose (the space is "
                         "exhausted)")
        elif result.stopped in ("interrupted", "time budget"):
            lines.append(f"stopped ({result.stopped}); continue with: nasplay search --run-dir "
                         f"{path} --resume")
        lines.append(f"TensorBoard: tensorboard --logdir {self.run_dir.ray_path}")
        for line in lines:
            print(f"nasplay search: {line}")
        sys.stdout.flush()


# What Ray adds to every reported result; the rest is the scorer's metrics.
_RAY_RESULT_KEYS = frozenset({
    "training_iteration", "time_total_s", "episodes_total", "timesteps_total", "node_ip",
    "hostname", "pid", "time_this_iter_s", "timestamp", "date", "time_since_restore",
    "timesteps_since_restore", "iterations_since_restore", "config", "checkpoint_dir_name",
    "done", "trial_id", "experiment_tag", "should_checkpoint", "experiment_id", "warmup_time",
})


# ====================================================================== progress line


class _Progress:
    """One compact line instead of Ray's status table: done/failed/running of N, the best
    score so far, elapsed time and ETA. A line per finished trial goes to stdout; on a terminal
    the status line is redrawn in place between them."""

    REDRAW_S = 1.0

    def __init__(self, target: int, metric: str, records: list[dict], stream=None):
        self.target = target
        self.metric = metric
        self.records = records
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.time()
        self.before = len(records)
        self.running = 0
        self._drawn = 0.0
        self._width = 0

    def status(self) -> str:
        done = len(self.records)
        failed = sum(r.get("status") == "failed" for r in self.records)
        best = best_record(self.records, self.metric)
        best_text = (f"best {self.metric} {score_of(best, self.metric):.4f}" if best
                     else f"best {self.metric} -")
        elapsed = time.time() - self.start
        finished_here = done - self.before
        eta = (_duration(elapsed / finished_here * (self.target - done)) if finished_here
               else "?")
        return (f"[{done}/{self.target}] {failed} failed, {self.running} running | {best_text} | "
                f"elapsed {_duration(elapsed)}, ETA {eta}")

    def tick(self, running: int) -> None:
        self.running = running
        if self.tty and time.time() - self._drawn >= self.REDRAW_S:
            self._draw()

    def _draw(self) -> None:
        text = self.status()
        self.stream.write("\r" + text.ljust(self._width))
        self.stream.flush()
        self._width = len(text)
        self._drawn = time.time()

    def _clear(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0

    def trial_done(self, record: dict) -> None:
        self._clear()
        self.running = max(0, self.running - 1)
        if record["status"] == "failed":
            what = f"failed: {_first_line(record.get('error', ''))[:160]}"
        else:
            score = score_of(record, self.metric)
            what = f"{self.metric} {score:.4f}" if score is not None else "completed"
            if record["metrics"].get("stopped_early"):
                what += " (stopped early)"
        self.stream.write(f"{record['trial_id']} {what}  {self.status()}\n")
        self.stream.flush()
        if self.tty:
            self._draw()

    def close(self) -> None:
        self._clear()
        self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _first_line(error: BaseException | str) -> str:
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(error, BaseException):
        first = lines[0] if lines else ""
        return f"{type(error).__name__}: {first}" if first else type(error).__name__
    return lines[0] if lines else ""


# ====================================================================== the trial (Ray worker)


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

        tune.report({**_plain(metrics), "final": 0})


def _trial(config: dict, settings: dict) -> None:
    """One candidate, in a Ray worker: devices first, then the scorer, then one report.

    A scorer's exception becomes a reported failure (recorded with its error by the driver); the
    traceback goes to the trial's stderr file under the run's ``ray/`` folder.
    """
    started = time.time()
    cpus = _configure_devices(settings)
    from ray import tune

    try:
        scorer = resolve_scorer(settings["scorer"])
        ctx = TrialContext(trial_id=config["trial_id"], step=config.get("step", -1),
                           options=dict(settings["options"]), cpus=cpus, gpus=settings["gpus"],
                           mixed_precision=settings["mixed_precision"], metric=settings["metric"],
                           report_epochs=settings["report_epochs"])
        _configure_tensorflow(settings, cpus)
        from search_space import Genotype

        metrics = _plain(scorer(Genotype.from_dict(config["genotype"]), ctx))
    except Exception as exc:  # noqa: BLE001 - any scorer failure is the trial's failure
        text = traceback.format_exc()
        print(text, file=sys.stderr)
        tune.report({"final": 1, "failed": 1, "error": _first_line(exc)[:2000],
                     "traceback": text[-8000:], "trial_seconds": time.time() - started})
        return
    metrics["trial_seconds"] = time.time() - started
    tune.report({**metrics, "final": 1})


def _configure_devices(settings: dict) -> int:
    """Device setup that must precede TensorFlow: done with environment variables, so it costs
    nothing for scorers that never import TensorFlow (and cannot come too late for those that do).

    - CPU-only trials are hidden from the GPUs (Ray 2.60 no longer does it for them);
    - GPU memory grows on demand, so fractional-GPU trials can share a card;
    - TensorFlow's thread pools match the trial's CPU share, not the machine's cores.
    """
    cpus = max(1, int(settings["cpus"]))
    if settings["gpus"] <= 0:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(cpus)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(min(cpus, 2))
    os.environ["OMP_NUM_THREADS"] = str(cpus)
    return cpus


def _configure_tensorflow(settings: dict, cpus: int) -> None:
    """``nasplay.devices.configure`` for scorers that use TensorFlow (built-ins, or a custom one
    whose module imported it), before any tensor exists."""
    if settings["scorer"] in BUILTIN_SCORERS or "tensorflow" in sys.modules:
        from nasplay import devices

        devices.configure(cpus, settings["gpus"] > 0, settings["mixed_precision"])


def _plain(metrics: Any) -> dict:
    """Metrics as JSON-able Python values (numpy scalars become floats and ints)."""
    if not isinstance(metrics, dict):
        raise TypeError(f"a scorer must return a dict of metrics, got {type(metrics).__name__}")
    plain = {}
    for key, value in metrics.items():
        if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()
        plain[str(key)] = value
    return plain


# ---------------------------------------------------------------------- built-in scorers


def score_proxy(genotype, ctx: TrialContext) -> dict:
    """Train the candidate briefly (``nasplay.proxy``) and score it on held-out images."""
    from nasplay import proxy

    config = proxy.ProxyConfig(**ctx.options, cpus=ctx.cpus, gpus=ctx.gpus > 0,
                               mixed_precision=ctx.mixed_precision)
    callbacks = [_epoch_reporter(ctx, config)] if ctx.report_epochs else []
    _, metrics = proxy.train(genotype, config, callbacks=callbacks)
    metrics["epoch"] = config.epochs
    return metrics


def _epoch_reporter(ctx: TrialContext, config):
    """A Keras callback reporting validation accuracy after each epoch but the last (ASHA), with
    the network's size and the training time so far, so that a candidate ASHA stops early still
    has a complete record."""
    import keras

    from nasplay import proxy
    from nasplay.flops import count_flops

    class EpochReporter(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()
            self.size = {"params": int(self.model.count_params()),
                         "flops": int(count_flops(self.model))}

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 >= config.epochs:
                return  # the final result, with every metric, follows from the trial
            train_seconds = time.perf_counter() - self.start
            sets = proxy.subsets(config)
            ctx.report({ctx.metric: proxy.accuracy(self.model, sets.x_val, sets.y_val),
                        "epoch": epoch + 1, **self.size, "train_seconds": train_seconds,
                        "train_accuracy": float((logs or {}).get("accuracy", math.nan))})

    return EpochReporter()


def score_zero_cost(genotype, ctx: TrialContext) -> dict:
    """The NASWOT score of the untrained candidate (``nasplay.zero_cost``), on real images when
    the run names a data source, else on noise."""
    from nasplay import zero_cost

    options = dict(ctx.options)
    data = options.pop("data", None)
    options["input_shape"] = tuple(options.get("input_shape", (32, 32, 3)))
    config = zero_cost.ZeroCostConfig(**options)
    images = None
    if data is not None:
        from nasplay import proxy

        sets = proxy.subsets(proxy.ProxyConfig(data=data, train_size=config.batch_size,
                                               val_size=1, subset_seed=config.seed))
        images = sets.x_train
    return zero_cost.evaluate(genotype, config, images=images)

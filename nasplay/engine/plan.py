"""The plan of a search: its settings resolved and checked, before anything is written.

``make_plan`` turns what the user asked for (a ``SearchConfig``, and with ``--resume`` the run's
own ``config.json``) into a ``Plan``: every default filled in (the scorer's settings, the
searcher's budget-dependent sizes), every setting that can be checked against the space, the
data, the run directory and the cluster address checked. Bad input is one ``UserError``; nothing
has been written and Ray has not been started. No Ray and no TensorFlow here, so the plan is
tested without either.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import warnings
from dataclasses import dataclass, field

from nasplay.engine.config import EXPERIMENT_FIELDS, SearchConfig
from nasplay.errors import UserError, first_line, one_line
from nasplay.runs.rundir import RunDir
from nasplay.runtime.quiet import quieted
from nasplay.scorers import Scorer, get_scorer
from nasplay.scorers.settings import resolve

# How long --address may take to answer a TCP connect before we call it unreachable. Ray itself
# retries an unreachable address for minutes before giving up.
CONNECT_TIMEOUT_S = 5.0


@dataclass
class Plan:
    """A checked search: nothing has been written and Ray has not been touched yet."""

    config: SearchConfig                # every default filled in: what config.json will hold
    resume: bool
    run_dir: RunDir
    scorer: Scorer
    options: dict                       # the scorer's settings, as each trial receives them
    records: list[dict] = field(default_factory=list)    # resume: the run's trials so far
    state: tuple[dict, dict] | None = None                # resume: searcher state, pending steps
    rewrite_config: bool = True         # resume: config.json changes (more trials, workers...)
    notes: list[str] = field(default_factory=list)       # warnings for the user, one line each
    warm_start: list = field(default_factory=list)  # (genotype dict, score) of another run's trials
    rescore_options: dict = field(default_factory=dict)  # --rerank-top: the re-scorer's settings
    best_by_changed: bool = False       # resume: --best-by differs, best_genotype.json re-picked

    @property
    def metric(self) -> str:
        return self.config.metric

    @property
    def remaining(self) -> int:
        return self.config.trials - len(self.records)

    def rescoring_due(self, records: list[dict] | None = None) -> list[dict]:
        """The best ``rerank_top`` completed trials not re-scored yet (after the search)."""
        from nasplay.runs.records import ranked

        best = ranked(self.records if records is None else records, self.metric)
        return [r for r in best[:self.config.rerank_top] if "rescore" not in r]

    @property
    def done(self) -> bool:
        """Nothing left to run: the trials reached, the re-scoring done and the best picked
        by the rule the run was given (``--best-by`` may change on resume)."""
        return self.remaining <= 0 and not self.rescoring_due() and not self.best_by_changed


def make_plan(config: SearchConfig, resume: bool = False,
              explicit: set[str] | None = None) -> Plan:
    """Check and resolve ``config``; with ``resume``, the run's saved settings overridden by the
    ones in ``explicit`` (None: all of ``config``'s, which must then be the run's experiment)."""
    if not isinstance(config, SearchConfig):
        raise TypeError(f"config must be a SearchConfig, got {type(config).__name__}")
    run_dir = RunDir(config.run_dir)
    _check_not_held(run_dir)
    saved = _saved_config(run_dir) if resume else None
    if saved is not None and explicit is not None:
        config = dataclasses.replace(saved, **{k: getattr(config, k) for k in explicit})
        if "scorer_options" in explicit:  # a --config file's settings over the run's own
            config.scorer_options = {**saved.scorer_options, **config.scorer_options}
    config.check()
    _check_space(config.space)
    _check_devices(config)
    scorer = get_scorer(config.scorer)
    _check_scorer_fits(scorer, config)
    if config.backend not in scorer.backends:
        said = " or ".join(scorer.backends)
        raise UserError(f"the {scorer.name} scorer runs on the {said} backend only, not "
                        f"{config.backend}; choose --backend {scorer.backends[0]} or another "
                        f"scorer")
    if config.scheduler == "asha" and not scorer.trains:
        raise UserError(f"--scheduler asha stops candidates between training epochs; the "
                        f"{scorer.name} scorer does not train: use --scheduler fifo")
    config = dataclasses.replace(config, data=_data_path(config),
                                 metric=config.metric or scorer.metric,
                                 warm_start=_absolute(config.warm_start))
    config, options = resolve(scorer, config)
    if config.scheduler == "asha":
        scorer.rungs(options)  # may refuse settings that cannot stop between epochs
    if scorer.check is not None:
        scorer.check(options)
    notes: list[str] = []
    if saved is None:
        config, notes = _budget_defaults(config)
        _check_new_run_dir(run_dir)
    else:
        _check_same_experiment(run_dir, saved, config)
    check_searcher_options(config)
    seeds = _warm_start_results(config) if saved is None and config.warm_start else []
    _check_address(config.address)
    if scorer.preflight is not None and _data_is_here(config):
        with quieted():    # data and models may start a framework here
            scorer.preflight(options)
    config, rescore_options = _rescoring(config, scorer, options)
    plan = Plan(config=config, resume=resume, run_dir=run_dir, scorer=scorer, options=options,
                notes=notes, warm_start=seeds, rescore_options=rescore_options)
    if saved is not None:
        _load_progress(plan, saved)
    return plan


def _check_scorer_fits(scorer: Scorer, config: SearchConfig) -> None:
    """The scorer scores this space's genotypes, and the metric is a score, not one of the
    scorer's report-only metrics (a table's test accuracy must never steer a search)."""
    if not scorer.accepts(config.space):
        raise UserError(f"the {scorer.name} scorer scores genotypes of space(s) "
                        f"{', '.join(scorer.spaces)} only, not {config.space!r}; choose "
                        f"--space {scorer.spaces[0]} or another scorer")
    if config.metric in scorer.report_only:
        raise UserError(f"--metric {config.metric}: the {scorer.name} scorer records it for "
                        f"reports only, a search may not maximize it; use {scorer.metric}")


def _with_added_settings(saved: SearchConfig) -> SearchConfig:
    """A run saved before its scorer gained a setting ran with the value it had then
    (``Scorer.added_since``), not today's default: fill it in, so the run resumes as it was."""
    from nasplay.scorers import SCORERS

    scorer = SCORERS.get(saved.scorer)
    if scorer is None or not scorer.added_since or not saved.scorer_options:
        return saved  # a function scorer, or nothing resolved to compare with
    options = {**scorer.added_since, **saved.scorer_options}
    return dataclasses.replace(saved, scorer_options=options)


def _saved_config(run_dir: RunDir) -> SearchConfig:
    """The run's ``config.json``; one of the older layout (a scorer's flags at the top level)
    resolved, so it compares with today's settings field by field."""
    if not run_dir.config_path.is_file():
        raise UserError(f"nothing to resume in {run_dir.path}: it has no config.json; "
                        f"start the search without --resume")
    saved = _with_added_settings(SearchConfig.load(run_dir.config_path))
    if saved.scorer_flags:
        saved, _ = resolve(get_scorer(saved.scorer), saved)
    return saved


def _load_progress(plan: Plan, saved: SearchConfig) -> None:
    """The trials and searcher state a resumed run continues from."""
    run_dir = plan.run_dir
    plan.records = run_dir.read_trials(repair=False)
    plan.state = run_dir.load_state()
    if plan.state is None and plan.records and plan.remaining > 0:
        raise UserError(f"{run_dir.state_path} is missing, so the searcher cannot continue "
                        f"where it stopped; start a new run (a new --run-dir)")
    plan.rewrite_config = plan.config.to_dict() != saved.to_dict()
    plan.best_by_changed = list(plan.config.best_by) != list(saved.best_by)


# ---------------------------------------------------------------------- the searcher


def searcher_class(name: str) -> type:
    """The class ``--searcher name`` makes (``searchers.SEARCHERS``), without making one."""
    import importlib

    from searchers import SEARCHERS

    module_name, class_name = SEARCHERS[name].split(":")
    return getattr(importlib.import_module(f"searchers.{module_name}"), class_name)


def make_searcher(config: SearchConfig):
    """The searcher ``config`` describes (its options are complete after ``make_plan``)."""
    from search_space import get_space
    from searchers import make_searcher as make

    return make(config.searcher, get_space(config.space), seed=config.seed,
                max_trials=config.trials, **config.searcher_options)


def _budget_defaults(config: SearchConfig) -> tuple[SearchConfig, list[str]]:
    """A new run records the searcher's budget-dependent settings (evolution's population and
    tournament: ``RegularizedEvolution.for_budget``), so its config.json repeats it exactly;
    also the searcher's warnings about the budget (one line each)."""
    cls = searcher_class(config.searcher)
    if not hasattr(cls, "for_budget"):
        return config, []
    from search_space import get_space

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            searcher = cls.for_budget(get_space(config.space), config.trials, seed=config.seed,
                                      **config.searcher_options)
        except (TypeError, ValueError) as e:
            raise UserError(f"searcher_options for {config.searcher}: {first_line(e)}") from None
    options = {**config.searcher_options, **searcher.config()}
    notes = [one_line(w.message) for w in caught if issubclass(w.category, UserWarning)]
    return dataclasses.replace(config, searcher_options=options), notes


def check_searcher_options(config: SearchConfig) -> None:
    """Unknown or out-of-range searcher options fail here, not once the run has started. A
    searcher whose construction builds a Keras model (``uses_keras``, the controller) is only
    checked for unknown options here; its values are checked when the search starts."""
    cls = searcher_class(config.searcher)
    try:
        if getattr(cls, "uses_keras", False):
            import inspect

            inspect.signature(cls).bind(None, seed=config.seed, max_trials=config.trials,
                                        **config.searcher_options)
        else:
            make_searcher(config)
    except (TypeError, ValueError) as e:
        raise UserError(f"searcher_options for {config.searcher}: {first_line(e)}") from None


def _warm_start_results(config: SearchConfig) -> list[tuple[dict, float | None]]:
    """Another run's finished trials, as ``searchers.warm_start`` takes them, checked against
    this search: a run directory of the same space with completed trials scored by our metric."""
    from nasplay.runs import rundir
    from nasplay.runs.records import score_of
    from search_space import get_space
    from searchers import warm_start

    where = rundir.check_run_dir(config.warm_start)
    other = rundir.read_config(where)
    if other.get("space") not in (None, config.space):
        raise UserError(f"--warm-start {where}: that run searched space {other.get('space')!r}, "
                        f"this one searches {config.space!r}; warm-start from a run of the same "
                        f"space")
    results = [(r["genotype"], score_of(r, config.metric)) for r in rundir.read_trials(where)]
    if not any(score is not None for _, score in results):
        raise UserError(f"--warm-start {where}: no completed trial there has a {config.metric!r} "
                        f"score; warm-start from a run with completed trials of this scorer")
    try:  # every genotype of this space (checked on a throwaway searcher)
        from searchers import RandomSearch

        warm_start(RandomSearch(get_space(config.space)), results)
    except ValueError as e:
        raise UserError(f"--warm-start {where}: {one_line(e)}") from None
    return results


def _rescoring(config: SearchConfig, scorer: Scorer, options: dict) -> tuple:
    """``--rerank-top``: the config with the re-scoring metric filled in, and the re-scorer's
    settings (``rerank_options`` over its defaults) for this run's data, seed and hardware.

    Any scorer re-ranks any other, or itself at other settings (a longer training re-ranking a
    short one, by the same metric: recorded as ``rescored_<metric>``); the same scorer at the
    same settings is refused (it would repeat each score)."""
    if not config.rerank_top:
        return config, {}
    rescorer = get_scorer(config.rerank_scorer)
    if not rescorer.accepts(config.space):
        raise UserError(f"--rerank-scorer {rescorer.name} scores genotypes of space(s) "
                        f"{', '.join(rescorer.spaces)} only, not {config.space!r}")
    metric = config.rerank_metric or rescorer.metric
    if metric in rescorer.report_only:
        raise UserError(f"--rerank-metric {metric}: the {rescorer.name} scorer records it for "
                        f"reports only; use {rescorer.metric}")
    # a trained re-scorer needs images where the search's scorer did not (zero-cost on noise);
    # one that takes no data (the nb201 table, synflow) is given none
    takes_data = rescorer.reads_data
    data = config.data if rescorer.name == scorer.name else config.data or "cifar10"
    second = SearchConfig(searcher=config.searcher, space=config.space, trials=config.trials,
                          seed=config.seed, scorer=config.rerank_scorer,
                          data=data if takes_data else None,
                          scorer_options=config.rerank_options,
                          gpus_per_trial=config.gpus_per_trial, address=config.address,
                          run_dir=config.run_dir)
    _, rescore_options = resolve(rescorer, dataclasses.replace(
        second, data=_data_path(second) if takes_data else None), label="rerank_options")
    if rescorer.name == scorer.name and rescore_options == options:
        raise UserError(f"--rerank-scorer {rescorer.name} at the search's own settings would "
                        f"score each candidate again as it was scored: give rerank_options "
                        f"other settings (e.g. more epochs) or choose another scorer")
    if rescorer.check is not None:
        rescorer.check(rescore_options)
    if rescorer.preflight is not None and _data_is_here(second):
        with quieted():
            rescorer.preflight(rescore_options)
    return dataclasses.replace(config, rerank_metric=metric), rescore_options


def _absolute(path: str | None) -> str | None:
    return os.path.abspath(path) if path else path


# ---------------------------------------------------------------------- other checks


def _check_space(name: str) -> None:
    from search_space import get_space

    try:
        get_space(name)
    except (KeyError, ValueError) as e:
        raise UserError(str(e).strip("'\"")) from None


def _check_devices(config: SearchConfig) -> None:
    """The backend is installed here (a local run) and mixed precision has GPUs to run on."""
    from nasplay.runtime.backends import BACKENDS, check_backend

    if config.backend not in BACKENDS:
        raise UserError(f"unknown backend {config.backend!r}; choose one of "
                        f"{', '.join(BACKENDS)}")
    if _local(config):
        check_backend(config.backend)
        cpus = config.num_cpus or os.cpu_count() or 1
        if config.cpus_per_trial is not None and config.cpus_per_trial > cpus:
            raise UserError(f"--cpus-per-trial {config.cpus_per_trial:g} is more than this "
                            f"machine has ({cpus} CPUs); give at most {cpus}")
    if config.mixed_precision and not config.gpus_per_trial:
        raise UserError("mixed precision needs GPU trials (--gpus-per-trial); on a CPU it "
                        "only slows training down: leave it off")


def _local(config: SearchConfig) -> bool:
    return config.address in (None, "local")


def _data_path(config: SearchConfig) -> str | None:
    """``--data`` as an absolute path (Ray runs trials in their own working directories). On a
    cluster the path need only exist on the nodes, so it is not checked here."""
    data = config.data
    if data is None or data == "cifar10":
        return data
    if os.path.exists(data):
        return os.path.abspath(data)
    if _local(config):
        raise UserError(f"--data {data}: no such file or directory; give cifar10, or a folder "
                        f"of CIFAR-10 python batches or of images (<dir>/train/<class>/*.jpg)")
    return data


def _data_is_here(config: SearchConfig) -> bool:
    """Whether the scorer can check its data in this process (a local run, or the path exists)."""
    return _local(config) or (config.data is not None and os.path.exists(config.data))


def _check_not_held(run_dir: RunDir) -> None:
    """Another search writing this run directory is named before anything else is checked."""
    from nasplay.runs.runlock import holder

    pid = holder(run_dir.path)
    if pid is not None and pid != os.getpid():
        raise UserError(f"--run-dir {run_dir.path} is in use by another search (pid {pid}); "
                        f"wait for it to finish or stop it, then --resume")


def _check_new_run_dir(run_dir: RunDir) -> None:
    if run_dir.path.exists() and not run_dir.path.is_dir():
        raise UserError(f"--run-dir {run_dir.path} is a file, not a directory")
    if not run_dir.is_empty():
        what = "a run" if run_dir.config_path.exists() else "other files"
        raise UserError(f"--run-dir {run_dir.path} already holds {what}; continue it with "
                        f"--resume, or choose a new --run-dir")


def _check_same_experiment(run_dir: RunDir, saved: SearchConfig, config: SearchConfig) -> None:
    """``--resume`` must continue the same experiment, not a different one in the same place."""
    for name in EXPERIMENT_FIELDS:
        ours, theirs = getattr(config, name), getattr(saved, name)
        if name == "scorer_options" and ours != theirs:  # named by the setting that differs
            name = next(k for k in sorted({*ours, *theirs}) if ours.get(k) != theirs.get(k))
            ours, theirs = ours.get(name), theirs.get(name)
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
    resolved = _bootstrap_address(address)
    host, _, port = resolved.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except (OSError, ValueError) as e:
        why = getattr(e, "strerror", None) or str(e) or type(e).__name__
        raise UserError(f"--address {address}: cannot reach a Ray cluster at {resolved} ({why}); "
                        f"is `ray start --head` running there?") from None


def _bootstrap_address(address: str) -> str:
    """``auto`` or HOST:PORT as the HOST:PORT Ray would connect to (imports only Ray's helper)."""
    from nasplay.runtime._internals.ray_internals import canonicalize_bootstrap_address

    try:
        resolved = canonicalize_bootstrap_address(address)
    except (ConnectionError, ValueError) as e:
        hint = ("start one with `ray start --head`" if address == "auto"
                else "give HOST:PORT of a Ray head node")
        raise UserError(f"--address {address}: {first_line(e)} ({hint})") from None
    if resolved is None:
        raise UserError(f"--address {address}: no running Ray cluster found; start one with "
                        f"`ray start --head`")
    return resolved

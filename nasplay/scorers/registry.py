"""The scorer registry itself: ``Scorer``, ``SCORERS`` and the lookups (see ``nasplay.scorers``).

A module of its own so that the scorer modules (which import ``Scorer``) and the package that
registers them import one way only.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from nasplay.errors import UserError, first_line

DEFAULT_METRIC = "val_accuracy"


@dataclass(frozen=True)
class Option:
    """One setting a scorer takes by name: ``--FLAG`` on the command line (the CLI builds each
    scorer's flag group from its options), or the key ``FLAG`` in ``scorer_flags``. It sets the
    settings field ``field`` (the flag's own name when None); a name that is no settings field is
    handed to the scorer's options as it is (the one-shot scorer's ``--supernet DIR``). Scorers
    may share a flag (``--filters``): it is one flag, with the first declaration's type."""

    flag: str                               # "cells_per_stage": --cells-per-stage
    help: str                               # for --help; the plan adds the default
    field: str | None = None                # the settings field it sets; None: ``flag``
    type: Callable = int
    metavar: str = "N"
    choices: tuple | None = None
    minimum: int | None = None              # an int of at least this, checked by the plan
    normalize: Callable | None = None       # applied to a given value (a path made absolute)

    @property
    def target(self) -> str:
        return self.field or self.flag

    @property
    def cli(self) -> str:
        return "--" + self.flag.replace("_", "-")


@dataclass(frozen=True)
class Truth:
    """What a tabular benchmark knows of every genotype of its space, for reports
    (``nasplay inspect``): leaderboard ``columns``, ``row(genotype dict) -> {column: value}``
    (None for a genotype it does not hold), and ``summary(completed records, metric)``, one
    line on the run as a whole (or None)."""

    columns: tuple
    row: Callable[[dict], dict | None]
    summary: Callable[[list, str], str | None] | None = None


@dataclass(frozen=True)
class Scorer:
    """One way to score a candidate.

    ``defaults(gpu)`` returns the scorer's settings dataclass with its defaults for CPU or GPU
    trials; the plan fills it from the flags and ``scorer_options`` and stores every field in
    ``config.json`` (so a resume on other hardware scores the same way). ``score`` runs in a Ray
    worker: ``score(genotype, ctx) -> metrics``, where ``ctx`` is a
    ``nasplay.engine.trial.TrialContext`` whose ``options`` are those settings as a JSON-able dict;
    it raises to fail the trial.
    """

    name: str
    metric: str                                 # the score it reports; higher is better
    score: Callable[[Any, Any], dict]           # (genotype, TrialContext) -> metrics
    defaults: Callable[[bool], Any] | None = None   # gpu -> settings dataclass; None: no settings
    # the settings it takes by name (--flags, scorer_options keys); a flag of another scorer
    # does not apply to this one and is refused by name
    options: tuple = ()
    reads_data: bool = False                    # scores on images: takes --data (SearchConfig.data)
    passthrough: tuple = ()                     # SearchConfig fields handed over as options as-is
    seed_fields: tuple = ("seed",)              # settings fields that --seed sets
    per_trial: tuple = ()                       # settings fields each trial sets from its resources
    # options -> the epochs a candidate trains, reported one by one (ASHA's rungs: early
    # stopping asks the scorer; it raises UserError for settings ASHA cannot stop between
    # epochs); None: it does not train, --scheduler asha is refused
    rungs: Callable[[dict], int] | None = None
    backends: tuple = ("tensorflow", "jax", "torch")   # the Keras backends it runs on
    uses_keras: bool = True                     # builds Keras models: devices are set up first
    # checks against the data or the machine, run by the plan before anything is written
    preflight: Callable[[Any], None] | None = None
    # driver side, once per run after the run directory exists and before any trial:
    # prepare(config, run_dir, options) -> options (the one-shot scorer trains its supernet)
    prepare: Callable[[Any, Any, dict], dict] | None = None
    # settings fields added since runs were first saved, with the value a run saved before the
    # field existed had: a resume fills them in, so an older run continues as it was trained
    added_since: dict = field(default_factory=dict)
    # space -> settings that differ from ``defaults(False)`` for CPU trials on that space (a
    # budget measured there): a new run's defaults; flags, scorer_options and a saved run win
    space_defaults: dict = field(default_factory=dict)
    # the spaces whose genotypes it can score (None: any); another is refused by the plan
    spaces: tuple | None = None
    # metrics it records for reports only: never told to a searcher, never the search metric
    # (a table's test accuracy and true rank)
    report_only: tuple = ()
    # checks of the scorer's own files (a table), run by the plan wherever the search runs
    check: Callable[[dict], None] | None = None
    # candidates per Ray trial: a cheap scorer's many candidates share one trial's start-up
    batch: int = 1
    # the ground truth of its spaces (a tabular benchmark's), which reports show for any run
    # of them, whatever scored it
    truth: Truth | None = None

    def accepts(self, space: str) -> bool:
        """Whether it scores genotypes of ``space``."""
        return self.spaces is None or space in self.spaces

    @property
    def trains(self) -> bool:
        """Whether it trains candidates epoch by epoch (so ASHA may stop them early)."""
        return self.rungs is not None


SCORERS: dict[str, Scorer] = {}


def register_scorer(scorer: Scorer) -> Scorer:
    """Add ``scorer`` under its name (replacing one of the same name); returns it."""
    if not isinstance(scorer, Scorer):
        raise TypeError(f"register_scorer takes a Scorer, got {type(scorer).__name__}")
    SCORERS[scorer.name] = scorer
    return scorer


def get_scorer(spec: str) -> Scorer:
    """The scorer ``spec`` names: a registered name, or ``package.module:function``."""
    if spec in SCORERS:
        return SCORERS[spec]
    if not isinstance(spec, str) or ":" not in spec:
        raise UserError(f"unknown scorer {spec!r}; choose one of {', '.join(SCORERS)}, or give "
                        f"a function as 'package.module:function'")
    return _function_scorer(spec)


def option_flags() -> dict[str, Option]:
    """Every flag a registered scorer declares -> its first declaration, in registry order."""
    flags: dict[str, Option] = {}
    for scorer in SCORERS.values():
        for option in scorer.options:
            flags.setdefault(option.flag, option)
    return flags


def default_metric(name: str | None) -> str:
    """The metric the scorer ``name`` reports (``val_accuracy`` for unknown or custom ones)."""
    scorer = SCORERS.get(name) if isinstance(name, str) else None
    return scorer.metric if scorer else DEFAULT_METRIC


def score_metrics() -> list[str]:
    """The metric of every registered scorer, cheapest rung first: a candidate's scores. A
    cheap rung's best candidates are re-scored by the next (``--rerank-top``), so one record can
    hold several; ``inspect`` shows each one present."""
    return list(dict.fromkeys(scorer.metric for scorer in SCORERS.values()))


def truth_for(space: str | None) -> Scorer | None:
    """The registered scorer that knows the ground truth of ``space`` (a tabular benchmark's),
    or None."""
    return next((s for s in SCORERS.values()
                 if s.truth is not None and s.spaces and space in s.spaces), None)


def _function_scorer(spec: str) -> Scorer:
    """A ``package.module:function`` scorer: ``scorer_options`` (and any scorer's flags, by
    their names: ``subset``, ``epochs``, ...) are its options, unchecked (they are the
    function's to read). It must be importable on every Ray node."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UserError(f"scorer {spec!r}: expected a scorer name or package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UserError(f"scorer {spec!r}: cannot import {module_name} ({first_line(e)}); "
                        f"it must be importable on every Ray node") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UserError(f"scorer {spec!r}: {module_name} has no function {attr!r}")
    return Scorer(name=spec, metric=DEFAULT_METRIC, score=fn, reads_data=True,
                  rungs=lambda options: options.get("epochs") or 100, uses_keras=False)

"""``nasplay search``: the command line of a search (flags -> ``SearchConfig`` ->
``nasplay.engine.api``).

The same experiment runs on a laptop, a GPU box and a cluster; only where it runs changes::

    nasplay search --searcher evolution --space nasnet --trials 200 --run-dir runs/evo
    nasplay search ... --workers 8 --gpus-per-trial 0.5           # 2 candidates per GPU
    ray start --head; nasplay search ... --address auto            # an existing Ray cluster
    nasplay search --run-dir runs/evo --resume                     # after Ctrl-C or kill -9

Flags default to None so that ``run`` knows which were given: a ``--config`` file or (with
``--resume``) the run's own config supplies the rest, and the plan fills the remaining defaults.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from nasplay.engine.config import SCHEDULERS, SearchConfig, searcher_names
from nasplay.errors import UserError

# argparse destination -> SearchConfig field, for every general flag that is a setting (each
# scorer's own flags come from its declaration: add_scorer_flags)
FLAG_FIELDS = ("searcher", "space", "trials", "run_dir", "data", "workers", "cpus_per_trial",
               "gpus_per_trial", "address", "seed", "scheduler", "scorer", "max_failures",
               "warm_start", "rerank_top", "rerank_scorer", "rerank_metric", "backend", "metric",
               "best_by")
SEARCHER_OPTIONS = ("population_size", "sample_size")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``nasplay search`` flags; ``--help`` shows the defaults a new search gets."""
    add = parser.add_argument
    add("--searcher", choices=searcher_names(), help="search algorithm (needed for a new search)")
    add("--space", metavar="NAME",
        help="search space: nasnet, amoebanet, article, darts, nb201 (needed for a new search)")
    add("--trials", type=int, metavar="N",
        help="candidates to evaluate, completed + failed (needed for a new search)")
    add("--run-dir", metavar="DIR", help="where the run's records go (required)")
    add("--data", metavar="SRC", help="cifar10 (downloaded once), or a folder of CIFAR python "
        "batches or of images (default: cifar10)")
    _add_where(add)
    _add_scorer_options(add)
    add_scorer_flags(parser)


def add_scorer_flags(parser: argparse.ArgumentParser) -> None:
    """A flag group per scorer, built from the options it declares (``nasplay.scorers.Option``);
    a flag two scorers share is added once, in the first group (the default scorer's first)."""
    from nasplay.scorers import SCORERS

    seen: set[str] = set()
    for scorer in sorted(SCORERS.values(), key=lambda s: s.name != SearchConfig.scorer):
        if not scorer.options:
            continue
        shared = [f"{o.cli}{_default(scorer, o, ' {}')}" for o in scorer.options
                  if o.flag in seen]
        said = f"also takes (above; its defaults): {', '.join(shared)}" if shared else None
        group = parser.add_argument_group(f"--scorer {scorer.name}", said)
        for option in scorer.options:
            if option.flag not in seen:
                seen.add(option.flag)
                group.add_argument(option.cli, dest=f"scorer_flag_{option.flag}",
                                   type=option.type, metavar=option.metavar,
                                   choices=option.choices, help=_help(scorer, option))


def _help(scorer, option) -> str:
    return option.help + _default(scorer, option, " (default: {})")


def _default(scorer, option, form: str) -> str:
    """The option's default in ``form``: ``'2000; 20000 with GPU trials'``; '' if none."""
    defaults = scorer.defaults
    if defaults is None or not hasattr(defaults(False), option.target):
        return ""
    cpu, gpu = getattr(defaults(False), option.target), getattr(defaults(True), option.target)
    spaces = "".join(f"; {values[option.target]} on {space} (CPU)"
                     for space, values in scorer.space_defaults.items() if option.target in values)
    return form.format((f"{cpu}" if cpu == gpu else f"{cpu}; {gpu} with GPU trials") + spaces)


def _add_where(add) -> None:
    """Where and how the trials run (may change on --resume)."""
    add("--workers", type=int, metavar="W", help="trials evaluated at once (default: 1)")
    add("--cpus-per-trial", type=float, metavar="C",
        help="CPUs per trial (default: the cluster's CPUs / workers)")
    add("--gpus-per-trial", type=float, metavar="G",
        help="GPUs per trial, fractions allowed: 0.5 packs two per GPU (default: 0)")
    add("--address", metavar="RAY",
        help="join a running Ray cluster: auto, or HOST:PORT (default: start a local one)")
    add("--backend", metavar="NAME",
        help="the Keras backend trials run on: tensorflow, jax or torch (default: tensorflow; "
             "fixed for a run)")
    add("--resume", action="store_true",
        help="continue the run in --run-dir up to --trials (after Ctrl-C, kill -9, a crash)")


def _add_scorer_options(add) -> None:
    """How candidates are scored and re-scored, and what else defines the experiment."""
    from nasplay.scorers import SCORERS

    add("--seed", type=int, metavar="S", help="seeds the searcher and the scorer (default: 0)")
    add("--config", metavar="FILE",
        help="a JSON file of settings (nasplay.engine.config.SearchConfig's fields); flags "
             "override it")
    add("--scheduler", choices=SCHEDULERS,
        help="fifo: train every candidate fully; asha: stop weak candidates early (by epoch) "
             "(default: fifo)")
    add("--scorer", metavar="NAME",
        help=f"how candidates are scored: {', '.join(SCORERS)}, or package.module:function "
             f"(default: proxy, a short training)")
    add("--metric", metavar="NAME",
        help="the reported metric the search maximizes (default: the scorer's own score)")
    add("--warm-start", metavar="RUN_DIR",
        help="seed the searcher with another run's completed trials (same space): evolution's "
             "population, the controller's baseline and first updates")
    add("--rerank-top", type=int, metavar="K",
        help="after the search, re-score the best K with a costlier scorer; the best by its "
             "score becomes the run's best (both scores are recorded; default: 0, none)")
    add("--rerank-scorer", metavar="NAME",
        help="the re-scoring scorer (default: proxy, the standalone proxy; its settings: "
             "rerank_options in --config FILE)")
    add("--rerank-metric", metavar="NAME",
        help="the re-scorer's metric that picks the best (default: its own score, e.g. "
             "val_accuracy; neg_val_loss ranks short trainings better)")
    add("--best-by", type=_metric_list, metavar="M1,M2",
        help="the run's best (best_genotype.json, export, train): the highest rank average "
             "of these recorded metrics, e.g. val_accuracy,params (a re-scoring's: "
             "rescored_NAME); default: the best re-scored one, else the best by --metric")
    add("--max-failures", type=int, metavar="N",
        help="retries of a trial whose worker or node died (default: 1)")
    _add_searcher_options(add)


def _metric_list(text: str) -> list[str]:
    """``--best-by val_accuracy,params`` -> ["val_accuracy", "params"] (checked by the config)."""
    return [name.strip() for name in text.split(",")]


def _add_searcher_options(add) -> None:
    add("--population-size", type=int, metavar="P",
        help="evolution: population size (default: trials / 10, between 10 and 50)")
    add("--sample-size", type=int, metavar="S",
        help="evolution: tournament size (default: population / 2, at least 2)")


def config_from_args(args: argparse.Namespace) -> tuple[SearchConfig, set[str]]:
    """The SearchConfig the flags describe, and the names of the settings given explicitly
    (in ``--config FILE`` or as flags; flags win). Defaults the plan fills are not filled here."""
    values: dict[str, Any] = {}
    if getattr(args, "config", None):
        values.update(_read_config_file(args.config))
    for name in FLAG_FIELDS:
        value = getattr(args, name, None)
        if value is not None:
            if name in ("cpus_per_trial", "gpus_per_trial") and float(value).is_integer():
                value = int(value)
            values[name] = value
    options = {key: getattr(args, key) for key in SEARCHER_OPTIONS
               if getattr(args, key, None) is not None}
    if options:
        values["searcher_options"] = {**values.get("searcher_options", {}), **options}
    flags = {name[len("scorer_flag_"):]: value for name, value in vars(args).items()
             if name.startswith("scorer_flag_") and value is not None}
    if flags:
        values["scorer_flags"] = {**values.get("scorer_flags", {}), **flags}
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
    keys = json.loads(Path(path).read_text(encoding="utf-8")).keys()
    return {key: getattr(config, key) for key in keys}


def run(args: argparse.Namespace) -> int:
    from nasplay.engine.api import search

    config, given = config_from_args(args)
    return search(config, resume=args.resume, explicit=given).exit_code

"""What ``nasplay train`` trains and how: the genotype, and the ProxyConfig from a search run's own
settings, ``nasplay train``'s defaults and the flags given.

A search scores each candidate with a ProxyConfig that its ``config.json`` records in full: the
top-level ``data`` and ``seed``, and every other ProxyConfig field in ``scorer_options``
(``nasplay.engine.plan`` writes them so; runs from before scorers owned their settings held
``subset``, ``epochs``, ``filters`` and ``cells_per_stage`` at the top level, still read).
Training a genotype "like" that run (``--genotype RUN_DIR`` or ``--like RUN_DIR``) starts from
exactly those settings, and the run's ``backend`` where it names one, so the same seed reproduces
the search's score for that genotype; a flag given on the command line overrides its setting.
Without a run, ``nasplay train``'s own defaults (:data:`TRAIN_DEFAULTS`: a longer, wider training)
apply.

Nothing here imports Keras: the backend is chosen after this, before Keras is imported.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from nasplay.errors import UserError, check_int

RUN_GENOTYPE_FILE = "best_genotype.json"
# nasplay train's own defaults (no run to train like); every other field: ProxyConfig's
TRAIN_DEFAULTS = {"val_size": 1000, "epochs": 10, "filters": 16, "cells_per_stage": 2,
                  "seed": 0, "batch_size": 64, "learning_rate": 0.05, "cosine": False}
# flag (argparse dest) -> ProxyConfig field
FLAG_FIELDS = {"data": "data", "subset": "train_size", "val_size": "val_size",
               "epochs": "epochs", "filters": "filters", "cells_per_stage": "cells_per_stage",
               "seed": "seed", "batch_size": "batch_size", "lr": "learning_rate",
               "augment": "augment", "cutout": "cutout", "cosine": "cosine",
               "drop_path": "drop_path", "auxiliary_head": "auxiliary_head", "cpus": "cpus",
               "mixed_precision": "mixed_precision"}
# NAS-Bench-201's N (cells.nb201.NB201_CELLS_PER_STAGE; no Keras here, a test checks they agree):
# the default of an nb201 genotype, whose network is NAS-Bench-201's
NB201_CELLS_PER_STAGE = 5
# a run's top-level config.json key -> ProxyConfig field (the older layout's included)
RUN_FIELDS = {"data": "data", "subset": "train_size", "epochs": "epochs", "filters": "filters",
              "cells_per_stage": "cells_per_stage", "seed": "seed"}
# ProxyConfig fields a run's trials set from their own resources: never taken from a run
PER_TRIAL_FIELDS = ("cpus", "gpus", "mixed_precision")
# what any scorer's settings say of the images and the network, taken from a run of any scorer
SIZE_FIELDS = ("train_size", "filters", "cells_per_stage")


@dataclasses.dataclass
class TrainPlan:
    """Everything ``nasplay train`` decided before loading data or importing Keras."""

    genotype: object            # search_space.Genotype
    config: object              # scorers.proxy.training.ProxyConfig (train_size None: all but val)
    like: Path | None           # the run whose settings were used
    all_training_images: bool   # train_size is "all but the validation images"


def plan(args: argparse.Namespace) -> TrainPlan:
    """The genotype and settings of ``nasplay train ARGS`` (UserError on bad input)."""
    from nasplay.scorers.proxy.training import ProxyConfig

    if args.genotype is None and args.like is None:
        raise UserError("give --genotype (a published name, a NAS-Bench-201 cell string, a "
                        "genotype JSON file or a run directory) or --like RUN_DIR (trains that "
                        "run's best cell)")
    _check_flags(args)
    like = _run_dir(args.like, "--like") if args.like else None
    genotype_spec = args.genotype if args.genotype is not None else str(like)
    if like is None and Path(genotype_spec).is_dir():
        like = _run_dir(genotype_spec, "--genotype")
    genotype = resolve_genotype(genotype_spec)
    given = {FLAG_FIELDS[k]: v for k, v in vars(args).items() if k in FLAG_FIELDS and v is not None}
    if "seed" in given:
        given["subset_seed"] = given["seed"]  # one --seed: weights, order and images
    base = read_run(like) if like else {**train_defaults(genotype), "subset_seed": 0}
    values = {**base, **given}
    whole = "train_size" not in values
    # without a size, one batch's worth passes the checks; the data decides it later
    values.setdefault("train_size", values.get("batch_size", ProxyConfig.batch_size))
    try:
        config = ProxyConfig(**values)
    except TypeError as e:
        raise UserError(f"{like}/config.json: {e}") from None
    try:
        config.check()
    except UserError as e:
        raise UserError(f"{e} (check --subset, --batch-size, --lr, --drop-path, --cutout)") \
            from None
    _check_fits(genotype, config)
    return TrainPlan(genotype, config, like, whole)


def train_defaults(genotype) -> dict:
    """:data:`TRAIN_DEFAULTS`, with NAS-Bench-201's N for an edge genotype: its network is
    NAS-Bench-201's, which a user training an ``nb201`` cell expects at its own size."""
    from search_space import EdgeGenotype

    if isinstance(genotype, EdgeGenotype):
        return {**TRAIN_DEFAULTS, "cells_per_stage": NB201_CELLS_PER_STAGE}
    return dict(TRAIN_DEFAULTS)


def _check_fits(genotype, config) -> None:
    """NAS-Bench-201's network (an edge genotype) has no drop path and no auxiliary head:
    refused here, in one line, before any data is loaded (the network builder would too)."""
    from search_space import EdgeGenotype

    if not isinstance(genotype, EdgeGenotype):
        return
    if config.drop_path:
        raise UserError(f"--drop-path {config.drop_path}: NAS-Bench-201's network (an "
                        f"{genotype.space} genotype) has no drop path; leave it at 0")
    if config.auxiliary_head:
        raise UserError(f"--auxiliary-head: NAS-Bench-201's network (an {genotype.space} "
                        f"genotype) has no auxiliary head; use --no-auxiliary-head")


def run_backend(args: argparse.Namespace) -> str | None:
    """The backend recorded by the run ``args`` trains like (``--like``, or ``--genotype``
    naming a run directory), if any; read without importing Keras."""
    spec = args.like or args.genotype
    if spec is None or not (Path(spec) / "config.json").is_file():
        return None
    from nasplay.runs.rundir import read_config

    backend = read_config(spec).get("backend")
    return backend if isinstance(backend, str) else None


def _check_flags(args: argparse.Namespace) -> None:
    for flag, minimum in (("subset", 1), ("val_size", 1), ("epochs", 1), ("filters", 1),
                          ("cells_per_stage", 0), ("batch_size", 1), ("cutout", 0),
                          ("cpus", 1)):
        value = getattr(args, flag)
        if value is not None:
            check_int(f"--{flag.replace('_', '-')}", value, minimum)


def read_run(run_dir: Path) -> dict:
    """The ProxyConfig fields a run scored its candidates with.

    A run scored by another scorer (zero-cost, one-shot) recorded no training settings: only its
    data, sizes and seed are taken.
    """
    from nasplay.scorers.proxy.training import ProxyConfig
    from nasplay.runs.rundir import read_config

    config = read_config(run_dir)
    proxy = {field: config[key] for key, field in RUN_FIELDS.items()
             if config.get(key) is not None}
    if "seed" in proxy:
        proxy["subset_seed"] = proxy["seed"]
    known = {f.name for f in dataclasses.fields(ProxyConfig)} - set(PER_TRIAL_FIELDS)
    options = config.get("scorer_options") or {}
    if not isinstance(options, dict):
        return proxy
    if _trains_with_proxy_config(config) and options:
        options = {**_added_since(config), **options}  # a setting the run predates: as it ran
        proxy.update({k: v for k, v in options.items() if k in known})
    else:
        proxy.update({k: options[k] for k in SIZE_FIELDS if options.get(k) is not None})
    return proxy


def _run_scorer(run_config: dict):
    """The registered scorer the run was scored by (None: a function scorer)."""
    from nasplay.engine.config import SearchConfig
    from nasplay.scorers import SCORERS

    return SCORERS.get(run_config.get("scorer", SearchConfig.scorer))


def _added_since(run_config: dict) -> dict:
    """The values the run's scorer had for settings added since (``Scorer.added_since``)."""
    scorer = _run_scorer(run_config)
    return dict(scorer.added_since) if scorer else {}


def _trains_with_proxy_config(run_config: dict) -> bool:
    """Whether the run's scorer's settings are a ProxyConfig (the registry says, by its
    defaults), so its ``scorer_options`` are training settings."""
    from nasplay.scorers.proxy.training import ProxyConfig

    scorer = _run_scorer(run_config)
    return bool(scorer and scorer.defaults and isinstance(scorer.defaults(False), ProxyConfig))


def _run_dir(spec: str, flag: str) -> Path:
    path = Path(spec)
    if not path.is_dir():
        raise UserError(f"{flag} {spec}: not a directory; give a search's --run-dir")
    if not (path / RUN_GENOTYPE_FILE).is_file() and not (path / "config.json").is_file():
        raise UserError(f"{flag} {spec}: a directory without {RUN_GENOTYPE_FILE} or config.json; "
                        f"give a run directory with a finished trial, a genotype JSON file or a "
                        f"published name")
    return path


def resolve_genotype(spec: str):
    """A genotype from a published name, a NAS-Bench-201 cell string (``|nor_conv_3x3~0|+...``),
    a JSON file, or a run directory's best genotype (``search_space.load_genotype`` reads all
    but the last)."""
    from search_space import load_genotype

    path = Path(spec)
    if path.is_dir():
        best = path / RUN_GENOTYPE_FILE
        if not best.is_file():
            raise UserError(f"--genotype {spec}: a directory without {RUN_GENOTYPE_FILE}; "
                            f"give a run directory with a finished trial, a genotype JSON file "
                            f"or a published name")
        spec = str(best)
    try:
        return load_genotype(spec)
    except ValueError as e:
        raise UserError(f"--genotype: {e}") from None


def search_score(run_dir: Path | None, genotype) -> tuple[str, float] | None:
    """(metric, score) the run recorded for ``genotype`` (its first completed trial), or None;
    for a trial the run re-scored (``--rerank-top``), its re-scoring's metric and score, which
    chose the run's best (``records.run_best``)."""
    if run_dir is None:
        return None
    from nasplay.runs.rundir import read_config, read_trials
    from search_space import Genotype

    metric = read_config(run_dir).get("metric") or "val_accuracy"
    for record in read_trials(run_dir):
        try:
            same = Genotype.from_dict(record.get("genotype")).hash() == genotype.hash()
        except (ValueError, TypeError, AttributeError):
            continue
        rescore = record.get("rescore") or {}
        by = rescore.get("metric") if rescore.get("status") == "completed" else metric
        score = (record.get("metrics") or {}).get(by)
        if same and record.get("status") == "completed" and isinstance(score, (int, float)):
            return by, float(score)
    return None

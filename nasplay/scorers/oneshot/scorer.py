"""The one-shot scorer (``--scorer oneshot``): accuracy with weights inherited from a supernet.

Once per run, before any trial, the driver trains a supernet that holds every op of the space
(``nasplay.scorers.oneshot.supernet``; SPOS's uniform paths, or ``--sampler controller`` for ENAS's)
into ``RUN_DIR/supernet/``, checkpointed each epoch so a killed run resumes its training; or reuses
a trained one (``--supernet DIR``, checked against the space, width and data first). Each trial
then scores its candidate in seconds: batch-norm statistics re-estimated for the candidate's path
on a few training batches, then accuracy on the validation subset. A Ray worker loads the
supernet once and keeps it between trials.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

from nasplay.errors import UserError, plural
from nasplay.scorers.shared_options import CELLS_PER_STAGE, FILTERS, SUBSET
from nasplay.scorers.registry import Option, Scorer

SUPERNET_DIR = "supernet"        # in the run directory
# options that say where the supernet is, beside OneShotConfig's fields
_WHERE = ("supernet", "supernet_dir", "space", "run_dir")
OPTIONS = (
    SUBSET, FILTERS, CELLS_PER_STAGE,
    Option("supernet_epochs", "supernet training epochs", field="epochs", metavar="E",
           minimum=1),
    Option("sampler", "the paths the supernet trains on: uniform (SPOS), or the RL controller's "
           "samples (ENAS)", type=str, metavar="NAME", choices=("uniform", "controller")),
    Option("supernet", "reuse a trained supernet (e.g. another run's RUN_DIR/supernet) of the "
           "same space, width and data", type=str, metavar="DIR", normalize=os.path.abspath),
    Option("shallow_epochs", "first train a supernet of one cell a stage for E epochs, then grow "
           "it to --cells-per-stage and train --supernet-epochs more (nb201: the way a "
           "supernet of the table's depth learns on a CPU)", metavar="E", minimum=0),
    Option("finetune_steps", "SGD steps on each candidate's path, from the inherited weights, "
           "before scoring it (restored after; ~0.25 s a step here); ranks better, costs more",
           metavar="K", minimum=0),
)
# nb201's CPU defaults: a supernet of the table's own depth (5 cells a stage, 16 filters), grown
# from one of 1 cell a stage trained 25 epochs on 25,000 images (~21 min here), then trained 2
# epochs at a gentler peak rate (~8 min): it ranks 200 random cells at Kendall 0.56 [0.49, 0.63]
# by accuracy (0.49 for a second training), where the 1x16 supernet it grew from ranks them at
# 0.33 (BENCHMARKS.md, "every scorer against the table"); ~3.3 s a candidate
NB201_CPU = {"filters": 16, "cells_per_stage": 5, "train_size": 25000, "shallow_epochs": 25,
             "shallow_learning_rate": 0.05, "epochs": 2, "learning_rate": 0.02}
# said before the first trial, which otherwise sits at "[0/N] ... 1 running ... ETA ?"
FIRST_TRIAL_NOTE = ("nasplay search: the first candidate (on each worker) loads the supernet and "
                    "traces its graph: minutes on a CPU; the candidates after it take seconds")


def _defaults(gpu: bool):
    from nasplay.scorers.oneshot.supernet import OneShotConfig

    return OneShotConfig(gpus=gpu)


def _config(options: dict):
    from nasplay.scorers.oneshot.supernet import OneShotConfig

    return OneShotConfig(**{k: v for k, v in options.items() if k not in _WHERE})


def _preflight(options: dict) -> None:
    """The data holds the subsets; a ``--supernet DIR`` to reuse is a finished supernet of this
    space, width and data (one line naming the first difference otherwise)."""
    from nasplay.data.subsets import load_subsets
    from nasplay.scorers.oneshot.supernet import expected_meta, load_supernet

    from nasplay.scorers.oneshot.train import supernet_space

    config = _config(options)
    supernet_space(options["space"], config)  # a space a supernet holds, with these settings
    load_subsets(config.data, config.train_size, config.val_size, config.subset_seed,
                 cache_dir=config.cache_dir)
    if options.get("supernet"):
        load_supernet(options["supernet"], expect=expected_meta(options["space"], config))
    own = Path(options["run_dir"]) / SUPERNET_DIR
    if own.is_dir():  # a resumed run's partial supernet: readable, and trained as configured
        from nasplay.scorers.oneshot import checkpoint as ckpt

        checkpoint = ckpt.read(own)
        meta = checkpoint.meta if checkpoint else ckpt.read_meta(own)
        if meta is not None:
            ckpt.check_matches(meta, ckpt.training_identity(options["space"], config), own,
                               "the supernet training")


def _prepare(config, run_dir, options: dict) -> dict:
    """Train (or resume, or reuse) the run's supernet; the trials get its directory.

    The training runs in a child process: its traced graph and optimizer state (gigabytes) are
    freed when it ends instead of staying in the driver for the whole search. Ctrl-C or a kill
    stops it after its last finished epoch, which a resumed run continues from.
    """
    if options.get("supernet"):
        print(FIRST_TRIAL_NOTE, flush=True)
        return {**options, "supernet_dir": str(Path(options["supernet"]).resolve())}
    directory = Path(run_dir.path) / SUPERNET_DIR
    epochs = plural(options["epochs"], "epoch")
    if options.get("shallow_epochs"):
        epochs = (f"{plural(options['shallow_epochs'], 'epoch')} at 1 cell a stage, then "
                  f"{epochs} grown to {options['cells_per_stage']}")
    print(f"nasplay search: training the {config.space} supernet in {directory} "
          f"({epochs}; resumes where it stopped)", flush=True)
    training = _config(options).replace(gpus=config.gpus_per_trial > 0)
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_train, args=(config.space, training, str(directory),
                                                 1 if sys.stdout.isatty() else 2, config.backend))
    child.start()
    child.join()
    if child.exitcode != 0:
        raise UserError(f"the supernet training in {directory} failed (exit status "
                        f"{child.exitcode}; its error is above); fix it and --resume")
    print(FIRST_TRIAL_NOTE, flush=True)
    return {**options, "supernet_dir": str(directory.resolve())}


def _train(space: str, config, directory: str, verbose: int, backend: str) -> None:
    """The child process's job, on the run's backend (selected before Keras is imported; quiet
    like its parent; a UserError is one line, exit 2)."""
    from nasplay.runtime import quiet
    from nasplay.runtime.backends import select_backend
    from nasplay.errors import one_line
    from nasplay.scorers.oneshot.supernet import train_supernet

    try:
        select_backend(backend)
        quiet.start_keras(quiet.find_devices)
        train_supernet(space, config, directory, verbose=verbose)
    except UserError as e:
        print(f"nasplay search: error: {one_line(e)}", file=sys.stderr, flush=True)
        sys.exit(2)


def score(genotype, ctx) -> dict:
    from nasplay.scorers.oneshot.supernet import cached_scorer

    config = _config(ctx.options).replace(cpus=ctx.cpus, gpus=ctx.gpus > 0)
    return cached_scorer(ctx.options["supernet_dir"], config, ctx.options.get("space")
                         ).score(genotype)


SCORER = Scorer(
    name="oneshot", metric="oneshot_accuracy", score=score, defaults=_defaults,
    options=OPTIONS, reads_data=True,
    passthrough=("space", "run_dir"), seed_fields=("seed", "subset_seed"),
    per_trial=("cpus", "gpus"), preflight=_preflight, prepare=_prepare,
    backends=("tensorflow", "torch"),   # engine_tf / engine_torch beside this module
    space_defaults={"nb201": NB201_CPU},
    # supernets trained before these options had affine candidate ops and a summing head
    added_since={"affine_ops": True, "loose_mean": False, "shallow_epochs": 0,
                 "shallow_learning_rate": 0.05})

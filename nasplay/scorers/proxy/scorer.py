"""The proxy scorer (``--scorer proxy``, the default): train the candidate briefly, score it on
held-out training images (``nasplay.scorers.proxy.training``). About a minute a candidate on 2 CPU
cores."""

from __future__ import annotations

import math
import time

from nasplay.errors import UserError
from nasplay.scorers.registry import Option, Scorer
from nasplay.scorers.shared_options import CELLS_PER_STAGE, FILTERS, SUBSET

OPTIONS = (SUBSET, Option("epochs", "training epochs per candidate", metavar="E", minimum=1),
           FILTERS, CELLS_PER_STAGE,
           Option("repeats", "trainings per candidate, each with its own seed and images, "
                  "scored by their mean: steadier, R times the cost", metavar="R", minimum=1),
           Option("size_prior", "held-out loss a doubling of the parameter count is worth in "
                  "the metric sized_neg_val_loss (--metric sized_neg_val_loss); the size is a "
                  "second signal beside a short training's loss", type=float, metavar="B"))


# NAS-Bench-201's cells on the CPU: a network of the table's own depth (C=8, N=5) trained 1 epoch
# on 10,000 images and scored on 2,000 ranks 50 random cells at Spearman 0.77 by accuracy, 0.83 by
# held-out loss, ~30 s a cell on 2 cores, where the CPU defaults (C=8, N=1, 3 x 2,000) rank a random
# search's 646 cells at 0.52-0.56 (BENCHMARKS.md, "The proxy's budget")
NB201_CPU = {"filters": 8, "cells_per_stage": 5, "epochs": 1, "train_size": 10000,
             "val_size": 2000}


def _defaults(gpu: bool):
    from nasplay.scorers.proxy.training import ProxyConfig

    return ProxyConfig.for_gpu() if gpu else ProxyConfig()


def _preflight(options: dict) -> None:
    """The subsets must fit the data: load the source (cached after its first decode) and carve
    them, so a subset larger than the data fails before the run directory exists."""
    from nasplay.scorers.proxy import training as proxy

    proxy.subsets(proxy.ProxyConfig(**options))


def score(genotype, ctx) -> dict:
    """Train the candidate briefly (``training`` beside this module) and score it on held-out
    images."""
    from nasplay.scorers.proxy import training as proxy

    config = proxy.ProxyConfig(**ctx.options, cpus=ctx.cpus, gpus=ctx.gpus > 0,
                               mixed_precision=ctx.mixed_precision)
    callbacks = [_epoch_reporter(ctx, config)] if ctx.report_epochs else []
    metrics = proxy.evaluate(genotype, config, callbacks=callbacks)
    metrics["epoch"] = config.epochs
    return metrics


def _rungs(options: dict) -> int:
    """ASHA's rungs: the epochs of the candidate's one training. Repeated trainings are scored
    only by their mean, after the last one, so ASHA cannot compare them between epochs."""
    repeats = options.get("repeats", 1)
    if repeats > 1:
        raise UserError(f"--scheduler asha stops a candidate between the epochs of its training; "
                        f"--repeats {repeats} scores it by the mean of {repeats} whole trainings: "
                        f"use --scheduler fifo, or --repeats 1")
    return options["epochs"]


def _epoch_reporter(ctx, config):
    """A Keras callback reporting the held-out scores after each epoch but the last (ASHA): the
    search's metric as the trial's final result computes it (accuracy, the negated loss, or the
    loss with the size prior), with the network's size and the training time so far, so that a
    candidate ASHA stops early still has a complete record."""
    import keras

    from nasplay.scorers.proxy import training as proxy
    from nasplay.scorers.proxy.flops import count_flops

    class EpochReporter(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start = time.perf_counter()
            flops = count_flops(self.model)    # None where the counter is not supported
            self.size = {"params": int(self.model.count_params()),
                         "flops": None if flops is None else int(flops)}

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 >= config.epochs:
                return  # the final result, with every metric, follows from the trial
            train_seconds = time.perf_counter() - self.start
            sets = proxy.subsets(config)
            scores = proxy.with_size_prior({**proxy.heldout_metrics(self.model, sets),
                                            **self.size}, config.size_prior)
            # the search's metric as the final result will have it (a loss for a loss metric)
            ctx.report({**scores, ctx.metric: scores.get(ctx.metric, scores["val_accuracy"]),
                        "epoch": epoch + 1, "train_seconds": train_seconds,
                        "train_accuracy": float((logs or {}).get("accuracy", math.nan))})

    return EpochReporter()


SCORER = Scorer(
    name="proxy", metric="val_accuracy", score=score, defaults=_defaults,
    options=OPTIONS, reads_data=True,
    seed_fields=("seed", "subset_seed"), per_trial=("cpus", "gpus", "mixed_precision"),
    rungs=_rungs, preflight=_preflight, space_defaults={"nb201": NB201_CPU},
    added_since={"fused_norms": False, "repeats": 1, "size_prior": 0.0})

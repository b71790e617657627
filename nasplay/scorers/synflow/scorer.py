"""The synflow scorer (``--scorer synflow``): the data-free synflow score of the untrained,
linearized candidate (``nasplay.scorers.synflow.measure``), about a CPU second each. It reads no
images, so ``--data`` (like any flag of the training scorers) is refused. Gradients come from
TensorFlow's tape: TensorFlow backend only."""

from __future__ import annotations

from nasplay.scorers.shared_options import CELLS_PER_STAGE, FILTERS
from nasplay.scorers.registry import Scorer


def _defaults(gpu: bool):
    from nasplay.scorers.synflow.measure import SynflowConfig

    return SynflowConfig()


def score(genotype, ctx) -> dict:
    from nasplay.scorers.synflow import measure as synflow

    options = dict(ctx.options)
    options["input_shape"] = tuple(options.get("input_shape", (32, 32, 3)))
    return synflow.evaluate(genotype, synflow.SynflowConfig(**options))


SCORER = Scorer(
    name="synflow", metric="synflow", score=score, defaults=_defaults,
    options=(FILTERS, CELLS_PER_STAGE),
    backends=("tensorflow",))

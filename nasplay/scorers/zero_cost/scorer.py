"""The zero-cost scorer (``--scorer zero-cost``): the NASWOT score of the untrained candidate
(``nasplay.scorers.zero_cost.naswot``), about a CPU second each. On real images when the run names a
data source (``--data``), else on noise; ``--probe noise`` always on noise."""

from __future__ import annotations

from nasplay.scorers.registry import Option, Scorer
from nasplay.scorers.shared_options import CELLS_PER_STAGE, FILTERS

PROBE = Option("probe", "the batch the codes are taken on: data (the run's images) or noise "
               "(standard normal images, whatever --data names)", type=str,
               choices=("data", "noise"), metavar="P")


def _defaults(gpu: bool):
    from nasplay.scorers.zero_cost.naswot import ZeroCostConfig

    return ZeroCostConfig()


def score(genotype, ctx) -> dict:
    from nasplay.scorers.zero_cost import naswot as zero_cost

    options = dict(ctx.options)
    data = options.pop("data", None)
    options["input_shape"] = tuple(options.get("input_shape", (32, 32, 3)))
    config = zero_cost.ZeroCostConfig(**options)
    images = None
    if data is not None and config.probe == "data":   # noise: no images to read
        from nasplay.data.subsets import load_subsets

        images = load_subsets(data, config.batch_size, 1, config.seed).x_train
    return zero_cost.evaluate(genotype, config, images=images)


SCORER = Scorer(
    name="zero-cost", metric="naswot", score=score, defaults=_defaults,
    options=(FILTERS, CELLS_PER_STAGE, PROBE), reads_data=True,
    added_since={"codes": "outputs", "probe": "data"})

"""The NAS-Bench-201 table scorer (``--scorer nb201``): a candidate's score is looked up.

NAS-Bench-201's authors trained all 15,625 cells of the ``nb201`` space; their CIFAR-10 results
ship with nasplay (``nasplay.scorers.nb201.table``). A candidate's ``val_accuracy`` is the
12-epoch validation accuracy (a fraction), which is all a searcher sees. Its 12-epoch test
accuracy, its true rank among the 15,625 (by validation accuracy, 1 = best) and its index in
NAS-Bench-201 are recorded beside it (``report_only``): reports show them, the searcher is never
told them and none of them can be the search metric.

A lookup is a dict access, so Ray's cost of a trial would dominate: the scorer asks for
``BATCH`` candidates per Ray trial. No Keras, no data, no TensorFlow in the worker.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasplay.errors import UserError
from nasplay.scorers.nb201 import table as tables
from nasplay.scorers.registry import Scorer

SPACE = "nb201"
METRIC = "val_accuracy"
REPORT_ONLY = ("test_accuracy", "nb201_rank", "nb201_index")
# candidates per Ray trial: about 0.1 s of Ray's own work per trial is shared by them
BATCH = 25
TRUTH_COLUMNS = ("nb201 val", "nb201 test", "nb201 rank")


@dataclass(frozen=True)
class TableSettings:
    """None: the table is NAS-Bench-201's CIFAR-10 results after 12 epochs, nothing to choose."""


def _defaults(gpu: bool) -> TableSettings:
    return TableSettings()


def _check(options: dict) -> None:
    """The shipped table is there and intact (read and checked once, about 0.1 s)."""
    try:
        tables.table()
    except tables.TableError as e:
        raise UserError(str(e)) from None


def lookup(genotype) -> tables.Entry:
    """The table's row of an ``nb201`` genotype (a ``Genotype`` or its dict); a genotype of
    another space, or one the table lacks, is a one-line ``ValueError``."""
    from search_space import EdgeGenotype, Genotype, get_space

    if isinstance(genotype, dict):
        genotype = Genotype.from_dict(genotype)
    space = getattr(genotype, "space", None)
    if not isinstance(genotype, EdgeGenotype) or space != SPACE:
        kind = "an edge genotype" if isinstance(genotype, EdgeGenotype) else \
            type(genotype).__name__
        raise ValueError(f"the nb201 scorer looks cells of space {SPACE!r} up in "
                         f"NAS-Bench-201's table; got {kind} of space {space!r}")
    arch = get_space(SPACE).to_arch_str(genotype)
    try:
        return tables.table().lookup(arch)
    except KeyError:
        raise ValueError(f"the nb201 scorer: {arch} is not in NAS-Bench-201's table") from None


def score(genotype, ctx) -> dict:
    """The table's results of the candidate; only ``val_accuracy`` is the score."""
    entry = lookup(genotype)
    return {METRIC: entry.val_accuracy, "test_accuracy": entry.test_accuracy,
            "nb201_rank": entry.rank, "nb201_index": entry.index}


def truth(genotype: dict) -> dict | None:
    """The table's columns for a report (``nasplay inspect``), None if the genotype is not an
    ``nb201`` cell of the table."""
    try:
        entry = lookup(genotype)
    except ValueError:
        return None
    values = (entry.val_accuracy, entry.test_accuracy, entry.rank)
    return dict(zip(TRUTH_COLUMNS, values))


SCORER = Scorer(
    name="nb201", metric=METRIC, score=score, defaults=_defaults, seed_fields=(),
    uses_keras=False, spaces=(SPACE,), report_only=REPORT_ONLY, check=_check, batch=BATCH,
    truth=truth, truth_columns=TRUTH_COLUMNS)

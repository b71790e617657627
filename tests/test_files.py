"""search_space.files: the one atomic writer every part of nasplay uses."""

import os

import pytest

from search_space.files import atomic_write, atomic_write_bytes, atomic_write_text


def test_text_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old")
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_bytes_round_trip(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("old")

    def write(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, write)
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_the_writer_sees_the_target_suffix_and_the_file_gets_the_usual_mode(tmp_path):
    seen = []

    def write(tmp):
        seen.append(tmp.suffix)
        tmp.write_text("x")

    atomic_write(tmp_path / "m.keras", write)
    assert seen == [".keras"]
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "m.keras").stat().st_mode & 0o777 == 0o666 & ~mask

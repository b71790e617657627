"""The benchmark scripts (``python -m benchmarks.NAME``): each imports without running anything, and
each runs its ``--smoke`` mode (a few cells, candidates or steps, written under a temporary folder)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.stem for p in (REPO / "benchmarks").glob("*.py") if p.stem != "__init__")


def test_the_scripts_are_found():
    assert "common" in SCRIPTS and "nb201_truth" in SCRIPTS and len(SCRIPTS) > 20


@pytest.mark.parametrize("name", SCRIPTS)
def test_imports_without_running(name, capsys):
    module = importlib.import_module(f"benchmarks.{name}")
    assert capsys.readouterr().out == ""  # importing printed nothing: nothing ran
    if name != "common":
        assert callable(getattr(module, "main", None)), f"benchmarks.{name} has no main()"


def test_no_script_edits_sys_path():
    for name in SCRIPTS:
        text = (REPO / "benchmarks" / f"{name}.py").read_text()
        assert "sys.path.insert" not in text and "sys.path.append" not in text, name

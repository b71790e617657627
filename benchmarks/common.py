"""What the benchmark scripts share: the checkout's paths, the results folder, the shared CIFAR-10
copy, the load average, the writing of results and the ``--smoke`` flag.

Every script runs from the repository root as ``python -m benchmarks.NAME ...``, so ``nasplay``,
``cells``, ``search_space``, ``searchers`` and ``benchmarks.*`` import without path edits.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
# the default --data of the scripts that train: the CIFAR-10 JPEG folder beside the checkout
SHARED_CIFAR = str(REPO.parent / "shared" / "datasets" / "cifar10-jpeg")


def loadavg() -> float | None:
    """The one-minute load average, or None where the platform has none."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def write_json(path: str | Path, record, indent: int | None = 1) -> Path:
    """Write ``record`` as one JSON document (its folder made as needed); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=indent, default=float) + "\n")
    return path


def append_jsonl(path: str | Path, record) -> Path:
    """Append ``record`` as one JSON line (its folder made as needed); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record, default=float) + "\n")
    return path


class _Smoke(argparse.Action):
    """``--smoke``: set the tiny run's values at that point of the command line (flags after it
    still override them)."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.smoke = True
        for key, value in self.const.items():
            setattr(namespace, key, value)


def add_smoke(parser: argparse.ArgumentParser, **tiny) -> None:
    """Give ``parser`` a ``--smoke`` flag: a run of seconds for ``tests/test_benchmarks.py`` with
    these argument values, e.g. ``add_smoke(parser, candidates=2, epochs=1)``."""
    settings = ", ".join(f"--{key.replace('_', '-')} {value}" for key, value in tiny.items())
    parser.add_argument("--smoke", nargs=0, action=_Smoke, const=tiny, default=False,
                        help=f"a tiny run for the tests ({settings or 'as given'}); "
                             f"give --out a temporary path so no result here is touched")

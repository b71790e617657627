"""What the benchmark scripts share: the checkout's paths, the results folder, the shared CIFAR-10
copy, the machine's facts and the writing of results.

Every script runs from the repository root as ``python -m benchmarks.NAME ...``, so ``nasplay``,
``cells``, ``search_space``, ``searchers`` and ``benchmarks.*`` import without path edits.
"""

from __future__ import annotations

import json
import os
import platform
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


def machine() -> dict:
    """The facts a result is read against: CPUs, platform, Python, the load average now."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "loadavg": loadavg()}


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

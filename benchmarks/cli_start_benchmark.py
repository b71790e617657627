"""How long ``nasplay search`` takes from the command to its first progress line.

Runs a 2-trial zero-cost search (no data, no training: what is timed is the start-up) in a
fresh process, several times, and stamps the lines it prints: the plan's announcement
(``nasplay search: starting ...``, after Ray is up) and the first finished trial. With
``--checkout DIR`` the same command runs from another checkout of nasplay (an older commit, for
a before/after comparison)::

    git worktree add /tmp/nasplay-old <commit>
    python -m benchmarks.cli_start_benchmark --checkout /tmp/nasplay-old --label before
    python -m benchmarks.cli_start_benchmark --label after
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, add_smoke


def one_run(checkout: Path, run_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "nasplay.cli", "search", "--searcher", "random", "--space",
               "nasnet", "--trials", "2", "--scorer", "zero-cost", "--run-dir", str(run_dir)]
    start = time.perf_counter()
    marks = {}
    with subprocess.Popen(command, env=env, cwd=checkout, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout:
            now = time.perf_counter() - start
            if "starting" in line and "announced" not in marks:
                marks["announced"] = now
            elif line.startswith("random-00000") and "first_trial" not in marks:
                marks["first_trial"] = now
        marks["exit"] = time.perf_counter() - start
        marks["returncode"] = process.wait()
    return marks


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", default=str(REPO), help="the nasplay checkout to run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--out", help="append the result as a JSON line to this file")
    add_smoke(parser, repeats=1)
    args = parser.parse_args(argv)
    runs = []
    for _ in range(args.repeats):
        folder = Path(tempfile.mkdtemp(prefix="nasplay-start-"))
        try:
            runs.append(one_run(Path(args.checkout), folder / "run"))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"| {args.label} | " + " | ".join(
        f"{statistics.median(r[key] for r in runs):.1f} s"
        for key in ("announced", "first_trial", "exit")) + f" | {args.repeats} |")
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps({"label": args.label, "checkout": args.checkout,
                                "runs": runs}) + "\n")


if __name__ == "__main__":
    main()

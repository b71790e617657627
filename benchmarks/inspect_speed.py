"""How long ``nasplay inspect`` takes on a large nb201 run (a 5,000-candidate search).

Builds a fake run directory of ``--trials`` distinct nb201 cells (``config.json`` +
``trials.jsonl`` as ``nasplay search --space nb201 --scorer nb201`` writes them: the table's
validation accuracy as the score, its test accuracy and true rank beside it, every 20th trial
failed), then times ``nasplay inspect RUN`` in a fresh child process, with and without figures,
``--repeats`` times each::

    python -m benchmarks.inspect_speed                  # 5,000 trials, 3 repeats
    python -m benchmarks.inspect_speed --trials 20000 --keep /tmp/big-run

Prints a table (the median and the slowest of the repeats, with the load average: two other
users share this machine) and appends one JSON line to ``benchmarks/results/inspect_speed.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO

RESULTS = REPO / "benchmarks" / "results" / "inspect_speed.jsonl"


def fake_nb201_run(run_dir: Path, trials: int, seed: int = 0) -> Path:
    """``trials`` distinct nb201 cells with the metrics the table scorer records."""
    import numpy as np

    from nasplay.scorers.nb201.table import table
    from search_space import get_space

    space = get_space("nb201")
    entries = table().entries
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(entries), size=min(trials, len(entries)), replace=False)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"searcher": "evolution", "space": "nb201", "trials": trials, "seed": seed,
              "scorer": "nb201", "metric": "val_accuracy", "scorer_options": {}}
    (run_dir / "config.json").write_text(json.dumps(config, indent=2))
    lines = []
    for step, k in enumerate(chosen):
        entry = entries[int(k)]
        record = {"trial_id": f"evolution-{step:05d}", "status": "completed",
                  "genotype": space.from_arch_str(entry.arch_str).to_dict(),
                  "metrics": {"val_accuracy": entry.val_accuracy,
                              "test_accuracy": entry.test_accuracy, "nb201_rank": entry.rank,
                              "nb201_index": entry.index, "trial_seconds": 1e-4},
                  "step": step, "started_at": 1.7e9 + step, "finished_at": 1.7e9 + step}
        if step % 20 == 19:
            record.update(status="failed", metrics={}, error="ValueError: a fake failure")
        lines.append(json.dumps(record) + "\n")
    (run_dir / "trials.jsonl").write_text("".join(lines))
    return run_dir


def time_inspect(run_dir: Path, figures: bool, out: Path) -> tuple[float, int, str]:
    command = [sys.executable, "-m", "nasplay.cli", "inspect", str(run_dir), "--out", str(out)]
    if not figures:
        command.append("--no-figures")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode, (done.stdout + done.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", help="build the run here and keep it (default: a temp dir)")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="nasplay-inspect-"))
    rows, output = [], ""
    try:
        run_dir = fake_nb201_run(folder / "run" if not args.keep else folder, args.trials)
        for figures in (False, True):
            times, codes = [], []
            for _ in range(args.repeats):
                load = os.getloadavg()[0]
                seconds, code, output = time_inspect(run_dir, figures, folder / "report")
                times.append(seconds)
                codes.append(code)
            rows.append({"figures": figures, "median_s": round(statistics.median(times), 2),
                         "max_s": round(max(times), 2), "returncodes": codes,
                         "load_1m": round(load, 2)})
            if any(codes):
                print(f"inspect {'with' if figures else 'without'} figures failed:\n"
                      f"{output[-2000:]}")
        print(f"nasplay inspect of a {args.trials:,}-trial nb201 run ({args.repeats} runs each):")
        print(f"{'figures':>8}  {'median s':>8}  {'max s':>6}  {'load 1m':>7}  exit")
        for row in rows:
            print(f"{'yes' if row['figures'] else 'no':>8}  {row['median_s']:>8.2f}  "
                  f"{row['max_s']:>6.2f}  {row['load_1m']:>7.2f}  {row['returncodes']}")
        print("\nlast output:\n" + "\n".join(output.splitlines()[:16]))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    if not args.no_record:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                                capture_output=True, text=True).stdout.strip()
        record = {"benchmark": "inspect_speed", "label": args.label, "commit": commit,
                  "date": time.strftime("%Y-%m-%d %H:%M"), "trials": args.trials,
                  "cpus": os.cpu_count(), "python": platform.python_version(), "rows": rows}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        with open(RESULTS, "a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"recorded in {RESULTS}")


if __name__ == "__main__":
    main()

"""How fast ``nasplay search --space nb201 --scorer nb201`` runs end to end, per searcher.

The nb201 scorer looks candidates up in NAS-Bench-201's table (no training), so what is timed
is nasplay and Ray Tune themselves: the command in a fresh child process, from its start to its
exit (Python and Ray start-up included), for each searcher::

    python -m benchmarks.nb201_search_speed                      # 500 trials, every searcher
    python -m benchmarks.nb201_search_speed --trials 200 --searchers random evolution
    python -m benchmarks.nb201_search_speed --checkout /tmp/nasplay-old --label before

``--quality`` instead checks what batching costs the search (no Ray): evolution told its results
in batches (as the driver's batch trials tell them) against told one at a time, on the table,
by the true rank of the best cell found over many seeds (``nasplay.engine.driver.BATCH_ROUNDS``).

Prints a table (trials, wall seconds, candidates a second end to end, and within the search:
from the announcement line, once Ray is up, to the last trial line) with the load average
before each run (two other users share this machine), and appends one JSON line per searcher to
``benchmarks/results/nb201_search_speed.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO

RESULTS = REPO / "benchmarks" / "results" / "nb201_search_speed.jsonl"
SEARCHERS = ("random", "evolution", "controller")


def one_run(checkout: Path, searcher: str, trials: int, run_dir: Path) -> dict:
    """The command in a child process; when its lines came, and what it recorded."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "PYTHONUNBUFFERED": "1",
           "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE", "disabled")}
    command = [sys.executable, "-m", "nasplay.cli", "search", "--space", "nb201", "--scorer",
               "nb201", "--searcher", searcher, "--trials", str(trials), "--run-dir",
               str(run_dir)]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    marks, tail = {}, []
    with subprocess.Popen(command, env=env, cwd=checkout, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout:
            now = time.perf_counter() - start
            tail = (tail + [line.rstrip()])[-5:]
            if "starting" in line and "announced" not in marks:
                marks["announced"] = now
            elif line.startswith(f"{searcher}-"):
                marks.setdefault("first_trial", now)
                marks["last_trial"] = now
        wall = time.perf_counter() - start
        returncode = process.wait()
    trials_file = run_dir / "trials.jsonl"
    recorded = trials_file.read_text().count("\n") if trials_file.exists() else 0
    searching = marks.get("last_trial", wall) - marks.get("announced", 0.0)
    return {"searcher": searcher, "trials": trials, "recorded": recorded,
            "returncode": returncode, "wall_s": round(wall, 2),
            "candidates_per_s": round(recorded / wall, 1),
            "search_s": round(searching, 2),
            "search_candidates_per_s": round(recorded / searching, 1) if searching > 0 else None,
            "ray_up_s": round(marks.get("announced", float("nan")), 2),
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
            "tail": tail if returncode else []}


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def table(rows: list[dict]) -> str:
    header = ["searcher", "trials", "recorded", "wall s", "cand/s", "Ray up s", "search s",
              "search cand/s", "load 1m"]
    lines = [header] + [[r["searcher"], str(r["trials"]), str(r["recorded"]), f"{r['wall_s']:.1f}",
                         f"{r['candidates_per_s']:.1f}", f"{r['ray_up_s']:.1f}",
                         f"{r['search_s']:.1f}", str(r["search_candidates_per_s"]),
                         f"{r['load_before']:.2f}"] for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines)


def batch_quality(seeds: int = 60) -> None:
    """Evolution told in batches vs one at a time: the true rank of the best cell found."""
    import statistics

    from nasplay.scorers.nb201 import lookup
    from search_space import get_space
    from searchers import RegularizedEvolution

    space = get_space("nb201")

    def best_found(seed: int, batch: int, trials: int):
        searcher, best = RegularizedEvolution.for_budget(space, trials, seed=seed), None
        while not searcher.finished:
            asked = [p for p in (searcher.ask() for _ in range(batch)) if p is not None]
            for proposal in asked:
                entry = lookup(proposal.genotype)
                searcher.tell(proposal.trial_id, entry.val_accuracy)
                best = entry if best is None or entry.val_accuracy > best.val_accuracy else best
        return best

    print(f"evolution on the nb201 table, {seeds} seeds: the best cell's true rank")
    print(f"{'trials':>6}  {'batch':>5}  {'median':>6}  {'mean':>6}  {'mean test':>9}")
    for trials, batches in ((50, (1, 3)), (100, (1, 5, 25)), (200, (1, 10)), (500, (1, 25))):
        for batch in batches:
            found = [best_found(seed, batch, trials) for seed in range(seeds)]
            ranks = [e.rank for e in found]
            print(f"{trials:>6}  {batch:>5}  {statistics.median(ranks):>6.1f}  "
                  f"{statistics.mean(ranks):>6.1f}  "
                  f"{statistics.mean(e.test_accuracy for e in found):>9.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--searchers", nargs="+", default=list(SEARCHERS), choices=SEARCHERS)
    parser.add_argument("--checkout", default=str(REPO), help="the nasplay checkout to run")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--out", default=str(RESULTS), help="results file (JSON lines)")
    parser.add_argument("--no-record", action="store_true", help="print only")
    parser.add_argument("--quality", action="store_true",
                        help="what batching costs evolution's results (no Ray, no timing)")
    args = parser.parse_args()
    if args.quality:
        batch_quality()
        return
    rows = []
    for searcher in args.searchers:
        folder = Path(tempfile.mkdtemp(prefix="nasplay-nb201-speed-"))
        try:
            rows.append(one_run(Path(args.checkout), searcher, args.trials, folder / "run"))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=args.checkout,
                            capture_output=True, text=True).stdout.strip()
    for row in rows:
        if row["tail"]:
            print(f"{row['searcher']} failed (exit {row['returncode']}):", *row["tail"],
                  sep="\n  ")
        record = {"benchmark": "nb201_search_speed", "label": args.label, "commit": commit,
                  "date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(),
                  "python": platform.python_version(), "ray": _version("ray"), **row}
        if not args.no_record:
            out = Path(args.out)
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "a") as f:
                f.write(json.dumps(record) + "\n")
    if not args.no_record:
        print(f"\nrecorded in {args.out}")


if __name__ == "__main__":
    main()

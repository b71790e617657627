"""A one-shot search as a user runs it: ``nasplay search --scorer oneshot`` with N candidates.

Times the whole command (supernet training included) in a child process, then reads the run
directory for what the command's wall time does not show:

- candidates per hour, supernet training included, and against the standalone proxy's ~60;
- Ray's overhead per candidate: the gap between two consecutive trials' ends minus the second
  trial's own time inside its worker (one worker, so the gaps are sequential), against the
  median one-shot score;
- the worker's resident memory over the candidates (``rss_mb`` of every score).

    python -m benchmarks.oneshot_search_benchmark --trials 1000 --run-dir runs/oneshot-1000
    python -m benchmarks.oneshot_search_benchmark --report runs/oneshot-1000   # tables only
    python -m benchmarks.oneshot_search_benchmark --report RUN_DIR --wall SECONDS --out FILE
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import REPO, SHARED_CIFAR, add_smoke

PROXY_PER_HOUR = 60          # the standalone proxy on the 2-core machine (BENCHMARKS.md)
# the smoke run: nb201's supernet (5 ops on 6 edges: a trace of seconds), tiny
SMOKE_FLAGS = ["--subset", "128", "--supernet-epochs", "1", "--filters", "4",
               "--cells-per-stage", "1"]


def run_search(args) -> float:
    command = [sys.executable, "-m", "nasplay.cli", "search", "--searcher", args.searcher,
               "--space", args.space, "--trials", str(args.trials), "--scorer", "oneshot",
               "--data", args.data, "--run-dir", args.run_dir, *args.extra]
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True)
    return time.perf_counter() - start


def report(run_dir: Path, wall: float | None) -> dict:
    from nasplay.runs.rundir import read_trials

    records = sorted(read_trials(run_dir), key=lambda r: r["finished_at"])
    done = [r for r in records if r["status"] == "completed"]
    meta = json.loads((run_dir / "supernet" / "supernet.json").read_text())
    gaps = [b["finished_at"] - a["finished_at"] - b["metrics"]["trial_seconds"]
            for a, b in zip(done, done[1:])]
    scores = [r["metrics"]["score_seconds"] for r in done[1:]]    # the first one traces
    rss = [r["metrics"].get("rss_mb") for r in done if r["metrics"].get("rss_mb")]
    search_wall = done[-1]["finished_at"] - done[0]["started_at"]
    summary = {
        "candidates": len(records), "completed": len(done),
        "supernet_train_seconds": meta.get("train_seconds"),
        "supernet_epochs": meta.get("epochs_done"), "command_wall_seconds": wall,
        "search_wall_seconds": search_wall, "first_trial_seconds": done[0]["metrics"][
            "trial_seconds"], "median_score_seconds": statistics.median(scores),
        "median_ray_overhead_seconds": statistics.median(gaps),
        "ray_overhead_share": statistics.median(gaps) / statistics.median(scores),
        "rss_first_mb": rss[0] if rss else None, "rss_last_mb": rss[-1] if rss else None,
        "rss_max_mb": max(rss) if rss else None}
    total = wall if wall is not None else search_wall + (meta.get("train_seconds") or 0.0)
    summary["per_hour"] = len(records) / total * 3600
    summary["vs_proxy"] = summary["per_hour"] / PROXY_PER_HOUR
    return summary


def print_tables(summary: dict) -> None:
    print("| candidates | supernet training | search (Ray) | whole command | per hour | x proxy |")
    print("| --- | --- | --- | --- | --- | --- |")
    wall = summary["command_wall_seconds"]
    print(f"| {summary['candidates']} | {summary['supernet_train_seconds'] / 60:.1f} min "
          f"({summary['supernet_epochs']} epochs) | {summary['search_wall_seconds'] / 60:.1f} min "
          f"| {'-' if wall is None else f'{wall / 60:.1f} min'} | {summary['per_hour']:,.0f} "
          f"| {summary['vs_proxy']:.0f}x |")
    print()
    print("| first trial (loads, traces) | median score | median Ray overhead | overhead / score "
          "| worker RSS first -> last (max) |")
    print("| --- | --- | --- | --- | --- |")
    print(f"| {summary['first_trial_seconds']:.1f} s | {summary['median_score_seconds']:.3f} s "
          f"| {summary['median_ray_overhead_seconds']:.3f} s "
          f"| {100 * summary['ray_overhead_share']:.1f}% | {_mb(summary['rss_first_mb'])} -> "
          f"{_mb(summary['rss_last_mb'])} ({_mb(summary['rss_max_mb'])}) |")


def _mb(value) -> str:
    return "-" if value is None else f"{value:,.0f} MB"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--space", default="amoebanet")
    parser.add_argument("--searcher", default="random")
    parser.add_argument("--data", default=str(SHARED_CIFAR))
    parser.add_argument("--run-dir", default="runs/oneshot-1000")
    parser.add_argument("--report", metavar="RUN_DIR", help="only read a finished run")
    parser.add_argument("--wall", type=float, metavar="SECONDS",
                        help="with --report: the command's wall time, timed elsewhere")
    parser.add_argument("--out", help="where the summary goes (default: "
                        "benchmarks/results/oneshot_search.json; with --report: not written)")
    parser.add_argument("extra", nargs="*", help="more nasplay search flags (after --)")
    add_smoke(parser, trials=3, space="nb201")  # and a tiny supernet, unless flags follow --
    args = parser.parse_args(argv)
    if args.smoke and not args.extra:
        args.extra = SMOKE_FLAGS
    if args.report:
        summary = report(Path(args.report), args.wall)
    else:
        wall = run_search(args)
        summary = report(Path(args.run_dir), wall)
        args.out = args.out or str(REPO / "benchmarks" / "results" / "oneshot_search.json")
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print_tables(summary)


if __name__ == "__main__":
    main()

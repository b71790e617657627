"""``nasplay inspect``: the flags, then ``nasplay.report.inspect``'s tables and figures for each
run, and an overlay of their progress when there are several."""

from __future__ import annotations

import sys
from pathlib import Path

from nasplay.errors import UserError
from nasplay.report.inspect import (COMPARE_FIGURE, REPORT_DIR, Run, comparison_table, leaderboard,
                                    load_runs, summary_line, truth_line, write_figures)
from nasplay.report.plots import plot_overlay
from nasplay.runs import rundir


def add_arguments(parser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="DIR", help="run directories (several: "
                        "their progress is overlaid in one figure)")
    parser.add_argument("--top", type=int, default=10, metavar="K",
                        help="leaderboard length per run (default 10)")
    parser.add_argument("--out", metavar="REPORT_DIR",
                        help="where figures go (default DIR/report/; with several runs, the "
                             f"overlay goes to DIR1/report/{COMPARE_FIGURE})")
    parser.add_argument("--metric", help="the metric that ranks trials (default: the run's "
                        "config.json 'metric', else its scorer's: val_accuracy, or naswot "
                        "for zero-cost)")
    parser.add_argument("--aggregate", action="store_true", help="in the overlay, draw the mean "
                        "and std of the runs of each searcher instead of one line per run")
    parser.add_argument("--no-figures", action="store_true", help="print the tables only")


def _writable_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".nasplay-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"cannot write figures to {path}: {e.strerror or e}; "
                        f"choose another folder with --out") from None
    return path


def _report_dirs(runs: list[Run], out: str | None) -> tuple[list[Path], Path]:
    """Where each run's figures go, and where the overlay goes."""
    if out is None:
        dirs = [run.path / REPORT_DIR for run in runs]
        return dirs, dirs[0]
    out_dir = Path(out)
    if len(runs) == 1:
        return [out_dir], out_dir
    names, dirs = set(), []
    for run in runs:
        name, k = run.path.resolve().name, 2
        while name in names:                       # two runs named alike in different parents
            name, k = f"{run.path.resolve().name}-{k}", k + 1
        names.add(name)
        dirs.append(out_dir / name)
    return dirs, out_dir


def run(args) -> int:
    if args.top < 1:
        raise UserError(f"--top must be a positive integer, got {args.top}")
    runs = load_runs(args.run_dirs, args.metric)
    run_dirs, overlay_dir = _report_dirs(runs, args.out)
    for run_, out_dir in zip(runs, run_dirs):
        print(summary_line(run_))
        if run_.log.bad_lines:
            print(f"warning: {run_.path / rundir.TRIALS_FILE}: skipped unreadable line(s) "
                  f"{', '.join(map(str, run_.log.bad_lines[:5]))}", file=sys.stderr)
        print(leaderboard(run_, args.top))
        truth = truth_line(run_)
        if truth:
            print(truth)
        if not args.no_figures:
            written = write_figures(run_, _writable_dir(out_dir))
            print(f"figures: {', '.join(str(p) for p in written if p.suffix == '.png')}")
            print(f"graphviz: {', '.join(str(p) for p in written if p.suffix == '.dot')}")
        print()
    if len(runs) > 1:
        print(comparison_table(runs))
        if not args.no_figures:
            path = _writable_dir(overlay_dir) / COMPARE_FIGURE
            plot_overlay(runs, path, aggregate=args.aggregate)
            print(f"overlay: {path}")
    return 0

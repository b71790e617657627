"""``nasplay inspect``: leaderboards, best-cell diagrams and progress plots of one or more runs.

Read-only on the run: ``trials.jsonl`` is only read (a run that is still writing is fine, see
``nasplay.rundir``); figures go to ``DIR/report/`` or ``--out``. Figures are drawn with
matplotlib's object API on the Agg canvas (no pyplot, so no global backend is switched and
nothing is left open), and cell diagrams need no graphviz (``nasplay.diagrams``).

Per run: ``best_normal.png`` / ``best_reduction.png`` (+ ``.dot``), ``progress.png`` (best-so-far
score against trials) and ``accuracy_vs_params.png``. With several runs, ``compare.png`` overlays
their best-so-far curves (one line per run, or mean and std band per searcher with
``--aggregate``) and a summary table follows the per-run leaderboards.
"""

from __future__ import annotations

import math
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from nasplay import rundir
from nasplay.errors import UserError
from nasplay.records import score_of

REPORT_DIR = "report"
COMPARE_FIGURE = "compare.png"


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


@dataclass
class Run:
    """One run directory as read now."""

    path: Path
    config: dict
    log: rundir.TrialLog
    metric: str
    label: str
    best_first: list[dict] = field(default_factory=list)   # completed and scored, best first

    @property
    def trials(self) -> list[dict]:
        return self.log.trials

    @property
    def searcher(self) -> str | None:
        return rundir.searcher_name(self.config)

    @property
    def counts(self) -> dict[str, int]:
        statuses = [t.get("status") for t in self.trials]
        return {"finished": len(statuses), "completed": statuses.count("completed"),
                "failed": statuses.count("failed")}


def load_run(path, metric: str | None = None) -> Run:
    """Read a run; UserError if it is not a run, has no trials, or has no scored trial."""
    path = rundir.check_run_dir(path)
    config = rundir.read_config(path)
    log = rundir.load_trials(path)
    chosen = rundir.run_metric(config, metric)
    best_first = rundir.require_scored(path, log.trials, chosen)
    return Run(path, config, log, chosen, rundir.run_label(path, config), best_first)


def load_runs(paths, metric: str | None = None) -> list[Run]:
    """Several runs for one report. A path that is not a run is an error; a run with nothing to
    show yet (no trials, or none scored) is skipped with a warning while others remain, so one
    study can be inspected while its later runs have not started."""
    for path in paths:
        rundir.check_run_dir(path)
    if len(paths) == 1:
        return [load_run(paths[0], metric)]
    runs, skipped = [], []
    for path in paths:
        try:
            runs.append(load_run(path, metric))
        except UserError as e:
            skipped.append(str(e))
    if not runs:
        raise UserError(f"none of the {len(paths)} runs has a scored trial yet; first: "
                        f"{skipped[0]}")
    for message in skipped:
        print(f"warning: skipped: {message}", file=sys.stderr)
    return runs


# --- tables -------------------------------------------------------------------------------------

def _human(n: float) -> str:
    """12345678 -> '12.3M' (params and FLOPs)."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return f"{n:.0f}"


def _score(value: float) -> str:
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"


def _seconds(value: float) -> str:
    return f"{value:.1f}"


def _generation(record: dict):
    """Evolution's generation, where a searcher records one (in the record or its metrics)."""
    return record.get("generation", (record.get("metrics") or {}).get("generation"))


# Optional leaderboard columns: (header, how to read it from a record, how to format it).
# A column is shown when at least one listed trial has it.
_COLUMNS = (
    ("params", lambda t: (t.get("metrics") or {}).get("params"), _human),
    ("FLOPs", lambda t: (t.get("metrics") or {}).get("flops"), _human),
    ("train s", lambda t: (t.get("metrics") or {}).get("train_seconds"), _seconds),
    ("score s", lambda t: (t.get("metrics") or {}).get("score_seconds"), _seconds),
    ("step", lambda t: t.get("step"), str),
    ("gen", _generation, str),
)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _numeric(cell: str) -> bool:
    """'0.5123', '175.2k', '12', '-' (a missing number) read as numbers; names do not."""
    try:
        float(cell.rstrip("kMG")) if cell != "-" else None
    except ValueError:
        return False
    return True


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table: numeric columns right-aligned, the others left-aligned."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    right = [bool(rows) and all(_numeric(str(r[i])) for r in rows) for i in range(len(header))]

    def line(cells):
        return "  ".join(str(c).rjust(w) if r else str(c).ljust(w)
                         for c, w, r in zip(cells, widths, right)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule] + [line(r) for r in rows])


def leaderboard(run: Run, top: int = 10) -> str:
    """The ``top`` best trials of a run as a table, best first."""
    shown = run.best_first[:top]
    columns = [c for c in _COLUMNS if any(_is_number(c[1](t)) for t in shown)]
    header = ["rank", "trial", run.metric] + [c[0] for c in columns]
    rows = []
    for rank, trial in enumerate(shown, start=1):
        row = [str(rank), str(trial.get("trial_id", "?")), _score(score_of(trial, run.metric))]
        for _, read, fmt in columns:
            value = read(trial)
            row.append(fmt(value) if _is_number(value) else "-")
        rows.append(row)
    return format_table(header, rows)


def summary_line(run: Run) -> str:
    """``"runs/evo (evolution, space nasnet): 20 trials finished: 18 completed, 2 failed"``."""
    counts = run.counts
    about = ", ".join(x for x in (run.searcher, _space(run.config)) if x)
    notes = []
    if run.log.partial_tail:
        notes.append("the last line is still being written (run in progress?)")
    if run.log.bad_lines:
        notes.append(f"{len(run.log.bad_lines)} unreadable line(s) skipped: "
                     f"{', '.join(map(str, run.log.bad_lines[:5]))}")
    trials = "1 trial" if counts["finished"] == 1 else f"{counts['finished']} trials"
    budget = run.config.get("trials")
    if _is_number(budget) and budget != counts["finished"]:
        trials = f"{counts['finished']} of {budget} trials"
    return (f"{run.path}{f' ({about})' if about else ''}: {trials} finished: "
            f"{counts['completed']} completed, {counts['failed']} failed"
            + "".join(f"; {n}" for n in notes))


def _space(config: dict) -> str | None:
    space = config.get("space")
    return f"space {space}" if isinstance(space, str) else None


def comparison_table(runs: list[Run]) -> str:
    """One row per run: searcher, counts, best score and the trial that reached it."""
    header = ["run", "searcher", "finished", "failed", "best", "trial", "reached at"]
    rows = []
    for run in runs:
        best = run.best_first[0]
        reached = 1 + next(i for i, t in enumerate(run.trials) if t is best)
        rows.append([run.label, run.searcher or "-", str(run.counts["finished"]),
                     str(run.counts["failed"]), _score(score_of(best, run.metric)),
                     str(best.get("trial_id", "?")), f"trial {reached}"])
    return format_table(header, rows)


# --- curves -------------------------------------------------------------------------------------

def best_so_far(trials: list[dict], metric: str) -> list[float]:
    """After each finished trial (in finishing order, failed ones included: they spent budget),
    the best score so far; NaN until the first scored trial."""
    best, curve = -math.inf, []
    for trial in trials:
        value = score_of(trial, metric)
        if value is not None:
            best = max(best, value)
        curve.append(best if best > -math.inf else math.nan)
    return curve


def _new_figure(width: float = 6.4, height: float = 4.2):
    from matplotlib.figure import Figure  # no pyplot: no global backend, nothing to close

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _integer_ticks(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def plot_progress(run: Run, path) -> None:
    """Every completed trial's score (dots) and the best-so-far line, against trials."""
    fig, ax = _new_figure()
    xs = [i + 1 for i, t in enumerate(run.trials) if score_of(t, run.metric) is not None]
    ys = [score_of(t, run.metric) for t in run.trials
          if score_of(t, run.metric) is not None]
    ax.scatter(xs, ys, s=14, color="#9e9e9e", alpha=0.7, label="trial", zorder=2)
    curve = best_so_far(run.trials, run.metric)
    ax.step(range(1, len(curve) + 1), curve, where="post", color="#d62728", linewidth=2,
            label="best so far", zorder=3)
    failed = [i + 1 for i, t in enumerate(run.trials) if t.get("status") == "failed"]
    if failed:
        ax.plot(failed, [min(ys)] * len(failed), "x", color="#555555", label="failed", zorder=2)
    _integer_ticks(ax)
    ax.set_xlabel("trials finished")
    ax.set_ylabel(run.metric)
    ax.set_title(f"{run.label}: best-so-far {run.metric}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.savefig(path, dpi=100, bbox_inches="tight")


def plot_score_vs_params(run: Run, path) -> None:
    """Score against parameter count, coloured by finishing order, the best trial starred."""
    fig, ax = _new_figure()
    points = [(i + 1, t["metrics"]["params"], score_of(t, run.metric))
              for i, t in enumerate(run.trials)
              if score_of(t, run.metric) is not None
              and _is_number((t.get("metrics") or {}).get("params"))]
    if points:
        order, params, scores = zip(*points)
        dots = ax.scatter(params, scores, c=order, cmap="viridis", s=22, edgecolors="none")
        fig.colorbar(dots, ax=ax, label="trial (finishing order)")
        if max(params) > 10 * min(params):
            ax.set_xscale("log")
        best = run.best_first[0]
        if _is_number(best["metrics"].get("params")):
            ax.scatter([best["metrics"]["params"]], [score_of(best, run.metric)],
                       marker="*", s=220, color="#d62728", edgecolors="black", zorder=3,
                       label=f"best: {best.get('trial_id')}")
            ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, "no trial recorded a parameter count", ha="center",
                transform=ax.transAxes)
    ax.set_xlabel("parameters")
    ax.set_ylabel(run.metric)
    ax.set_title(f"{run.label}: {run.metric} against parameters")
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=100, bbox_inches="tight")


_LINESTYLES = ("-", "--", ":", "-.")


def plot_overlay(runs: list[Run], path, aggregate: bool = False, title: str | None = None) -> None:
    """Best-so-far curves of several runs in one figure. Runs of one searcher share a colour;
    with ``aggregate`` each searcher is drawn as the mean over its runs with a +-1 std band."""
    import numpy as np

    fig, ax = _new_figure(7.0, 4.4)
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.searcher or run.label, []).append(run)
    colours = [f"C{i % 10}" for i in range(len(groups))]
    for colour, (name, members) in zip(colours, groups.items()):
        curves = [best_so_far(r.trials, r.metric) for r in members]
        if aggregate:
            length = max(map(len, curves))
            padded = np.full((len(curves), length), np.nan)
            for row, curve in zip(padded, curves):
                row[:len(curve)] = curve
            with warnings.catch_warnings():   # all-NaN columns before any run scored
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, std = np.nanmean(padded, axis=0), np.nanstd(padded, axis=0)
            xs = np.arange(1, length + 1)
            ax.step(xs, mean, where="post", color=colour, linewidth=2,
                    label=f"{name} (mean of {len(curves)})")
            ax.fill_between(xs, mean - std, mean + std, step="post", color=colour, alpha=0.2,
                            linewidth=0)
        else:
            for k, (run, curve) in enumerate(zip(members, curves)):
                ax.step(range(1, len(curve) + 1), curve, where="post", color=colour,
                        linestyle=_LINESTYLES[k % len(_LINESTYLES)], linewidth=1.6,
                        label=run.label)
    metrics = sorted({r.metric for r in runs})
    _integer_ticks(ax)
    ax.set_xlabel("trials finished")
    ax.set_ylabel(" / ".join(metrics))
    ax.set_title(title or f"best-so-far {' / '.join(metrics)}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.savefig(path, dpi=100, bbox_inches="tight")


# --- figures of one run -------------------------------------------------------------------------

def best_genotype(run: Run, trial: dict | None = None):
    """The Genotype of ``trial`` (default: the run's best); UserError if it does not parse."""
    from search_space import Genotype

    trial = trial or run.best_first[0]
    try:
        return Genotype.from_dict(trial.get("genotype"))
    except ValueError as e:
        raise UserError(f"trial {trial.get('trial_id')!r} of run {run.path} has an invalid "
                        f"genotype: {e}") from None


def write_figures(run: Run, out_dir: Path) -> list[Path]:
    """The per-run figures and DOT files in ``out_dir``; returns the paths written."""
    from nasplay import diagrams

    genotype = best_genotype(run)
    best = run.best_first[0]
    about = f"trial {best.get('trial_id')}, {run.metric} {_score(score_of(best, run.metric))}"
    written = []
    for kind, cell in (("normal", genotype.normal), ("reduction", genotype.reduction)):
        png = out_dir / f"best_{kind}.png"
        diagrams.cell_figure(cell, png, title=f"best {kind} cell ({about})",
                             reduction=kind == "reduction")
        dot = out_dir / f"best_{kind}.dot"
        dot.write_text(diagrams.cell_dot(cell, name=f"{kind}", reduction=kind == "reduction"),
                       encoding="utf-8")
        written += [png, dot]
    plot_progress(run, out_dir / "progress.png")
    plot_score_vs_params(run, out_dir / "accuracy_vs_params.png")
    written += [out_dir / "progress.png", out_dir / "accuracy_vs_params.png"]
    return written


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

"""Leaderboards, best-cell diagrams and progress plots of one or more runs (``nasplay inspect``).

Read-only on the run: ``trials.jsonl`` is only read (a run that is still writing is fine, see
``nasplay.runs.rundir``); figures go to ``DIR/report/`` or ``--out``. Plots are
``nasplay.report.plots``', cell diagrams ``nasplay.report.diagrams``' (no graphviz needed).

Per run: ``best_normal.png`` / ``best_reduction.png`` (+ ``.dot``), ``progress.png`` (best-so-far
score against trials) and ``<score>_vs_params.png`` (``val_accuracy_vs_params.png``,
``naswot_vs_params.png``, ...). Trials scored twice (a one-shot run re-ranks its best with the
standalone proxy) add a leaderboard column per score and ``<score>_vs_<other>.png``; the ranking
stays by the run's metric. With several runs, ``compare.png`` overlays their best-so-far curves
(one line per run, or mean and std band per searcher with ``--aggregate``) and a summary table
follows the per-run leaderboards.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

from nasplay.errors import UserError, plural
from nasplay.report.plots import (best_so_far, human_count, pair_figure_name, paired_scores,
                                  params_figure_name, plot_overlay, plot_progress,
                                  plot_score_pair, plot_score_vs_params)
from nasplay.runs import rundir
from nasplay.runs.records import rank_average_label, run_best, score_of

REPORT_DIR = "report"
COMPARE_FIGURE = "compare.png"
PROGRESS_FIGURE = "progress.png"
# best_so_far and plot_overlay stay importable from here (experiments/compare_searchers.py).
__all__ = ["best_so_far", "plot_overlay", "load_run", "load_runs", "leaderboard"]


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
    ("params", lambda t: (t.get("metrics") or {}).get("params"), human_count),
    ("FLOPs", lambda t: (t.get("metrics") or {}).get("flops"), human_count),
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


def other_scores(run: Run, trials: list[dict] | None = None) -> list[str]:
    """The scores besides the run's metric that any of ``trials`` (default: all) has."""
    from nasplay.scorers import score_metrics

    trials = run.trials if trials is None else trials
    return [m for m in score_metrics()
            if m != run.metric and any(score_of(t, m) is not None for t in trials)]


def _truth_value(value) -> str:
    return str(value) if isinstance(value, int) else _score(value)


def truth_of(run: Run):
    """The ``Truth`` of the run's space (a tabular benchmark's: NAS-Bench-201's table for an
    ``nb201`` run, whatever scored it), or None."""
    from nasplay.scorers import truth_for

    space = run.config.get("space")
    if not isinstance(space, str) and run.best_first:
        space = (run.best_first[0].get("genotype") or {}).get("space")
    scorer = truth_for(space if isinstance(space, str) else None)
    return None if scorer is None else scorer.truth


def truth_columns(run: Run) -> list:
    """Leaderboard columns of the ground truth (``truth_of``), each genotype looked up once."""
    truth = truth_of(run)
    if truth is None:
        return []
    rows: dict[int, dict] = {}

    def read(trial: dict, column: str):
        if id(trial) not in rows:
            rows[id(trial)] = truth.row(trial.get("genotype")) or {}
        return rows[id(trial)].get(column)

    return [(c, lambda t, c=c: read(t, c), _truth_value) for c in truth.columns]


def truth_line(run: Run) -> str | None:
    """The ground truth's one line on the run (where its best ranks in the table), or None."""
    truth = truth_of(run)
    if truth is None or truth.summary is None:
        return None
    # the run's best as best_genotype.json names it: the best re-scored one where it re-scored
    best, by = run_best(run.trials, run.metric, rundir.best_by(run.config))
    first = [] if best is None else [best]
    return truth.summary(first + [r for r in run.best_first if r is not best], by)


def leaderboard(run: Run, top: int = 10) -> str:
    """The ``top`` best trials of a run as a table, best first by the run's metric, with a
    column for each other score a listed trial has ("-" where a trial has not got it), and for
    a space with a known ground truth (``nb201``) the truth's columns."""
    shown = run.best_first[:top]
    scores = [(m, lambda t, m=m: score_of(t, m), _score) for m in other_scores(run, shown)]
    columns = scores + truth_columns(run)
    columns += [c for c in _COLUMNS if any(_is_number(c[1](t)) for t in shown)]
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
    # the run's best as best_genotype.json names it, where a re-scoring or --best-by chose it
    # (export and train take it too); the leaderboard's ranks stay the run's metric's
    best_by = rundir.best_by(run.config)
    best, by = run_best(run.trials, run.metric, best_by)
    if best is not None and by != run.metric:
        among = "" if by == rank_average_label(best_by) else " of those re-scored"
        notes.append(f"its best is {best.get('trial_id')}, the best by {by}{among} "
                     f"(best_genotype.json; export and train take it)")
    trials = plural(counts["finished"], "trial")
    budget = run.config.get("trials")
    if _is_number(budget) and budget != counts["finished"]:
        trials = f"{counts['finished']} of {plural(budget, 'trial')}"
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
    """The per-run figures and DOT files in ``out_dir``; returns the paths written: the best
    genotype's ``best_normal``/``best_reduction`` cells, or for an edge genotype (``nb201``) its
    one ``best_cell`` (titled with NAS-Bench-201's cell string too), then the plots."""
    from nasplay.report import diagrams
    from search_space import EdgeGenotype
    from search_space.files import atomic_write_text

    genotype = best_genotype(run)
    best = run.best_first[0]
    about = f"trial {best.get('trial_id')}, {run.metric} {_score(score_of(best, run.metric))}"
    written = []
    if isinstance(genotype, EdgeGenotype):
        title, arch = f"best cell ({about})", diagrams.arch_string(genotype)
        png, dot = out_dir / "best_cell.png", out_dir / "best_cell.dot"
        diagrams.edge_cell_figure(genotype, png, title=f"{title}\n{arch}".strip())
        atomic_write_text(dot, diagrams.edge_cell_dot(genotype, title=f"{title} {arch}".strip()))
        written += [png, dot]
    else:
        for kind, cell in (("normal", genotype.normal), ("reduction", genotype.reduction)):
            title, reduction = f"best {kind} cell ({about})", kind == "reduction"
            png, dot = out_dir / f"best_{kind}.png", out_dir / f"best_{kind}.dot"
            diagrams.cell_figure(cell, png, title=title, reduction=reduction)
            atomic_write_text(dot, diagrams.cell_dot(cell, name=kind, reduction=reduction,
                                                     title=title))
            written += [png, dot]
    plots = [(out_dir / PROGRESS_FIGURE, plot_progress),
             (out_dir / params_figure_name(run.metric), plot_score_vs_params)]
    for other in other_scores(run):
        if len(paired_scores(run.trials, run.metric, other)) >= 2:
            plots.append((out_dir / pair_figure_name(run.metric, other),
                          lambda r, p, other=other: plot_score_pair(r, other, p)))
    for path, plot in plots:
        plot(run, path)
        written.append(path)
    return written

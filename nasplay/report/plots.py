"""``nasplay inspect``'s plots: progress, score against size, overlays of runs, two scores.

Every plot names the run's own score (``val_accuracy`` for the proxy, ``naswot`` for zero-cost,
``oneshot_accuracy`` for one-shot) in its axis, title and file name, so a NASWOT run is never
drawn as if it were accuracy. Trial numbers get integer ticks, parameter counts read as k/M.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, so no global backend
is switched and nothing is left open) and written with one atomic replace, so a viewer open on
a report never reads half a PNG. A plot takes a ``nasplay.report.inspect.Run`` (it reads ``trials``,
``metric``, ``label``, ``searcher`` and ``best_first``), writes ``path`` and returns the figure
(for tests and notebooks).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

from nasplay.errors import plural
from nasplay.report.diagrams import save_png
from nasplay.runs.records import score_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# How axes name the scores nasplay's scorers report; other metrics are shown by their own name.
SCORE_LABELS = {
    "val_accuracy": "validation accuracy",
    "train_accuracy": "training accuracy",
    "oneshot_accuracy": "one-shot accuracy",
    "naswot": "NASWOT score",
}
_LINESTYLES = ("-", "--", ":", "-.")


def score_label(metric: str) -> str:
    """``"NASWOT score (naswot)"``: the words, then the key the leaderboard and records use."""
    words = SCORE_LABELS.get(metric)
    return f"{words} ({metric})" if words else metric


def file_stem(metric: str) -> str:
    """``metric`` as a safe file-name part (``naswot``, ``val_accuracy``, ``my_score_v2``)."""
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in metric).strip("_")
    return cleaned or "score"


def params_figure_name(metric: str) -> str:
    """``naswot_vs_params.png``: the score-against-size plot, named after the score."""
    return f"{file_stem(metric)}_vs_params.png"


def pair_figure_name(metric: str, other: str) -> str:
    """``oneshot_accuracy_vs_val_accuracy.png``: one score of the same trials against another."""
    return f"{file_stem(metric)}_vs_{file_stem(other)}.png"


def human_count(n: float, trim: bool = False) -> str:
    """12345678 -> '12.3M' (params and FLOPs); ``trim`` drops a '.0' ('200k', for axis ticks,
    where a table keeps '200.0k' to line up with its neighbours)."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            text = f"{n / size:.1f}"
            return (text[:-2] if trim and text.endswith(".0") else text) + unit
    return f"{n:.0f}"


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


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


# --- axes ---------------------------------------------------------------------------------------

def _new_figure(width: float = 6.4, height: float = 4.2):
    from matplotlib.figure import Figure  # no pyplot: no global backend, nothing to close

    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _integer_ticks(axis) -> None:
    """Trial numbers: whole numbers only, however few trials there are."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _count_axis(ax, values) -> None:
    """Parameter counts as 50k, 200k, 1.2M; a log scale when they span more than 10x."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    formatter = FuncFormatter(lambda value, _: human_count(value, trim=True))
    if min(values) > 0 and max(values) > 10 * min(values):
        ax.set_xscale("log")
        decades = math.log10(max(values) / min(values))   # labels sparser as the range grows
        subs = (1.0, 2.0, 5.0) if decades <= 1.5 else (1.0, 3.0) if decades <= 3 else (1.0,)
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=subs))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(formatter)


# --- one run ------------------------------------------------------------------------------------

def plot_progress(run, path) -> Figure:
    """Every completed trial's score (dots) and the best-so-far line, against trials."""
    fig, ax = _new_figure()
    scored = [(i + 1, score_of(t, run.metric)) for i, t in enumerate(run.trials)
              if score_of(t, run.metric) is not None]
    xs, ys = zip(*scored)
    ax.scatter(xs, ys, s=14, color="#9e9e9e", alpha=0.7, label="trial", zorder=2)
    curve = best_so_far(run.trials, run.metric)
    ax.step(range(1, len(curve) + 1), curve, where="post", color="#d62728", linewidth=2,
            label="best so far", zorder=3)
    failed = [i + 1 for i, t in enumerate(run.trials) if t.get("status") == "failed"]
    if failed:
        ax.plot(failed, [min(ys)] * len(failed), "x", color="#555555", label="failed", zorder=2)
    _integer_ticks(ax.xaxis)
    ax.set_xlabel("trials finished")
    ax.set_ylabel(score_label(run.metric))
    ax.set_title(f"{run.label}: best-so-far {run.metric}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    save_png(fig, path)
    return fig


def plot_score_vs_params(run, path) -> Figure:
    """Score against parameter count, coloured by finishing order, the best trial starred."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _new_figure()
    points = [(i + 1, t["metrics"]["params"], score_of(t, run.metric))
              for i, t in enumerate(run.trials)
              if score_of(t, run.metric) is not None
              and _is_number((t.get("metrics") or {}).get("params"))]
    if points:
        order, params, scores = zip(*points)
        dots = ax.scatter(params, scores, c=order, cmap="viridis", s=22, edgecolors="none")
        fig.colorbar(dots, ax=ax, label="trial (finishing order)",
                     ticks=MaxNLocator(integer=True))
        _count_axis(ax, params)
        best = run.best_first[0]
        if _is_number((best.get("metrics") or {}).get("params")):
            ax.scatter([best["metrics"]["params"]], [score_of(best, run.metric)],
                       marker="*", s=220, color="#d62728", edgecolors="black", zorder=3,
                       label=f"best: {best.get('trial_id')}")
            ax.legend(loc="best")
    else:
        ax.text(0.5, 0.5, "no trial recorded a parameter count", ha="center",
                transform=ax.transAxes)
    ax.set_xlabel("parameters")
    ax.set_ylabel(score_label(run.metric))
    ax.set_title(f"{run.label}: {run.metric} against parameters")
    ax.grid(alpha=0.3)
    save_png(fig, path)
    return fig


def paired_scores(trials: list[dict], metric: str, other: str) -> list[tuple[float, float]]:
    """``(metric, other)`` of every completed trial that has both, in finishing order."""
    pairs = [(score_of(t, metric), score_of(t, other)) for t in trials]
    return [(a, b) for a, b in pairs if a is not None and b is not None]


def plot_score_pair(run, other: str, path) -> Figure:
    """The trials scored twice (a one-shot run re-ranks its best with the standalone proxy):
    ``other`` against the run's metric, with the rank correlation in the title."""
    fig, ax = _new_figure(5.2, 4.4)
    pairs = paired_scores(run.trials, run.metric, other)
    xs, ys = zip(*pairs)
    ax.scatter(xs, ys, s=30, color="#1f77b4", edgecolors="black", linewidths=0.5, zorder=2)
    rho = spearman(xs, ys)
    about = f"Spearman {rho:.2f}, " if rho is not None else ""
    ax.set_xlabel(score_label(run.metric))
    ax.set_ylabel(score_label(other))
    ax.set_title(f"{run.label}: {other} against {run.metric}\n({about}{plural(len(pairs), 'trial')})",
                 fontsize=10)
    ax.grid(alpha=0.3)
    save_png(fig, path)
    return fig


def spearman(xs, ys) -> float | None:
    """Spearman's rank correlation (tied values share their mean rank); None below 3 pairs or
    when one side is constant."""
    import numpy as np

    def ranks(values):
        values = np.asarray(values, dtype=float)
        result = np.empty(len(values))
        result[values.argsort(kind="stable")] = np.arange(len(values))
        for value in np.unique(values):
            result[values == value] = result[values == value].mean()
        return result

    if len(xs) < 3:
        return None
    rx, ry = ranks(xs), ranks(ys)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


# --- several runs -------------------------------------------------------------------------------

def plot_overlay(runs, path, aggregate: bool = False, title: str | None = None) -> Figure:
    """Best-so-far curves of several runs in one figure. Runs of one searcher share a colour;
    with ``aggregate`` each searcher is drawn as the mean over its runs with a +-1 std band."""
    fig, ax = _new_figure(7.0, 4.4)
    groups: dict[str, list] = {}
    for run in runs:
        groups.setdefault(run.searcher or run.label, []).append(run)
    for k, (name, members) in enumerate(groups.items()):
        curves = [best_so_far(r.trials, r.metric) for r in members]
        if aggregate:
            _mean_band(ax, curves, f"C{k % 10}", f"{name} (mean of {len(curves)})")
            continue
        for j, (run, curve) in enumerate(zip(members, curves)):
            ax.step(range(1, len(curve) + 1), curve, where="post", color=f"C{k % 10}",
                    linestyle=_LINESTYLES[j % len(_LINESTYLES)], linewidth=1.6, label=run.label)
    metrics = sorted({r.metric for r in runs})
    _integer_ticks(ax.xaxis)
    ax.set_xlabel("trials finished")
    ax.set_ylabel(score_label(metrics[0]) if len(metrics) == 1 else " / ".join(metrics))
    ax.set_title(title or f"best-so-far {' / '.join(metrics)}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    save_png(fig, path)
    return fig


def _mean_band(ax, curves, colour, label) -> None:
    """The mean of ``curves`` (padded with NaN to the longest) and a +-1 std band."""
    import numpy as np

    length = max(map(len, curves))
    padded = np.full((len(curves), length), np.nan)
    for row, curve in zip(padded, curves):
        row[:len(curve)] = curve
    with warnings.catch_warnings():   # all-NaN columns before any run scored
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, std = np.nanmean(padded, axis=0), np.nanstd(padded, axis=0)
    xs = np.arange(1, length + 1)
    ax.step(xs, mean, where="post", color=colour, linewidth=2, label=label)
    ax.fill_between(xs, mean - std, mean + std, step="post", color=colour, alpha=0.2,
                    linewidth=0)

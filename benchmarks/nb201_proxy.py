"""The standalone proxy against NAS-Bench-201's ground truth: which training budget ranks cells.

    python -m benchmarks.nb201_proxy measure --budget default c16n1-e1-10k --cells 50
    python -m benchmarks.nb201_proxy table        # the table, the JSON and the frontier PNG
    python -m benchmarks.nb201_proxy measure --smoke --data DIR --out /tmp/x   # the tests' run

``--out DIR`` (default ``benchmarks/results``) is the folder of the files named below, read and
written. ``measure --smoke``: 3 cells at the ``smoke`` budget (C=4, N=1, 1 epoch on 64 images),
then the table (``--table``).

``measure`` trains the first ``--cells`` cells of the fixed 200-cell sample (``nb201_truth``; the
sample is random, so its first 50 are a random 50), or with ``--sample top`` 40 of the table's best
1,000 (ranks 1, 26, 51, ..., 976: can the budget order cells within 1.6 points of each other, which
is what finding a top-30 cell asks of it), with ``nasplay.scorers.proxy.training.train`` at each
named budget (``BUDGETS``: network width and depth, epochs, training and validation images), on
CIFAR-10's training split (``--data``: the shared JPEG copy by default). Each cell's row (held-out
accuracy and loss, wall and CPU seconds) goes to ``benchmarks/results/nb201_proxy_raw.jsonl`` as it
comes; a stopped run continues where it stopped.

``table`` judges each budget's held-out accuracy and negated loss with ``nb201_truth.rank_stats``
against the table's 12-epoch validation accuracy, on the cells every budget measured, prints one
table, writes ``benchmarks/results/nb201_proxy.json`` and draws the frontier (Spearman against
CPU seconds a candidate) to ``benchmarks/results/nb201_proxy_frontier.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.common import RESULTS, SHARED_CIFAR, add_smoke, append_jsonl
from benchmarks.nb201_truth import TABLE_HEADER, format_stats, rank_stats, sample_cells

RAW_NAME = "nb201_proxy_raw.jsonl"
OUT_NAME = "nb201_proxy.json"
PNG_NAME = "nb201_proxy_frontier.png"
SEEDS_NAME = "nb201_proxy_seeds.json"

def _budget(filters: int, cells_per_stage: int, epochs: int, train_size: int,
            val_size: int = 2000) -> dict:
    return dict(filters=filters, cells_per_stage=cells_per_stage, epochs=epochs,
                train_size=train_size, val_size=val_size)


# name -> ProxyConfig fields. "default" is the proxy's CPU default as an nb201 search runs it.
BUDGETS = {
    "default": _budget(8, 1, 3, 2000, val_size=1000),
    "c16n1-e1-10k": _budget(16, 1, 1, 10000),
    "c16n1-e3-10k": _budget(16, 1, 3, 10000),
    "c8n5-e1-10k": _budget(8, 5, 1, 10000),
    "c8n5-e1-5k": _budget(8, 5, 1, 5000),  # the deep rung at half the cost: twice the cells an hour
    "smoke": _budget(4, 1, 1, 64, val_size=32),  # the tests' run of seconds (--smoke)
}


def top_cells(step: int = 25) -> list[dict]:
    """Cells spread over the table's 1,000 best: ranks 1, 1 + step, ... (step 25: 40 cells;
    step 50: the 20 of them at ranks 1, 51, ..., 951)."""
    from nasplay.scorers.nb201.table import table
    from search_space import parse_arch_str

    by_rank = sorted(table().entries, key=lambda e: e.rank)
    return [{"arch_str": e.arch_str, "genotype": parse_arch_str(e.arch_str).to_dict(),
             "val_accuracy": e.val_accuracy, "test_accuracy": e.test_accuracy, "rank": e.rank,
             "index": e.index} for e in by_rank[0:1000:step]]


def hour_cells() -> list[dict]:
    """The laptop hour's cells (``nb201_hour.py``, seed 0): the 8 it re-scored and the truly
    best it visited; does a budget rank them as the table does?"""
    from nasplay.scorers.nb201.table import table
    from search_space import Genotype, get_space

    space, rows = get_space("nb201"), (RESULTS / "nb201_hour_ladder_s0_trials.jsonl")
    rows = [json.loads(line) for line in rows.read_text().splitlines()]
    trials = {r["trial_id"]: r for r in rows if "rescore" not in r}
    arch = lambda r: space.to_arch_str(Genotype.from_dict(r["genotype"]))  # noqa: E731
    chosen = [trials[r["trial_id"]] for r in rows if "rescore" in r]
    chosen.append(min(trials.values(), key=lambda r: table().lookup(arch(r)).rank))
    cells, seen = [], set()
    for r in chosen:
        e = table().lookup(arch(r))
        if e.index not in seen:
            seen.add(e.index)
            cells.append({"arch_str": e.arch_str, "genotype": r["genotype"], "rank": e.rank,
                          "val_accuracy": e.val_accuracy, "test_accuracy": e.test_accuracy,
                          "index": e.index})
    return cells


def cells_of(sample: str, cells: int, step: int = 25) -> list[dict]:
    if sample == "hour":
        return hour_cells()
    return top_cells(step) if sample == "top" else sample_cells()[:cells]


def _rows(out: Path = RESULTS) -> list[dict]:
    raw = out / RAW_NAME
    if not raw.exists():
        return []
    # rows from before samples and seeds were recorded are the random sample's, at seed 0
    return [{"sample": "random", "seed": 0, **row}
            for row in map(json.loads, raw.read_text().splitlines())]


def _done(out: Path = RESULTS) -> set:
    return {(row["sample"], row["budget"], row["index"], row["seed"]) for row in _rows(out)}


def measure(budgets: list[str], cells: int, data: str, seed: int, sample: str,
            step: int = 25, out: Path = RESULTS) -> None:
    from nasplay.scorers.proxy import training as proxy
    from search_space import Genotype

    done = _done(out)
    for name in budgets:
        # ``--seed S`` sets the weights, the data order and the images, as ``nasplay search
        # --seed S`` does (rows from before seeds were compared all have seed 0 for both)
        config = proxy.ProxyConfig(data=data, seed=seed, subset_seed=seed, **BUDGETS[name])
        for cell in cells_of(sample, cells, step):
            if (sample, name, cell["index"], seed) in done:
                continue
            wall, cpu = time.perf_counter(), time.process_time()
            _, metrics = proxy.train(Genotype.from_dict(cell["genotype"]), config)
            row = {"sample": sample, "budget": name, "index": cell["index"],
                   "arch_str": cell["arch_str"], "val_accuracy": metrics["val_accuracy"], "val_loss": metrics["val_loss"],
                   "params": metrics["params"], "train_seconds": metrics["train_seconds"],
                   "wall_seconds": time.perf_counter() - wall,
                   "cpu_seconds": time.process_time() - cpu, "seed": seed}
            append_jsonl(out / RAW_NAME, row)
            print(f"{name} {cell['index']:>5} acc {row['val_accuracy']:.3f} "
                  f"loss {row['val_loss']:.3f} truth {cell['val_accuracy']:.2f} "
                  f"{row['wall_seconds']:.1f} s", flush=True)


def table(out: Path = RESULTS) -> dict:
    """Every (sample, budget)'s statistics, and the top sample's budgets again on the cells
    they all measured (``top_common``: the 20 ranks 1, 51, ... when one used ``--top-step 50``)."""
    truth = {c["index"]: c["val_accuracy"] for c in sample_cells() + top_cells() + hour_cells()}
    by_budget: dict[tuple, dict] = {}
    for row in _rows(out):
        by_budget.setdefault((row["sample"], _seeded(row)), {})[row["index"]] = row
    result = {"truth": "val_accuracy (NAS-Bench-201 CIFAR-10, 12 epochs)", "budgets": {},
              "top": {}, "top_common": {}, "hour": {}}
    print(TABLE_HEADER.replace("CPU s/cell", "wall s/cell (CPU s)"))
    tops = [cells for (sample, _), cells in by_budget.items() if sample == "top"]
    common = sorted(set.intersection(*(set(c) for c in tops))) if tops else []
    groups = [(sample, name, cells, sorted(cells)) for (sample, name), cells
              in sorted(by_budget.items())]
    if any(len(c) > len(common) for c in tops):
        groups += [("top_common", name, cells, common) for (sample, name), cells
                   in sorted(by_budget.items()) if sample == "top"]
    for sample, name, cells, indices in groups:
        result["budgets" if sample == "random" else sample][name] = \
            _judge(sample, name, cells, indices, truth)
    out.mkdir(parents=True, exist_ok=True)
    (out / OUT_NAME).write_text(json.dumps(result, indent=1) + "\n")
    _plot(result, out / PNG_NAME)
    return result


def _seeded(row: dict) -> str:
    """A row's budget as the table names it: ``c8n5-e1-10k``, or ``c8n5-e1-10k seed 4`` for
    another seed than 0 (so seeds are never mixed within a budget)."""
    return row["budget"] if row["seed"] == 0 else f"{row['budget']} seed {row['seed']}"


def seeds(budget: str, out: Path = RESULTS) -> dict:
    """How much one training's seed (weights, data order, images) moves a budget's ranking: on
    the random cells every seed measured, each seed against the truth, the seeds against each
    other, and the mean of the seeds' scores (what ``--repeats`` scores) against the truth.
    Prints a table; writes ``nb201_proxy_seeds.json``."""
    truth = {c["index"]: c["val_accuracy"] for c in sample_cells()}
    by_seed: dict[int, dict] = {}
    for row in _rows(out):
        if row["sample"] == "random" and row["budget"] == budget:
            by_seed.setdefault(row["seed"], {})[row["index"]] = row
    if len(by_seed) < 2:
        raise SystemExit(f"seeds: {budget} has rows of {len(by_seed)} seed(s); measure it "
                         f"with another --seed first")
    common = sorted(set.intersection(*(set(cells) for cells in by_seed.values())))
    t = [truth[i] for i in common]
    order = sorted(by_seed)
    result = {"budget": budget, "settings": BUDGETS.get(budget), "cells": common,
              "seeds": order, "stats": {}}
    print(TABLE_HEADER.replace("CPU s/cell", "wall s/cell"))
    for metric, sign, label in (("val_accuracy", 1.0, "accuracy"), ("val_loss", -1.0, "loss")):
        score = {s: [sign * by_seed[s][i][metric] for i in common] for s in order}
        for s in order:
            wall = float(np.mean([by_seed[s][i]["wall_seconds"] for i in common]))
            _add(result, f"seed {s}, {label}", rank_stats(score[s], t), wall)
        mean = np.mean([score[s] for s in order], axis=0)
        _add(result, f"mean of seeds {', '.join(map(str, order))}, {label}",
             rank_stats(mean, t), None)
        first, *others = order
        for s in others:
            _add(result, f"seed {first} against seed {s}, {label} (agreement)",
                 rank_stats(score[first], score[s]), None)
    (out / SEEDS_NAME).write_text(json.dumps(result, indent=1) + "\n")
    return result


def _add(result: dict, name: str, stats: dict, wall: float | None) -> None:
    result["stats"][name] = stats
    print(format_stats(name, stats, wall))


def _judge(sample: str, name: str, cells: dict, indices: list, truth: dict) -> dict:
    t = [truth[i] for i in indices]
    wall = float(np.mean([cells[i]["wall_seconds"] for i in indices]))
    cpu = float(np.mean([cells[i]["cpu_seconds"] for i in indices]))
    entry = {"settings": BUDGETS.get(name), "cells": indices, "wall_seconds": wall,
             "cpu_seconds": cpu, "stats": {}}
    where = {"random": "", "top": " (top 1,000)", "top_common": " (top 1,000, common cells)",
             "hour": " (the hour's 9 cells)"}
    for metric, sign in (("val_accuracy", 1.0), ("val_loss", -1.0)):
        stats = rank_stats([sign * cells[i][metric] for i in indices], t)
        entry["stats"][metric] = stats
        label = f"{name} {'accuracy' if sign > 0 else '-loss'}{where[sample]}"
        print(format_stats(label, stats).rstrip(" |") + f" | {wall:.1f} ({cpu:.1f}) |")
    return entry


def _plot(result: dict, png: Path) -> None:
    """Spearman against wall seconds a candidate: the random sample (left) and the top-1,000
    sample on the cells every budget measured (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    panels = (("budgets", "random cells"), ("top_common" if result["top_common"] else "top",
                                            "the table's best 1,000 (common cells)"))
    for ax, (key, title) in zip(axes, panels):
        for metric, marker, color in (("val_loss", "o", "C0"), ("val_accuracy", "x", "C1")):
            for name, entry in result[key].items():
                stats = entry["stats"][metric]
                low, high = stats["spearman_ci"]
                ax.errorbar(entry["wall_seconds"], stats["spearman"], fmt=marker, capsize=3,
                            yerr=[[stats["spearman"] - low], [high - stats["spearman"]]],
                            color=color)
                if metric == "val_loss":
                    ax.annotate(name, (entry["wall_seconds"], stats["spearman"]), fontsize=8,
                                textcoords="offset points", xytext=(5, 5))
        ax.axhline(0.8, ls="--", color="grey", lw=0.8)
        ax.axvline(60, ls="--", color="grey", lw=0.8)
        ax.set_xlabel("wall seconds a candidate (2 CPU cores)")
        ax.set_title(f"{title} (n = {max((len(e['cells']) for e in result[key].values()), default=0)})")
    axes[0].set_ylabel("Spearman vs NAS-Bench-201 (12 epochs)")
    fig.suptitle("Proxy budgets: o held-out loss, x held-out accuracy (95% CI)")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--budget", nargs="+", default=["default"], choices=sorted(BUDGETS))
    m.add_argument("--cells", type=int, default=50)
    m.add_argument("--sample", choices=("random", "top", "hour"), default="random")
    m.add_argument("--top-step", type=int, default=25, help="--sample top: every k-th rank")
    m.add_argument("--data", default=SHARED_CIFAR)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--table", action="store_true", help="then the table, as `table` does")
    add_smoke(m, budget=["smoke"], cells=3, table=True)
    t = sub.add_parser("table")
    sd = sub.add_parser("seeds", help="one budget measured at several --seed: how the seed "
                                      "moves its ranking")
    sd.add_argument("--budget", default="c8n5-e1-10k", choices=sorted(BUDGETS))
    for p in (m, t, sd):
        p.add_argument("--out", type=Path, default=RESULTS,
                       help="the folder of the raw rows, the JSON and the PNG (read and written)")
    args = parser.parse_args()
    if getattr(args, "smoke", False) and args.out.resolve() == RESULTS.resolve():
        parser.error("--smoke: give --out a folder other than benchmarks/results")
    if args.command == "measure":
        measure(args.budget, args.cells, args.data, args.seed, args.sample, args.top_step,
                args.out)
    if args.command == "seeds":
        seeds(args.budget, args.out)
    if args.command == "table" or getattr(args, "table", False):
        table(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Compare the three searchers (random, RL controller, regularized evolution) at one budget.

Each (searcher, seed) pair searches the same space for the same number of trials, scored by the
zero-cost NASWOT score (default: seconds per candidate, no data needed) or by real proxy training
on a CIFAR-10 subset (``--scorer proxy``: minutes per candidate). Every pair writes an ordinary
run directory through ``nasplay.runs.rundir`` (its ``config.json`` is the SearchConfig that
``nasplay search`` would write), so ``nasplay inspect`` reads the results like any search's.
The script then draws the overlay of best-so-far curves (mean and std band per searcher) and
prints the mean and std over seeds of the best score at half and at the full budget.

    python experiments/compare_searchers.py --out runs/compare --trials 30 --seeds 0 1 2
    nasplay inspect runs/compare/*-s* --aggregate --out runs/compare/report   # the same figure

The scorer is one fixed function for all searchers and seeds (its own ``--scorer-seed``), so a
genotype proposed twice is scored once and the cached score reused (marked ``"cached": true``).
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:           # run as a script from a checkout
    sys.path.insert(0, str(REPO))

SEARCHER_NAMES = ("random", "controller", "evolution")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="study folder: one run directory per "
                        "(searcher, seed), the overlay figure and summary.md")
    parser.add_argument("--scorer", choices=("zero-cost", "proxy"), default="zero-cost")
    parser.add_argument("--searchers", nargs="+", choices=SEARCHER_NAMES, default=SEARCHER_NAMES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--trials", type=int, default=30, help="budget per run (default 30)")
    parser.add_argument("--space", default="nasnet")
    parser.add_argument("--population-size", type=int, default=10, help="evolution: population "
                        "(the paper's 100 would make a short run pure random search)")
    parser.add_argument("--sample-size", type=int, default=3, help="evolution: tournament size")
    parser.add_argument("--filters", type=int, default=8, help="width of the scored networks")
    parser.add_argument("--cells-per-stage", type=int, default=1)
    parser.add_argument("--scorer-seed", type=int, default=0, help="weights and probe batch of "
                        "the zero-cost score; seed of proxy training")
    parser.add_argument("--batch-size", type=int, default=32, help="zero-cost probe batch")
    parser.add_argument("--data", default="cifar10", help="proxy scorer: data source")
    parser.add_argument("--subset", type=int, default=2000, help="proxy scorer: training images")
    parser.add_argument("--epochs", type=int, default=3, help="proxy scorer: epochs")
    parser.add_argument("--figure", help="also copy the overlay figure here "
                        "(e.g. docs/images/compare.png)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing run directories")
    return parser.parse_args(argv)


# --- scorers: genotype -> metrics dict holding the study's metric ------------------------------

def zero_cost_scorer(args) -> tuple[Callable, dict]:
    """NASWOT with one fixed seed (weights, probe batch) for every searcher and seed."""
    from nasplay.scorers.zero_cost.naswot import ZeroCostConfig, evaluate

    config = ZeroCostConfig(batch_size=args.batch_size, filters=args.filters,
                            cells_per_stage=args.cells_per_stage, seed=args.scorer_seed)
    options = {"batch_size": config.batch_size, "seed": config.seed}
    return (lambda genotype: evaluate(genotype, config)), options


def proxy_scorer(args) -> tuple[Callable, dict]:
    """A few epochs on a CIFAR-10 subset; the same subset and initial-weight seed for all."""
    from nasplay.scorers.proxy.training import ProxyConfig, evaluate

    config = ProxyConfig(data=args.data, train_size=args.subset, epochs=args.epochs,
                         filters=args.filters, cells_per_stage=args.cells_per_stage,
                         seed=args.scorer_seed, subset_seed=args.scorer_seed)
    config.check()
    options = {"seed": config.seed, "subset_seed": config.subset_seed}
    return (lambda genotype: evaluate(genotype, config)), options


# --- one run ------------------------------------------------------------------------------------

def search_config(args, name: str, seed: int, run_dir: Path, scorer_options: dict):
    """The run's ``config.json``: the SearchConfig that ``nasplay search`` would write for it."""
    from nasplay.engine.config import SearchConfig
    from nasplay.scorers import default_metric

    proxy = args.scorer == "proxy"
    sizes = {"filters": args.filters, "cells_per_stage": args.cells_per_stage,
             **({"train_size": args.subset, "epochs": args.epochs} if proxy else {})}
    return SearchConfig(searcher=name, space=args.space, trials=args.trials, seed=seed,
                        metric=default_metric(args.scorer),
                        searcher_options=searcher_options(name, args), scorer=args.scorer,
                        data=args.data if proxy else None,
                        scorer_options={**sizes, **scorer_options}, run_dir=str(run_dir),
                        workers=1)


def run_one(searcher, run_dir: Path, config, score: Callable, cache: dict) -> None:
    """Ask, score, tell and record ``config.trials`` times (fewer if the searcher finishes)."""
    from nasplay.runs.records import trial_record
    from nasplay.runs.rundir import RunDir

    records = RunDir(run_dir)
    records.create(config)
    metric = config.metric
    for step in range(config.trials):
        proposal = searcher.ask()
        if proposal is None:
            break
        started = time.time()
        key = proposal.genotype.hash()
        try:
            if key in cache:
                metrics = {**cache[key], "cached": True}
            else:
                metrics = cache[key] = score(proposal.genotype)
            if not math.isfinite(metrics[metric]):
                raise FloatingPointError(f"{metric} is {metrics[metric]}")
        except Exception as e:  # a candidate that fails to build or train is a failed trial
            searcher.tell(proposal.trial_id, None)
            record = trial_record(proposal.trial_id, proposal.genotype.to_dict(), "failed",
                                  error=f"{type(e).__name__}: {e}", step=step, started_at=started)
        else:
            searcher.tell(proposal.trial_id, metrics[metric], metrics)
            record = trial_record(proposal.trial_id, proposal.genotype.to_dict(), "completed",
                                  metrics, step=step, started_at=started)
        records.append_trial(record)


def searcher_options(name: str, args) -> dict:
    """Constructor arguments beyond (space, seed): evolution's population for a short budget."""
    if name == "evolution":
        return {"population_size": args.population_size, "sample_size": args.sample_size}
    return {}


def run_study(args, score: Callable, scorer_options: dict) -> list[Path]:
    """Every (searcher, seed) pair in its own run directory under ``args.out``."""
    from search_space import get_space
    from searchers import make_searcher

    space = get_space(args.space)
    out = Path(args.out)
    cache: dict[str, dict] = {}
    pairs = [(name, seed) for name in args.searchers for seed in args.seeds]
    existing = [out / f"{n}-s{seed}" for n, seed in pairs if (out / f"{n}-s{seed}").exists()]
    if existing and not args.overwrite:
        sys.exit(f"{existing[0]} exists; pass --overwrite to replace the study's run directories")
    run_dirs = []
    for name, seed in pairs:
        run_dir = out / f"{name}-s{seed}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        config = search_config(args, name, seed, run_dir, scorer_options)
        start = time.perf_counter()
        run_one(make_searcher(name, space, seed, **config.searcher_options), run_dir, config,
                score, cache)
        print(f"{run_dir.name}: {time.perf_counter() - start:.0f} s", flush=True)
        run_dirs.append(run_dir)
        if "keras" in sys.modules:   # the run's networks (and controller) are done with: free
            sys.modules["keras"].backend.clear_session()   # Keras's global graph state
    return run_dirs


# --- summary ------------------------------------------------------------------------------------

def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {std:.2f}"


def summary_table(runs, budget: int) -> str:
    """Markdown: per searcher, mean ± std over seeds of the best score at half and at the full
    budget, and the failed trials."""
    from nasplay.report.inspect import best_so_far

    by_searcher: dict[str, list] = {}
    for run in runs:
        by_searcher.setdefault(run.searcher, []).append(run)
    half = max(budget // 2, 1)
    metric = runs[0].metric
    lines = [f"| searcher | seeds | best {metric} at {half} trials | best {metric} at {budget} "
             f"trials | failed trials |", "| --- | --- | --- | --- | --- |"]
    for name, members in by_searcher.items():
        curves = [best_so_far(r.trials, r.metric) for r in members]
        at_half = [c[min(half, len(c)) - 1] for c in curves]
        at_end = [c[min(budget, len(c)) - 1] for c in curves]
        failed = sum(r.counts["failed"] for r in members)
        lines.append(f"| {name} | {len(members)} | {_mean_std(at_half)} | {_mean_std(at_end)} "
                     f"| {failed} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.trials < 1:
        sys.exit("--trials must be at least 1")
    make_scorer = zero_cost_scorer if args.scorer == "zero-cost" else proxy_scorer
    score, scorer_options = make_scorer(args)
    start = time.perf_counter()
    run_dirs = run_study(args, score, scorer_options)
    elapsed = time.perf_counter() - start

    from nasplay.report.inspect import load_run, plot_overlay

    runs = [load_run(d) for d in run_dirs]
    metric = runs[0].metric
    figure = Path(args.out) / "compare.png"
    plot_overlay(runs, figure, aggregate=True,
                 title=f"best-so-far {metric} ({args.scorer} scorer, {args.space}, "
                       f"mean ± std over {len(args.seeds)} seeds)")
    if args.figure:
        Path(args.figure).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(figure, args.figure)
    table = summary_table(runs, args.trials)
    command = "python experiments/compare_searchers.py " + " ".join(sys.argv[1:] if argv is None
                                                                    else argv)
    text = (f"{table}\n\n{len(run_dirs)} runs of {args.trials} trials in {elapsed:.0f} s; "
            f"command: `{command}`\n")
    (Path(args.out) / "summary.md").write_text(text, encoding="utf-8")
    print(text)
    print(f"figure: {figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

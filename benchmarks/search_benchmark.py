"""Search throughput: candidates per hour with ``nasplay search`` on Ray Tune (1 and 2 workers),
against a plain sequential loop of the same evaluations and keras-tuner's RandomSearch, on the
same cells, data and training budget.

    python -m benchmarks.search_benchmark                      # all four, prints a markdown table
    python -m benchmarks.search_benchmark --candidates 4 --modes loop,ray2

The cells are the first ``--candidates`` proposals of ``RandomSearch(space, seed=0)``: the Ray
runs use that searcher and so evaluate exactly these, in this order. Each mode runs in a fresh
Python process, so every one pays its own start (imports, Ray, the data cache load) and none
inherits another's warm state; "end to end" includes that start, "candidates" is the phase that
evaluates them (for Ray: from the Tuner's start, so actor starts and worker imports count).

Ray's overhead per trial is measured two ways: the trial's own wall time (``trial_seconds``,
reported from inside the worker) against the driver's, from ``on_trial_start`` to the record;
and the candidates phase of one Ray worker against the plain loop's, per candidate.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, SHARED_CIFAR, add_smoke

MODES = ("loop", "keras-tuner", "ray1", "ray2")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from nasplay.scorers.proxy.training import ProxyConfig

    default = ProxyConfig()  # the default CPU proxy, unless told otherwise
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--space", default="nasnet")
    parser.add_argument("--data",
                        default=SHARED_CIFAR if Path(SHARED_CIFAR).is_dir() else "cifar10")
    parser.add_argument("--subset", type=int, default=default.train_size,
                        help="training images per candidate")
    parser.add_argument("--val-size", type=int, default=default.val_size)
    parser.add_argument("--epochs", type=int, default=default.epochs)
    parser.add_argument("--filters", type=int, default=default.filters)
    parser.add_argument("--cells-per-stage", type=int, default=default.cells_per_stage)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--out", help="write the measurements as JSON here")
    parser.add_argument("--mode", help=argparse.SUPPRESS)  # internal: run one mode, print JSON
    add_smoke(parser, candidates=2, subset=128, val_size=64, epochs=1, modes="loop,ray1")
    return parser.parse_args(argv)


def genotypes(args):
    from search_space import get_space
    from searchers import RandomSearch

    searcher = RandomSearch(get_space(args.space), seed=0, max_trials=args.candidates)
    return [searcher.ask().genotype for _ in range(args.candidates)]


def proxy_config(args, cpus):
    from nasplay.scorers.proxy.training import ProxyConfig

    return ProxyConfig(data=args.data, train_size=args.subset, val_size=args.val_size,
                       epochs=args.epochs, filters=args.filters,
                       cells_per_stage=args.cells_per_stage, seed=0, subset_seed=0, cpus=cpus)


# ---------------------------------------------------------------------- one mode per process


def run_loop(args, started):
    """The plain loop: one process, ``nasplay.scorers.proxy.training.evaluate`` on each cell in
    turn."""
    from nasplay.scorers.proxy import training as proxy

    config = proxy_config(args, cpus=os.cpu_count())
    cells = genotypes(args)
    proxy.subsets(config)  # the data cache load, as a worker's first trial does it
    start = time.time()
    seconds = []
    for genotype in cells:
        t = time.time()
        metrics = proxy.evaluate(genotype, config)
        seconds.append(time.time() - t)
    return {"candidates_s": time.time() - start, "end_to_end_s": time.time() - started,
            "per_candidate_s": seconds, "val_accuracy": metrics["val_accuracy"]}


def run_keras_tuner(args, started):
    """keras-tuner's RandomSearch over a HyperModel that builds the listed cells, trained with
    the proxy's optimizer, schedule, data and epochs (keras-tuner validates every epoch)."""
    import keras
    import keras_tuner

    from cells import build_network
    from nasplay.runtime import devices
    from nasplay.scorers.proxy import training as proxy
    from nasplay.data import make_dataset

    config = proxy_config(args, cpus=os.cpu_count())
    devices.configure(config.cpus, gpus=False)
    cells = genotypes(args)
    sets = proxy.subsets(config)
    steps = len(sets.x_train) // config.batch_size

    class ListedCells(keras_tuner.HyperModel):
        def build(self, hp):
            genotype = cells[hp.Choice("cell", list(range(len(cells))))]
            devices.reset()
            keras.utils.set_random_seed(config.seed)
            model = build_network(genotype, num_classes=len(sets.classes),
                                  filters=config.filters, cells_per_stage=config.cells_per_stage,
                                  input_shape=sets.x_train.shape[1:])
            proxy._compile(model, config, steps, jit_compile=False)
            return model

    with tempfile.TemporaryDirectory() as folder:
        tuner = keras_tuner.RandomSearch(ListedCells(), objective="val_accuracy",
                                         max_trials=len(cells), seed=0, directory=folder,
                                         project_name="bench", overwrite=True)
        train = make_dataset(sets.x_train, sets.y_train, config.batch_size, training=True,
                             seed=config.seed)
        val = make_dataset(sets.x_val, sets.y_val, 500, training=False)
        start = time.time()
        tuner.search(train, validation_data=val, epochs=config.epochs, verbose=0)
        candidates_s = time.time() - start
        trials = len(tuner.oracle.trials)
    return {"candidates_s": candidates_s, "end_to_end_s": time.time() - started,
            "trials": trials}


def run_ray(args, started, workers):
    """``nasplay.search`` with the random searcher (seed 0): the same cells, in order."""
    import ray

    from nasplay import SearchConfig, search

    cells = genotypes(args)
    t = time.time()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")
    init_s = time.time() - t
    with tempfile.TemporaryDirectory() as folder:
        config = SearchConfig(searcher="random", space=args.space, trials=len(cells), seed=0,
                              data=args.data,
                              scorer_options={"train_size": args.subset, "epochs": args.epochs,
                                              "filters": args.filters,
                                              "cells_per_stage": args.cells_per_stage,
                                              "val_size": args.val_size}, workers=workers,
                              run_dir=str(Path(folder) / "run"))
        start = time.time()
        result = search(config)
        end = time.time()
        candidates_s = end - start
    ray.shutdown()
    records = result.records
    same = [r["genotype"] for r in sorted(records, key=lambda r: r["step"])] == \
        [g.to_dict() for g in cells]
    inside = [r["metrics"]["trial_seconds"] for r in records if r["status"] == "completed"]
    driver = [r["finished_at"] - r["started_at"] for r in records
              if r["status"] == "completed" and r.get("started_at")]
    finished = sorted(r["finished_at"] for r in records)
    return {"candidates_s": candidates_s, "end_to_end_s": time.time() - started,
            "ray_init_s": init_s, "same_cells": same, "failed": result.failed,
            # seconds from each trial's end to the phase's end, latest first: the last
            # ``workers`` of them are the workers' idle tails (see ``table``)
            "finished_before_end_s": [end - f for f in reversed(finished)],
            "trial_inside_s": inside, "trial_driver_s": driver,
            "train_s": [r["metrics"]["train_seconds"] for r in records
                        if r["status"] == "completed"]}


def run_mode(args):
    started = time.time()
    if args.mode == "loop":
        out = run_loop(args, started)
    elif args.mode == "keras-tuner":
        out = run_keras_tuner(args, started)
    else:
        out = run_ray(args, started, workers=int(args.mode[-1]))
    print("RESULT " + json.dumps(out))


# ---------------------------------------------------------------------- driver


def main(argv=None):
    args = parse_args(argv)
    if args.mode:
        return run_mode(args)
    results = {"args": {k: v for k, v in vars(args).items() if k not in ("mode", "out")},
               "load_before": os.getloadavg()[0], "modes": {}}
    passthrough = [f"--candidates={args.candidates}", f"--space={args.space}",
                   f"--data={args.data}", f"--subset={args.subset}",
                   f"--val-size={args.val_size}", f"--epochs={args.epochs}",
                   f"--filters={args.filters}", f"--cells-per-stage={args.cells_per_stage}"]
    for mode in args.modes.split(","):
        print(f"--- {mode} (load average {os.getloadavg()[0]:.1f})", flush=True)
        wall = time.time()
        proc = subprocess.run([sys.executable, "-m", "benchmarks.search_benchmark", f"--mode={mode}",
                               *passthrough],
                              cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
                                   # Ray's workers import nasplay and the cells from here too
                                   "PYTHONPATH": os.pathsep.join(
                                       filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))})
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n")
            raise SystemExit(f"{mode} failed (exit {proc.returncode})")
        out = json.loads(lines[-1][len("RESULT "):])
        out["process_s"] = time.time() - wall
        results["modes"][mode] = out
        print(json.dumps(out), flush=True)
    results["load_after"] = os.getloadavg()[0]
    print(table(results, args.candidates))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


def table(results, k) -> str:
    modes = results["modes"]
    rows = ["| mode | candidates phase | candidates/hour | end to end | candidates/hour "
            "(end to end) | vs loop |", "|---|---|---|---|---|---|"]
    loop = modes.get("loop")
    for name, out in modes.items():
        rate = 3600 * k / out["candidates_s"]
        rate_e2e = 3600 * k / out["end_to_end_s"]
        vs = f"{loop['candidates_s'] / out['candidates_s']:.2f}x" if loop else "-"
        rows.append(f"| {name} | {out['candidates_s']:.1f} s | {rate:.0f} | "
                    f"{out['end_to_end_s']:.1f} s | {rate_e2e:.0f} | {vs} |")
    notes = []
    for name in ("ray1", "ray2"):
        out = modes.get(name)
        if not out or not out["trial_inside_s"]:
            continue
        inside, driver = out["trial_inside_s"], out["trial_driver_s"]
        per_trial = [d - i for d, i in zip(driver, inside)]
        workers = int(name[-1])
        median = statistics.median(inside)
        outside = (workers * out["candidates_s"] - sum(inside)) / len(inside)
        # Once no trial is left to start, a worker whose last trial ends early waits for the
        # slowest: the last ``workers`` trial ends are on distinct workers (a free worker always
        # takes the next trial), and each waits from its end to the last one's. That is load
        # imbalance at the end of a finite run, not a cost per trial; the rest (Tuner start,
        # actor starts, worker imports, scheduling between trials, Tuner shutdown) is.
        tails = out.get("finished_before_end_s", [])[:workers]
        idle = sum(t - tails[0] for t in tails) if len(tails) == workers else 0.0
        overhead = (workers * out["candidates_s"] - sum(inside) - idle) / len(inside)
        notes.append(f"{name}: worker time outside any trial {outside:.1f} s per trial = "
                     f"{100 * outside / median:.1f}% of a trial; of it, workers idle while the "
                     f"slowest last trial ran {idle:.1f} s in all; the rest (Tuner start, actor "
                     f"starts, imports, scheduling, shutdown) **{overhead:.1f} s per trial = "
                     f"{100 * overhead / median:.1f}% of a trial**")
        notes.append(f"{name}: ray.init {out['ray_init_s']:.1f} s; trial inside median "
                     f"{median:.1f} s, driver-observed median "
                     f"{statistics.median(driver):.1f} s, difference median "
                     f"{statistics.median(per_trial):.2f} s "
                     f"({100 * statistics.median(per_trial) / statistics.median(inside):.1f}%); "
                     f"same cells as the loop: {out['same_cells']}")
    if loop and "ray1" in modes:
        extra = (modes["ray1"]["candidates_s"] - loop["candidates_s"]) / k
        mean = loop["candidates_s"] / k
        notes.append(f"ray1 vs loop: {extra:+.1f} s per candidate "
                     f"({100 * extra / mean:+.1f}% of the loop's {mean:.1f} s)")
    notes.append(f"load average {results['load_before']:.1f} before, "
                 f"{results['load_after']:.1f} after")
    return "\n".join(rows + [""] + [f"- {n}" for n in notes])


if __name__ == "__main__":
    main()

"""The default proxy on TensorFlow vs JAX vs PyTorch, on this machine, in one run of one script.

    python -m benchmarks.backend_benchmark                  # 2 cells x 3 backends, default proxy
    python -m benchmarks.backend_benchmark --smoke          # a tiny run: does every backend work?
    python -m benchmarks.backend_benchmark --backends tensorflow jax --cells 3

Each backend runs in its own child process (Keras picks its backend at import), started with
``nasplay.runtime.backends.worker_env``'s variables, one after another, and evaluates the same
random cells with ``nasplay.scorers.proxy.training.evaluate`` at the default ``ProxyConfig`` on the
shared CIFAR-10 copy, the cells in the same order in one warm process (as a search worker does: the
second cell shows what a process's caches save). Per candidate it records:

- fixed cost: build (network, compile, variables, FLOPs) + the first step's overhead (tracing or
  compiling: the first graph call minus what its steps cost once compiled) + evaluation;
- steady epoch: an epoch once compiled (median of the epochs after the first);
- validation accuracy (the same cells, data, order and seeds on every backend; weights are
  drawn by each backend's own random generator, so accuracies differ by training noise only);
- the child's CPU seconds (all threads): steadier than wall time on a shared machine.

Prints a table and writes ``benchmarks/results/backend_benchmark[_smoke].json`` (every
candidate's metrics, the machine, the versions). A backend whose package is missing is skipped
with the pip command that installs it. Timing figures mean something only on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, RESULTS, SHARED_CIFAR

SMOKE = dict(train_size=256, val_size=128, epochs=2, filters=4, cells_per_stage=0)


def child(args) -> None:
    """In the backend's process: evaluate the cells, write one JSON line per candidate."""
    import numpy as np

    from nasplay.scorers.proxy import training as proxy
    from search_space import get_space

    overrides = SMOKE if args.smoke else {}
    config = proxy.ProxyConfig(data=args.data, cpus=args.cpus, seed=args.seed,
                               subset_seed=args.seed, **overrides)
    proxy.subsets(config)  # the data cache load, outside the candidates' timings
    rng = np.random.default_rng(args.seed)
    cells = [get_space(args.space).sample(rng) for _ in range(args.cells)]
    with open(args.child_out, "w") as out:
        for i, genotype in enumerate(cells):
            start = time.process_time()
            metrics = proxy.evaluate(genotype, config)
            metrics.update(cell=i, cpu_seconds=time.process_time() - start,
                           fixed_seconds=fixed_seconds(metrics, config.batch_size),
                           config=config.to_dict())
            out.write(json.dumps(metrics, default=float) + "\n")
            out.flush()
            print(f"  {metrics['backend']} cell {i}: val_accuracy {metrics['val_accuracy']:.3f}, "
                  f"fixed {metrics['fixed_seconds']:.1f} s, steady epoch "
                  f"{metrics['steady_epoch_seconds']:.1f} s", flush=True)


def fixed_seconds(m: dict, batch_size: int) -> float:
    """build + (first graph call - its steps at the steady rate) + evaluation."""
    per_step = m["steady_epoch_seconds"] / (m["train_size"] // batch_size)
    overhead = m["first_step_seconds"] - per_step * m["steps_per_execution"]
    return m["build_seconds"] + overhead + m["eval_seconds"]


def run_backend(backend: str, args, out_dir: Path) -> list[dict]:
    from nasplay.runtime.backends import worker_env

    child_out = out_dir / f"{backend}.jsonl"
    command = [sys.executable, "-m", "benchmarks.backend_benchmark", "--child",
               "--child-out", str(child_out),
               "--data", args.data, "--cells", str(args.cells), "--cpus", str(args.cpus),
               "--seed", str(args.seed), "--space", args.space, *(["--smoke"] * args.smoke)]
    env = {**os.environ, **worker_env(backend, cpus=args.cpus, gpus=False),
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=REPO)
    wall = time.perf_counter() - start
    rows = [json.loads(line) for line in child_out.read_text().splitlines()] \
        if child_out.exists() else []
    if done.returncode != 0:
        print(f"{backend}: the child process failed (exit {done.returncode})", flush=True)
    for row in rows:
        row["process_wall_seconds"] = wall
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| backend | cell | fixed cost (s) | first step (s) | steady epoch (s) | "
             "candidate (CPU s) | val_accuracy |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['cell']} | {r['fixed_seconds']:.1f} | "
                     f"{r['first_step_seconds']:.1f} | {r['steady_epoch_seconds']:.1f} | "
                     f"{r['cpu_seconds']:.0f} | {r['val_accuracy']:.3f} |")
    lines.append("")
    base = {r["cell"]: r for r in rows if r["backend"] == "tensorflow"}
    for backend in dict.fromkeys(r["backend"] for r in rows):
        if backend == "tensorflow" or not base:
            continue
        mine = [r for r in rows if r["backend"] == backend and r["cell"] in base]
        if mine:
            fixed = statistics.mean(r["fixed_seconds"] / base[r["cell"]]["fixed_seconds"]
                                    for r in mine)
            steady = statistics.mean(r["steady_epoch_seconds"]
                                     / base[r["cell"]]["steady_epoch_seconds"] for r in mine)
            lines.append(f"{backend} vs tensorflow (mean over cells): fixed cost x{fixed:.2f}, "
                         f"steady epoch x{steady:.2f}")
    return "\n".join(lines)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("keras", "tensorflow", "jax", "jaxlib", "torch", "numpy"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax", "torch"])
    parser.add_argument("--cells", type=int, default=2, help="random cells per backend")
    parser.add_argument("--space", default="nasnet")
    parser.add_argument("--data", default=SHARED_CIFAR)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help=f"tiny settings {SMOKE}")
    parser.add_argument("--out", default=None, help="JSON results file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0

    from nasplay.runtime.backends import check_backend
    from nasplay.errors import UserError

    rows, skipped = [], {}
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends:
            try:
                check_backend(backend)
            except UserError as e:
                skipped[backend] = str(e)
                print(f"skipping {e}", flush=True)
                continue
            print(f"{backend}: {args.cells} cells ...", flush=True)
            rows += run_backend(backend, args, Path(tmp))
    print(table(rows))
    out = Path(args.out or RESULTS / f"backend_benchmark{'_smoke' if args.smoke else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "loadavg_end": os.getloadavg()}, "versions": versions(),
              "settings": vars(args), "skipped": skipped, "candidates": rows,
              "wall_seconds": time.time() - started}
    out.write_text(json.dumps(record, indent=1, default=float) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

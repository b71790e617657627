"""Proxy evaluation benchmarks: per-candidate cost, fidelity, memory, throughput.

    python -m benchmarks.proxy_benchmark cost        # ours vs plain Keras fit/evaluate, split
    python -m benchmarks.proxy_benchmark fidelity    # Spearman: proxy vs 5x longer training
    python -m benchmarks.proxy_benchmark memory      # RSS over 30 consecutive candidates
    python -m benchmarks.proxy_benchmark throughput  # images/s and GFLOP/s of the default proxy
    python -m benchmarks.proxy_benchmark bn          # cells' BN momentum 0.99 vs 0.9, short runs

Each prints a table and appends JSON lines to ``--out`` (default
``benchmarks/results/proxy_<command>.jsonl``), one line per measurement, as it goes, so a long
run that is stopped keeps what it measured. Results are recorded by hand in BENCHMARKS.md.

Times are reported as wall seconds and as CPU seconds of the whole process (all threads): on a
shared 2-core machine the CPU figure is the steadier one. Data: ``--data`` (default the shared
CIFAR-10 JPEG copy).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.common import REPO, SHARED_CIFAR, add_smoke, append_jsonl
from benchmarks.common import loadavg as _loadavg  # the name the one-shot scripts import


def _clock():
    return time.perf_counter(), time.process_time()


def _since(start):
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _genotypes(n: int, seed: int, space: str = "nasnet"):
    from search_space import get_space

    rng = np.random.default_rng(seed)
    return [get_space(space).sample(rng) for _ in range(n)]


def _setup(args, **overrides):
    """Threads first, then the data and the proxy settings every command starts from."""
    from nasplay.runtime import devices
    from nasplay.scorers.proxy import training as proxy
    from nasplay.data import load_source

    devices.configure(cpus=args.cpus)
    config = proxy.ProxyConfig(data=args.data, train_size=args.train_size, val_size=args.val_size,
                               epochs=args.epochs, cpus=args.cpus, **overrides)
    return load_source(args.data), config


def _append(out: Path, record: dict) -> None:
    """``record`` as one more JSON line of ``out`` (a results file)."""
    append_jsonl(out, record)


def _emit(out: Path, record: dict) -> None:
    _append(out, record)
    print(json.dumps(record), flush=True)


# ---------------------------------------------------------------------------------------------
# (a) cost: ours vs plain Keras


def _plain_keras(genotype, config, sets, jit_compile):
    """What a user would write: build_network, compile(SGD, accuracy), fit, evaluate."""
    import keras

    from cells import build_network
    from nasplay.runtime import devices
    from nasplay.data import make_dataset

    devices.reset()
    keras.utils.set_random_seed(config.seed)
    train_ds = make_dataset(sets.x_train, sets.y_train, config.batch_size, training=True,
                            seed=config.seed)
    val_ds = make_dataset(sets.x_val, sets.y_val, 500, training=False)
    steps = len(sets.x_train) // config.batch_size
    times = {}
    start = _clock()
    model = build_network(genotype, num_classes=len(sets.classes), filters=config.filters,
                          cells_per_stage=config.cells_per_stage,
                          input_shape=sets.x_train.shape[1:], seed=config.seed)
    lr = keras.optimizers.schedules.CosineDecay(config.learning_rate, steps * config.epochs)
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=config.momentum, nesterov=True,
                                                 weight_decay=config.weight_decay),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=jit_compile)
    times["build"] = _since(start)

    marks = {}

    class Marks(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            marks.setdefault("first", _clock())

        def on_epoch_end(self, epoch, logs=None):
            marks.setdefault("epochs", []).append(_clock())

    start = _clock()
    model.fit(train_ds, epochs=config.epochs, verbose=0, callbacks=[Marks()])
    times["fit"] = _since(start)
    times["first_call"] = (marks["first"][0] - start[0], marks["first"][1] - start[1])
    times["epochs"] = _epoch_split(start, marks["first"], marks["epochs"], steps, 1)
    start = _clock()
    _, val_accuracy = model.evaluate(val_ds, verbose=0)
    times["eval"] = _since(start)
    return times, float(val_accuracy)


def _epoch_split(start, first, epoch_ends, steps, steps_in_first_call):
    """Steady epoch (wall, cpu) and first-step overhead (wall, cpu) from callback marks."""
    result = {}
    for i, name in enumerate(("wall", "cpu")):
        if len(epoch_ends) > 1:
            steady = statistics.median(b[i] - a[i] for a, b in zip(epoch_ends, epoch_ends[1:]))
        else:
            steady = (epoch_ends[0][i] - first[i]) / (steps - steps_in_first_call) * steps
        first_call = first[i] - start[i]
        overhead = first_call - steady / steps * steps_in_first_call
        result[name] = {"steady_epoch": steady, "first_step_overhead": overhead}
    return result


def _ours(genotype, config, data):
    import keras

    from nasplay.scorers.proxy import training as proxy

    marks = {}

    class Marks(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            marks["start"] = _clock()

        def on_train_batch_end(self, batch, logs=None):
            marks.setdefault("first", _clock())

        def on_epoch_end(self, epoch, logs=None):
            marks.setdefault("epochs", []).append(_clock())

        def on_train_end(self, logs=None):
            marks["end"] = _clock()

    start = _clock()
    _, metrics = proxy.train(genotype, config, data=data, callbacks=[Marks()])
    total = _since(start)
    steps = metrics["train_size"] // config.batch_size
    # CPU of the parts: before fit (subsets, pipeline, build, compile, prebuild), after (eval)
    end_cpu = start[1] + total[1]
    times = {"total": total,
             "build": (metrics["build_seconds"], marks["start"][1] - start[1]),
             "eval": (metrics["eval_seconds"], end_cpu - marks["end"][1]),
             "fit": (metrics["train_seconds"], marks["end"][1] - marks["start"][1]),
             "epochs": _epoch_split(marks["start"], marks["first"], marks["epochs"], steps,
                                    metrics["steps_per_execution"])}
    return times, metrics


def cost(args) -> None:
    from nasplay.scorers.proxy import training as proxy

    data, config = _setup(args)
    sets = proxy.subsets(config, data)
    genotypes = _genotypes(args.candidates + 1, args.seed)
    # warm-up candidate: imports, first tf.data use and first-ever trace are not per-candidate
    proxy.train(genotypes[0], config.replace(epochs=1, train_size=256, val_size=64), data=data)
    for i, genotype in enumerate(genotypes[1:]):
        order = ["ours", "plain"] if i % 2 == 0 else ["plain", "ours"]
        for who in order:
            load = _loadavg()
            if who == "ours":
                start = _clock()
                times, metrics = _ours(genotype, config, data)
                wall_total, cpu_total = _since(start)
                val = metrics["val_accuracy"]
                times["flops"], times["params"] = metrics["flops"], metrics["params"]
            else:
                start = _clock()
                times, val = _plain_keras(genotype, config, sets, jit_compile=False)
                wall_total, cpu_total = _since(start)
            _emit(args.out, {"candidate": i, "who": who, "wall_total": wall_total,
                             "cpu_total": cpu_total, "val_accuracy": val, "loadavg": load,
                             "times": times, "config": config.to_dict()})


# ---------------------------------------------------------------------------------------------
# (b) fidelity


def fidelity(args) -> None:
    from nasplay.scorers.proxy import training as proxy

    data, short = _setup(args)
    long = short.replace(train_size=args.long_train_size, epochs=args.long_epochs)
    ratio = (long.train_size * long.epochs) / (short.train_size * short.epochs)
    print(f"proxy {short.train_size}x{short.epochs} epochs vs {long.train_size}x{long.epochs} "
          f"({ratio:.1f}x the images), validation {short.val_size} images", flush=True)
    pairs = []
    for i, genotype in enumerate(_genotypes(args.candidates, args.seed)):
        if i < args.first:
            continue  # another process measures these (same cells: same seed)
        row = {"candidate": i, "hash": genotype.hash()[:12], "loadavg": _loadavg()}
        for name, config in (("proxy", short), ("long", long)):
            start = _clock()
            try:
                metrics = proxy.evaluate(genotype, config, data=data)
            except proxy.TrainingDiverged as e:
                metrics = {"val_accuracy": float("nan"), "error": str(e)}
            row[name] = metrics["val_accuracy"]
            row[f"{name}_wall"], row[f"{name}_cpu"] = _since(start)
            row["params"] = metrics.get("params")
        _emit(args.out, row)
        pairs.append((row["proxy"], row["long"]))
    _emit(args.out, {"summary": "settings", "proxy": short.to_dict(), "long": long.to_dict()})
    print(json.dumps(spearman([args.out])))


def spearman(paths) -> dict:
    """Spearman's rho between proxy and long scores of every candidate in fidelity JSONL files."""
    from scipy.stats import spearmanr

    rows = {}
    for path in paths:
        for line in Path(path).read_text().splitlines():
            row = json.loads(line)
            if "candidate" in row and not (math.isnan(row["proxy"]) or math.isnan(row["long"])):
                rows[row["candidate"]] = row
    proxy_scores = [rows[c]["proxy"] for c in sorted(rows)]
    long_scores = [rows[c]["long"] for c in sorted(rows)]
    rho = spearmanr(proxy_scores, long_scores).statistic if len(rows) > 2 else float("nan")
    return {"summary": "spearman", "rho": float(rho), "n": len(rows)}


# ---------------------------------------------------------------------------------------------
# (c) memory


def memory(args) -> None:
    from nasplay.scorers.proxy import training as proxy

    data, config = _setup(args, batch_size=32, filters=4, cells_per_stage=1)
    rss = []
    for i, genotype in enumerate(_genotypes(args.candidates, args.seed)):
        start = _clock()
        proxy.evaluate(genotype, config, data=data)
        rss.append(_rss_mb())
        _emit(args.out, {"candidate": i, "rss_mb": rss[-1], "wall": _since(start)[0]})
    _emit(args.out, {"summary": "rss", "first_mb": rss[0], "last_mb": rss[-1],
                     "growth_mb": rss[-1] - rss[0], "max_mb": max(rss), "n": len(rss),
                     "config": config.to_dict()})


# ---------------------------------------------------------------------------------------------
# (d) throughput


def throughput(args) -> None:
    from nasplay.scorers.proxy import training as proxy

    data, config = _setup(args)
    for i, genotype in enumerate(_genotypes(args.candidates, args.seed)):
        start = _clock()
        metrics = proxy.evaluate(genotype, config, data=data)
        wall, cpu = _since(start)
        images_per_s = metrics["train_size"] // config.batch_size * config.batch_size \
            / metrics["steady_epoch_seconds"]
        # training ~ 3x the forward pass (forward, input gradients, weight gradients);
        # 2 FLOPs per multiply-add
        gflops = images_per_s * metrics["flops"] * 3 * 2 / 1e9
        _emit(args.out, {"candidate": i, "flops": metrics["flops"], "params": metrics["params"],
                         "images_per_s": images_per_s, "train_gflops_per_s": gflops,
                         "steady_epoch_seconds": metrics["steady_epoch_seconds"],
                         "wall": wall, "cpu": cpu, "loadavg": _loadavg()})


# ---------------------------------------------------------------------------------------------
# batch-norm momentum: does a short proxy's BN converge?


def bn(args) -> None:
    """The same candidates with cells' BN momentum 0.99 (Keras's default) and 0.9 (ours)."""
    import cells.ops
    from nasplay.scorers.proxy import training as proxy

    data, config = _setup(args)
    for i, genotype in enumerate(_genotypes(args.candidates, args.seed)):
        for momentum in (0.99, 0.9):
            cells.ops.BN_MOMENTUM = momentum  # read by cells.ops.batch_norm() at build time
            metrics = proxy.evaluate(genotype, config, data=data)
            _emit(args.out, {"candidate": i, "bn_momentum": momentum,
                             "val_accuracy": metrics["val_accuracy"],
                             "train_accuracy": metrics["train_accuracy"],
                             "steps": metrics["train_size"] // config.batch_size * config.epochs})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["cost", "fidelity", "memory", "throughput", "bn"])
    parser.add_argument("--data", default=SHARED_CIFAR)
    parser.add_argument("--candidates", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random cells")
    parser.add_argument("--train-size", type=int, default=None)
    parser.add_argument("--val-size", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    # the fidelity reference: 2.5x the default proxy's images for 2x its epochs = 5x its training
    parser.add_argument("--long-train-size", type=int, default=5000)
    parser.add_argument("--long-epochs", type=int, default=6)
    parser.add_argument("--first", type=int, default=0,
                        help="fidelity: start at this candidate (split a run over processes)")
    parser.add_argument("--spearman", nargs="*", type=Path, default=None, metavar="JSONL",
                        help="fidelity: only print Spearman's rho of these result files")
    parser.add_argument("--cpus", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, default=None)
    add_smoke(parser, candidates=2, train_size=128, val_size=64, epochs=1, long_train_size=128,
              long_epochs=1)
    args = parser.parse_args(argv)
    defaults = {  # command: (candidates, train_size, val_size, epochs)
        "cost": (2, 2000, 500, 2),
        "fidelity": (12, 2000, 1000, 3),  # the default CPU proxy (ProxyConfig)
        "memory": (30, 128, 64, 1),
        "throughput": (2, 2000, 500, 2),
        "bn": (1, 2000, 500, 3),
    }[args.command]
    for name, value in zip(("candidates", "train_size", "val_size", "epochs"), defaults):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.out is None:
        args.out = REPO / "benchmarks" / "results" / f"proxy_{args.command}.jsonl"
    if args.spearman is not None:
        print(json.dumps(spearman(args.spearman or [args.out])))
        return 0
    {"cost": cost, "fidelity": fidelity, "memory": memory, "throughput": throughput, "bn": bn}[
        args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

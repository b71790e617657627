"""The zero-cost scores against NAS-Bench-201's ground truth, on the fixed 200-cell sample.

    python -m benchmarks.nb201_zero_cost measure --config 5x16      # N x C of the probed network
    python -m benchmarks.nb201_zero_cost measure --config 1x8 1x16 --batches noise32 real32 noise128 real128
    python -m benchmarks.nb201_zero_cost measure --naswot-only --config 1x8 --tag rep --batches \
        real32 real32s1 real32s2 real32s3 noise32 noise32s1 noise32s2 noise32s3
    python -m benchmarks.nb201_zero_cost table                      # the table, and the JSON
    python -m benchmarks.nb201_zero_cost amoebanet                  # the 48 amoebanet cells
    python -m benchmarks.nb201_zero_cost top        # the scorer's default on the top-1,000 sample
    python -m benchmarks.nb201_zero_cost measure table --smoke --data DIR --out /tmp/x   # tests

``--sample-seed S`` measures another random sample of cells (``nb201_truth.sample_cells(seed=S)``,
the configuration named ``NxC@sS``): a held-out check of what the fixed sample chose.

Commands run in the order given; ``--out DIR`` (default ``benchmarks/results``) is the folder of
the result files named below (read and written). ``--smoke``: 3 cells at 1x4, both batches.

``measure`` builds each cell's network once per configuration (``NxC``: ``cells_per_stage`` x
``filters``) and takes every score from it: NASWOT with the codes of the stem and cell outputs
("outputs", the zero-cost scorer's default) and of every ReLU ("relus", the paper's), each on the
batches ``--batches`` names: 32 or 128 images, noise or real CIFAR-10 (``--data``: the
training-split images ``nasplay.scorers.proxy.training.subsets`` picks, as ``--scorer zero-cost
--data``), standardized per channel; ``real32s1`` is another draw (subset seed 1); synflow
(``nasplay.scorers.synflow``: He-normal and standard-normal weights, on a float64 copy of the
network); the parameter count and the multiply-adds (``nasplay.scorers.proxy.flops``);
``live_params``, the parameters that can learn (``nasplay.scorers.live_size``: convolutions
reading a node that carries nothing of the image, or that no path to the output reads, left
out). One forward pass a batch gives both kinds of codes (hooks on the ReLUs and the cells); the first cell of every
configuration is checked against ``nasplay.scorers.zero_cost.naswot.evaluate``. Rows go to
``benchmarks/results/nb201_zero_cost_raw.jsonl`` as they come (a stopped run continues) with the CPU
seconds (``time.process_time``) of each part.

``table`` first adds ``live_params`` to rows measured before it was recorded (rewriting the raw
file with every other field as it was), then judges every score with ``nb201_truth.rank_stats`` against the table's validation
accuracy (12 epochs), adds rank-average combinations, prints one table (``TABLE_HEADER``) and
writes ``benchmarks/results/nb201_zero_cost.json`` (statistics and per-cell scores). A score of
``-inf`` (NASWOT's singular kernel, synflow's zero sum: no path reaches the classifier) ranks
below every finite one rather than being left out.

``amoebanet`` re-measures BENCHMARKS.md's amoebanet NASWOT figure (0.268): the 48 fidelity cells
of ``oneshot_benchmark.py fidelity``, scored by ``zero_cost.evaluate`` at the scorer's default
and variants, Spearman against the 5x-longer standalone training
(``oneshot_fidelity_reference_amoebanet.jsonl``), as that script computes it (scipy).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.common import REPO, RESULTS, SHARED_CIFAR, add_smoke
from benchmarks.nb201_truth import TABLE_HEADER, format_stats, rank_stats, sample_cells

RAW_NAME = "nb201_zero_cost_raw.jsonl"
OUT_NAME = "nb201_zero_cost.json"
AMOEBA_NAME = "nb201_zero_cost_amoebanet.json"
TOP_NAME = "nb201_zero_cost_top.json"


def _images(data: str, size: int, seed: int = 0) -> np.ndarray:
    from nasplay.scorers.proxy import training as proxy

    sets = proxy.subsets(proxy.ProxyConfig(data=data, train_size=size, val_size=1,
                                           subset_seed=seed))
    return sets.x_train


def _batches(data: str, names) -> dict:
    """The probe batches ``names`` names: ``noise32``, ``real128``, ... and repeats with another
    draw, ``real32s1`` (the images of subset seed 1; noise: of seed 1)."""
    from nasplay.scorers.zero_cost.naswot import ZeroCostConfig, probe_batch

    batches = {}
    for name in names:
        size, _, seed = name.lstrip("noisereal").partition("s")
        config = ZeroCostConfig(batch_size=int(size), seed=int(seed or 0))
        images = _images(data, int(size), int(seed or 0)) if name.startswith("real") else None
        batches[name] = probe_batch(config, images)
    return batches


def _probe(network, batch) -> dict:
    """Both NASWOT scores from one forward pass (kernels summed layer by layer)."""
    import keras

    from cells import Cell, EdgeCell, ResidualReduction
    from nasplay.runtime._internals import layer_calls
    from nasplay.scorers.zero_cost.naswot import log_det, naswot_kernel

    kernels = {"relus": 0.0, "outputs": 0.0}
    hooked = []
    for path, layer in layer_calls.walk(network, network.name):
        if isinstance(layer, keras.layers.ReLU):
            hooked.append((f"relus:{path}", layer))
        elif isinstance(layer, (Cell, EdgeCell, ResidualReduction)) or \
                layer.name in ("stem_bn", "head_bn"):
            hooked.append((f"outputs:{path}", layer))

    def record(path, layer, args, out):
        out = keras.ops.convert_to_numpy(out)
        kernels[path.split(":")[0]] += naswot_kernel(out.reshape(len(out), -1) > 0)

    with layer_calls.hooked_calls(hooked, record):
        network(batch, training=True)
    return {kind: log_det(kernel) for kind, kernel in kernels.items()}


def _timed(fn, *args):
    start = time.process_time()
    value = fn(*args)
    return value, time.process_time() - start


def _synflow(genotype, n: int, c: int) -> dict:
    from cells import build_network
    from nasplay.scorers.synflow import measure as synflow

    row = {}
    start = time.process_time()
    with synflow.float64_layers():
        network = build_network(genotype, filters=c, cells_per_stage=n)
    logits = synflow.logits_model(network)
    build = time.process_time() - start
    for init in synflow.INITS:
        start = time.process_time()
        weights = synflow.linearize(network, np.random.default_rng([0, 2]), init)
        total = synflow.synflow_sum(logits, weights, (32, 32, 3))
        row[f"synflow_{init}"] = math.log(total) if total > 0 else -math.inf
        row[f"synflow_{init}_cpu"] = build + time.process_time() - start
    return row


def _measure_cell(cell: dict, n: int, c: int, batches: dict, naswot_only: bool = False) -> dict:
    from cells import build_network
    from nasplay.scorers.proxy.flops import count_flops
    from nasplay.scorers.zero_cost.naswot import _reinitialize

    row = {"config": f"{n}x{c}", "index": cell["index"], "arch_str": cell["arch_str"]}
    start = time.process_time()
    network = build_network(cell["genotype"], filters=c, cells_per_stage=n)
    _reinitialize(network, np.random.default_rng([0, 0]))
    row["build_cpu"] = time.process_time() - start
    row["params"] = int(network.count_params())
    row["live_params"], row["live_cpu"] = _timed(_live_params, row, n, c)
    for name, batch in batches.items():
        scores, seconds = _timed(_probe, network, batch)
        for kind, value in scores.items():
            row[f"naswot_{kind}_{name}"] = value
        row[f"probe_{name}_cpu"] = seconds
    if not naswot_only:
        row["flops"], row["flops_cpu"] = _timed(count_flops, network)
        row.update(_synflow(cell["genotype"], n, c))
    return row


def _live_params(row: dict, n: int, c: int) -> int:
    """The parameters that can learn (``nasplay.scorers.live_size``) of a row's network."""
    from nasplay.scorers.live_size import live_params
    from search_space import parse_arch_str

    return live_params(parse_arch_str(row["arch_str"]), row["params"], filters=c,
                       cells_per_stage=n)


def _network_of(config: str) -> tuple[int, int]:
    """``(N, C)`` of a configuration's name: ``"1x16n128"`` (a tag after it) -> ``(1, 16)``."""
    import re

    n, c = re.match(r"(\d+)x(\d+)", config).groups()
    return int(n), int(c)


def _backfill_live(raw: Path) -> None:
    """Rows measured before ``live_params`` was recorded get it (their networks' settings are
    in the config's name), and the raw file is rewritten with them, every other field as it was."""
    rows = [json.loads(line) for line in raw.read_text().splitlines()]
    missing = [r for r in rows if "live_params" not in r]
    if not missing:
        return
    for row in missing:
        n, c = _network_of(row["config"])
        row["live_params"], row["live_cpu"] = _timed(_live_params, row, n, c)
    tmp = raw.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmp.replace(raw)
    print(f"live_params added to {len(missing)} earlier rows of {raw.name}", flush=True)


def _check_first(cell: dict, n: int, c: int, batches: dict, row: dict) -> None:
    """The hooks' scores equal the scorer's own (noise, 32 images, both kinds of codes)."""
    from nasplay.scorers.synflow import measure as synflow
    from nasplay.scorers.zero_cost import naswot as zero_cost

    for kind in zero_cost.CODES:
        config = zero_cost.ZeroCostConfig(batch_size=32, filters=c, cells_per_stage=n,
                                          codes=kind)  # the row's noise32 (the default is 128)
        expected = zero_cost.evaluate(cell["genotype"], config)["naswot"]
        assert math.isclose(expected, row[f"naswot_{kind}_noise32"], rel_tol=1e-9), \
            (kind, expected, row[f"naswot_{kind}_noise32"])
    expected = synflow.evaluate(cell["genotype"], synflow.SynflowConfig(filters=c,
                                                                        cells_per_stage=n))
    assert math.isclose(expected["synflow"], row["synflow_he"], rel_tol=1e-9)


def _done(path: Path) -> set:
    if not path.is_file():
        return set()
    return {(r["config"], r["index"]) for r in map(json.loads, path.read_text().splitlines())}


def measure(args) -> None:
    raw = args.out / RAW_NAME
    raw.parent.mkdir(parents=True, exist_ok=True)
    cells = sample_cells(seed=args.sample_seed)[:args.cells]
    batches = _batches(args.data, args.batches)
    for spec in args.config:
        n, c = map(int, spec.split("x"))
        spec += args.tag + (f"@s{args.sample_seed}" if args.sample_seed else "")
        done = _done(raw)
        first = True
        for i, cell in enumerate(cells):
            if (spec, cell["index"]) in done:
                continue
            row = {**_measure_cell(cell, n, c, batches, args.naswot_only), "config": spec}
            row["loadavg"] = os.getloadavg()[0]
            if first and not args.naswot_only:
                _check_first(cell, n, c, batches, row)
                first = False
            with raw.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{spec} [{i + 1}/{len(cells)}] naswot {row['naswot_outputs_noise32']:.2f} "
                  f"synflow {row.get('synflow_he', math.nan):.2f} ({row['build_cpu']:.1f} s "
                  f"build)", flush=True)


def _rows(raw: Path) -> dict:
    """``{config: {cell index: row}}`` of the raw file."""
    by_config = {}
    for line in raw.read_text().splitlines():
        row = json.loads(line)
        by_config.setdefault(row["config"], {})[row["index"]] = row
    return by_config


def _finite(values) -> np.ndarray:
    """``-inf`` (no path, singular kernel) below every finite value, so it ranks last."""
    x = np.asarray(values, np.float64)
    bad = ~np.isfinite(x)
    if bad.any():
        x[bad] = np.min(x[~bad]) - 1.0 if (~bad).any() else 0.0
    return x


def _rank_average(*columns) -> np.ndarray:
    from benchmarks.nb201_truth import average_ranks

    return np.mean([average_ranks(_finite(c)) for c in columns], axis=0)


def _scores(rows: list) -> dict:
    """``{score name: (per-cell values, CPU seconds a cell)}`` of one configuration's rows."""
    scores = {}
    build = np.mean([r["build_cpu"] for r in rows])
    for key in rows[0]:
        if key.startswith("naswot_") and all(key in r for r in rows):
            batch = key.rsplit("_", 1)[1]
            cost = build + np.mean([r[f"probe_{batch}_cpu"] for r in rows])
            scores[key] = ([r[key] for r in rows], cost)
    for key in [k for k in scores if k.endswith("32s1")]:  # repeats: the mean of the 4 draws
        base = key[:-2]
        draws = [base, *(f"{base}s{k}" for k in (1, 2, 3))]
        if all(d in scores for d in draws):
            values = np.mean([_finite(scores[d][0]) for d in draws], axis=0)
            cost = build + sum(scores[d][1] - build for d in draws)
            scores[f"{base} mean of 4 draws"] = (values, cost)
    for init in ("he", "normal"):
        if all(f"synflow_{init}" in r for r in rows):
            scores[f"synflow_{init}"] = ([r[f"synflow_{init}"] for r in rows],
                                         np.mean([r[f"synflow_{init}_cpu"] for r in rows]))
    scores["params"] = ([r["params"] for r in rows], build)
    if all("live_params" in r for r in rows):
        scores["live_params"] = ([r["live_params"] for r in rows],
                                 build + np.mean([r["live_cpu"] for r in rows]))
    if all("flops" in r for r in rows):
        scores["flops"] = ([r["flops"] for r in rows],
                           build + np.mean([r["flops_cpu"] for r in rows]))
    return scores


COMBINATIONS = (("naswot_outputs_noise32", "synflow_he"), ("naswot_relus_noise32", "synflow_he"),
                ("naswot_outputs_real32", "synflow_he"), ("naswot_relus_real32", "synflow_he"),
                ("naswot_outputs_noise32", "params"), ("naswot_relus_noise32", "params"),
                ("naswot_outputs_real32", "params"), ("synflow_he", "params"),
                ("naswot_outputs_real32", "naswot_relus_real32"),
                ("naswot_outputs_real32", "synflow_he", "params"),
                ("naswot_outputs_noise32", "live_params"), ("naswot_outputs_real32", "live_params"),
                ("naswot_outputs_noise128", "live_params"), ("naswot_outputs_noise128", "params"),
                ("naswot_outputs_noise128", "synflow_he"),
                ("naswot_outputs_real128", "live_params"), ("naswot_relus_real32", "live_params"),
                ("synflow_he", "live_params"))


def _z_sum(*columns) -> np.ndarray:
    """A per-candidate combination: the sum of each score z-scored against *fixed* reference
    statistics (mean, std), here those of the other half of the sample (cells 0-99 scored with
    the statistics of 100-199 and the reverse), so no cell sets its own scale."""
    total = 0.0
    for column in columns:
        raw, x = np.asarray(column, float), _finite(column)
        if np.all(raw > 0) and raw.max() / raw.min() > 20:
            x = np.log(x)  # params, flops (spanning decades): z-scored in log
        half = len(x) // 2
        z = np.empty_like(x)
        for mine, ref in ((slice(0, half), slice(half, None)), (slice(half, None), slice(0, half))):
            z[mine] = (x[mine] - x[ref].mean()) / (x[ref].std() + 1e-12)
        total = total + z
    return total


def _combine(scores: dict) -> dict:
    combined = {}
    for parts in COMBINATIONS:
        if all(p in scores for p in parts):
            cost = sum(scores[p][1] for p in parts)
            columns = [scores[p][0] for p in parts]
            combined["rank avg " + " + ".join(parts)] = (_rank_average(*columns), cost)
            combined["z-sum " + " + ".join(parts)] = (_z_sum(*columns), cost)
    return combined


def _sample_of(config: str) -> int:
    """The sample seed of a configuration's name (``"1x8@s1"``: 1; no ``@s``: the fixed 0)."""
    return int(config.rsplit("@s", 1)[1]) if "@s" in config else 0


def table(args) -> None:
    _backfill_live(args.out / RAW_NAME)
    result = {"truth": "val_accuracy (NAS-Bench-201 CIFAR-10, 12 epochs)", "configs": {}}
    print(TABLE_HEADER)
    samples = {}
    for config, by_index in sorted(_rows(args.out / RAW_NAME).items()):
        seed = _sample_of(config)
        if seed not in samples:
            samples[seed] = {c["index"]: c for c in sample_cells(seed=seed)}
        cells = samples[seed]
        indices = [c for c in cells if c in by_index]
        rows = [by_index[i] for i in indices]
        truth = [cells[i]["val_accuracy"] for i in indices]
        scores = _scores(rows)
        scores.update(_combine(scores))
        stats = {}
        for name, (values, cost) in scores.items():
            stats[name] = {**rank_stats(_finite(values), truth), "cpu_seconds": float(cost)}
            print(format_stats(f"{config} {name}", stats[name], cost))
        result["configs"][config] = {
            "indices": indices, "stats": stats,
            "scores": {k: [float(v) for v in vals] for k, (vals, _) in scores.items()
                       if not k.startswith(("rank avg", "z-sum"))}}
    result["truth_values"] = {str(i): c["val_accuracy"] for cells in samples.values()
                              for i, c in cells.items()}
    out = args.out / OUT_NAME
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"-> {out.relative_to(REPO) if out.resolve().is_relative_to(REPO) else out}")


AMOEBA_VARIANTS = ("outputs:32:noise", "relus:32:noise", "outputs:32:real", "relus:32:real",
                   "relus:128:real", "outputs:128:real")


def _amoeba_score(genotype, variant: str, images: dict) -> float:
    from nasplay.scorers.synflow import measure as synflow
    from nasplay.scorers.zero_cost import naswot as zero_cost

    if variant.startswith("synflow"):
        filters = int(variant.split(":")[1])
        return synflow.synflow_score(genotype, synflow.SynflowConfig(filters=filters))
    if variant == "params":   # of the zero-cost scorer's probed network (N=1, C=8)
        return zero_cost.evaluate(genotype, zero_cost.ZeroCostConfig(batch_size=2))["params"]
    if " + " in variant:      # a rank average of variants measured before it
        raise ValueError(f"{variant!r} is combined in amoebanet(), not scored")
    codes, batch, source = variant.split(":")
    config = zero_cost.ZeroCostConfig(codes=codes, batch_size=int(batch))
    return zero_cost.naswot_score(genotype, config, images.get(int(batch)) if
                                  source == "real" else None)


def amoebanet(args) -> None:
    """BENCHMARKS.md's NASWOT figure on the 48 amoebanet cells, and variants of it."""
    from benchmarks.oneshot_benchmark import _fidelity_cells, _rank_stats

    genotypes, reference, indices = _fidelity_cells(RESULTS, "amoebanet", 48)
    long = [reference[i]["long"] for i in indices]
    proxy = [reference[i]["proxy"] for i in indices]
    images = {size: _images(args.data, size) for size in (32, 128)}
    amoeba_out = args.out / AMOEBA_NAME
    result = json.loads(amoeba_out.read_text()) if amoeba_out.is_file() else {}
    result.setdefault("cells", indices)
    variants = args.variants or [*AMOEBA_VARIANTS, "synflow:8", "synflow:16", "params",
                                 "outputs:128:noise + params"]
    print("| score | Spearman vs long | Kendall vs long | Spearman vs proxy | 95% CI vs long | "
          "CPU s/cell |\n|---|---|---|---|---|---|")
    for variant in variants:
        start = time.process_time()
        if " + " in variant:   # "outputs:128:noise + params": the parts' rank average
            values = list(_rank_average(*[result[part]["scores"]
                                          for part in variant.split(" + ")]))
            cost = sum(result[part]["cpu_seconds"] for part in variant.split(" + "))
        else:
            values = [_amoeba_score(genotypes[i], variant, images) for i in indices]
            cost = (time.process_time() - start) / len(indices)
        stats = _rank_stats(values, long)
        boot = rank_stats(_finite(values), long, draws=1000)
        result[variant] = {"scores": values, "vs_long": stats, "cpu_seconds": cost,
                           "vs_proxy": _rank_stats(values, proxy),
                           "spearman_ci": boot["spearman_ci"]}
        amoeba_out.write_text(json.dumps(result, indent=1) + "\n")
        lo, hi = boot["spearman_ci"]
        print(f"| {variant} | {stats['spearman']:.3f} | {stats['kendall']:.3f} | "
              f"{result[variant]['vs_proxy']['spearman']:.3f} | [{lo:.2f}, {hi:.2f}] | "
              f"{cost:.2f} |", flush=True)


def top(args) -> None:
    """The zero-cost scorer at its defaults (N=1, C=8, 128 real images, stem and cell codes)
    and the parameter count on the top-1,000 sample of ``nb201_proxy.py`` (ranks 1, 26, ...):
    can they order cells within 1.6 points of each other?"""
    from benchmarks.nb201_proxy import top_cells

    from nasplay.scorers.zero_cost.naswot import ZeroCostConfig, evaluate
    from search_space import Genotype

    cells = top_cells()
    images = _images(args.data, 128)
    rows = [evaluate(Genotype.from_dict(c["genotype"]), ZeroCostConfig(), images) for c in cells]
    truth = [c["val_accuracy"] for c in cells]
    result = {"cells": [c["index"] for c in cells], "stats": {},
              "scores": {name: [r[name] for r in rows] for name in ("naswot", "params")}}
    print(TABLE_HEADER)
    for name in ("naswot", "params"):
        stats = rank_stats([r[name] for r in rows], truth)
        result["stats"][name] = stats
        print(format_stats(f"{name} (top 1,000)", stats))
    (args.out / TOP_NAME).write_text(json.dumps(result, indent=1) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="+", choices=["measure", "table", "amoebanet", "top"],
                        help="one or more, run in this order")
    parser.add_argument("--config", nargs="+", default=["1x8"], help="NxC probed networks")
    parser.add_argument("--cells", type=int, default=200)
    parser.add_argument("--sample-seed", type=int, default=0,
                        help="measure: another random sample of cells (the configuration is "
                             "named NxC@sS); 0 is the fixed sample")
    parser.add_argument("--naswot-only", action="store_true",
                        help="measure: NASWOT only (no synflow, no multiply-adds)")
    parser.add_argument("--tag", default="", help="measure: a suffix of the configuration's name")
    parser.add_argument("--batches", nargs="+", default=["noise32", "real32"],
                        help="probe batches: noise|real and a size (128: ~20x the kernel's cost)")
    parser.add_argument("--data", default=SHARED_CIFAR)
    parser.add_argument("--variants", nargs="+", default=None,
                        help="amoebanet: zero-cost settings to try, as codes:batch:noise|real")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="the folder of the raw rows and the tables (read and written)")
    add_smoke(parser, cells=3, config=["1x4"])
    args = parser.parse_args(argv)
    if args.smoke and args.out.resolve() == RESULTS.resolve():
        parser.error("--smoke: give --out a folder other than benchmarks/results")
    for command in args.command:
        {"measure": measure, "table": table, "amoebanet": amoebanet, "top": top}[command](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

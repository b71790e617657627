"""One-shot (weight-sharing) benchmarks: step cost, throughput and memory, fidelity, searchers.

    python -m benchmarks.oneshot_benchmark step        # supernet step vs the path's own network
    python -m benchmarks.oneshot_benchmark throughput  # train, score 1,000: per hour, RSS
    python -m benchmarks.oneshot_benchmark fidelity    # Spearman/Kendall vs proxy and 5x training
    python -m benchmarks.oneshot_benchmark searchers   # random/evolution/controller, 3 seeds x 500

Every command takes the one-shot settings as flags (defaults: ``OneShotConfig``'s, data the
shared CIFAR-10 copy); the supernet lives in ``--supernet DIR`` (default
``runs/supernet-<space>``, which git ignores), trained there by the first command that needs it and
reused by the others (``train_supernet`` resumes or loads). Each command prints a table and
writes ``benchmarks/results/oneshot_<command>*.json[l]`` as it goes; ``fidelity`` and
``searchers`` skip what their result files already hold, so a stopped run continues.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.common import REPO, RESULTS, SHARED_CIFAR, add_smoke, write_json
from benchmarks.proxy_benchmark import (_append, _clock, _emit, _genotypes, _loadavg, _rss_mb,
                                        _since)

PROXY_PER_HOUR = 60  # the standalone proxy's candidates per hour here (README, BENCHMARKS.md)
# the smoke runs' supernets: three of amoebanet's ops (a trace of seconds, not minutes), F=4, N=0
SMOKE_OPS = ["identity", "avg_pool_3x3", "sep_conv_3x3"]
SMOKE_SIZES = dict(train_size=128, val_size=64, batch_size=32, filters=4, cells_per_stage=0)


def _config(args):
    from nasplay.scorers.oneshot.supernet import OneShotConfig

    fields = ("train_size", "val_size", "epochs", "batch_size", "filters", "cells_per_stage",
              "sampler", "recalibration_batches", "finetune_steps", "finetune_learning_rate",
              "learning_rate")
    given = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
    return OneShotConfig(data=args.data, cpus=args.cpus, seed=args.supernet_seed,
                         affine_ops=args.affine_ops, loose_mean=args.loose_mean,
                         gpus=args.gpus, **given).check()


def _supernet_dir(args) -> Path:
    return args.supernet or REPO / "runs" / f"supernet-{args.space}"


def _trained_scorer(args, config):
    """Train (or resume, or load) the supernet, then the process's scorer; training seconds."""
    from nasplay.scorers.oneshot.supernet import cached_scorer, train_supernet
    from nasplay.scorers.oneshot.checkpoint import read_meta

    start = time.perf_counter()
    train_supernet(args.space, config, _supernet_dir(args), verbose=args.verbose)
    wall = time.perf_counter() - start
    recorded = read_meta(_supernet_dir(args)).get("train_seconds", wall)
    return cached_scorer(_supernet_dir(args), config, args.space), wall, recorded


def _table(header, rows):
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for row in rows:
        print(" | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row))


# ---------------------------------------------------------------------------------------------
# (a) step cost: the supernet's training step against the chosen path's standalone network


class _Standalone:
    """A standalone network behind the supernet's step interface (``net([x, arch])``,
    ``update_groups``), so the engine's training step runs it with the same loss, SGD and
    bookkeeping as the supernet; its one-entry architecture is ignored."""

    arch_length = 1

    def __init__(self, model):
        self.model, self.image_shape = model, tuple(model.input_shape[1:])
        self.trainable_variables = model.trainable_variables

    def __call__(self, inputs, training=None, bn_momentum=None):
        return self.model(inputs[0], training=training)

    def update_groups(self, arch):
        return [(None, [(v, None) for v in self.trainable_variables])]

    def _flatten_layers(self, include_self=True, recursive=True):
        """The network's layers: on TensorFlow the engine fuses their batch norms as it does
        the supernet's (called as Keras's ``Layer._flatten_layers``)."""
        return self.model._flatten_layers(include_self=include_self, recursive=recursive)


class _KerasNormsStandalone(_Standalone):
    """The same, its layers hidden from the engine, so Keras runs its batch norms
    (``--standalone-keras-norms``)."""

    def _flatten_layers(self, include_self=True, recursive=True):
        return []


def _standalone_step(model, batch_size, keras_norms=False):
    """The standalone network's step with the supernet's arithmetic (same loss, same SGD)."""
    from nasplay.scorers.oneshot.train import engine

    net = (_KerasNormsStandalone if keras_norms else _Standalone)(model)
    optimizer = engine().MaskedSGD(net.trainable_variables, 0.9, 3e-4)
    train_step, _ = engine().compile_steps(net, optimizer, batch_size)
    arch = np.zeros(1, np.int32)
    return lambda x, y: train_step(x, y, arch)


def _paired_costs(first, second, repeats):
    """Wall and CPU seconds of ``first`` and ``second`` called alternately ``repeats`` times
    each (the order flipped every round), so that a drift of the machine's speed falls on both
    alike: the ratio of each round's pair is measured under the same conditions."""
    walls = {0: [], 1: []}
    cpus = {0: [], 1: []}
    for r in range(repeats):
        for which in ((0, 1) if r % 2 == 0 else (1, 0)):
            start = _clock()
            (first if which == 0 else second)()
            wall, cpu = _since(start)
            walls[which].append(wall)
            cpus[which].append(cpu)
    return walls[0], cpus[0], walls[1], cpus[1]


def _keep_conditionals_functional() -> None:
    """An experiment (TensorFlow only): trace every ``tf.cond``/``tf.switch_case`` as a functional
    If/Case op that runs only the taken branch's function, instead of TensorFlow's default of
    lowering it to Switch/Merge ops whose untaken side still passes dead tensors through every
    node. A private switch of TensorFlow's, read when a conditional is traced."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise SystemExit("--functional-conditionals: TensorFlow only")
    from tensorflow.python.ops import control_flow_util_v2

    control_flow_util_v2._DISABLE_LOWER_USING_SWITCH_MERGE = True


def step(args) -> None:
    import keras

    from cells.supernet import SuperNet
    from nasplay.runtime import devices
    from nasplay.scorers.proxy import training as proxy
    from nasplay.scorers.oneshot.train import engine
    from nasplay.data.pipeline import normalize
    from search_space import get_space

    config = _config(args)
    devices.configure(config.cpus)
    if args.functional_conditionals:
        _keep_conditionals_functional()
    sets = proxy.subsets(proxy.ProxyConfig(data=config.data, train_size=config.train_size,
                                           val_size=config.val_size))
    x = normalize(sets.x_train[:config.batch_size])
    y = sets.y_train[:config.batch_size].astype(np.int32)
    space = get_space(args.space)
    keras.utils.set_random_seed(0)
    supernet = SuperNet(space, num_classes=len(sets.classes), filters=config.filters,
                        cells_per_stage=config.cells_per_stage, input_shape=x.shape[1:],
                        affine_ops=config.affine_ops)
    optimizer = engine().MaskedSGD(supernet.trainable_variables, config.momentum,
                                   config.weight_decay)
    train_step, _ = engine().compile_steps(supernet, optimizer, config.batch_size,
                                           config.batch_size)
    genotypes = _genotypes(args.candidates, args.seed, args.space)
    start = _clock()
    train_step(x, y, supernet.encode(genotypes[0]))
    first_wall, first_cpu = _since(start)
    out = args.results / "oneshot_step.jsonl"
    rows = []
    for i, genotype in enumerate(genotypes):
        arch = supernet.encode(genotype)
        standalone = _standalone_step(supernet.extract(genotype), config.batch_size,
                                      keras_norms=args.standalone_keras_norms)
        standalone(x, y)  # trace
        train_step(x, y, arch)
        own, own_cpu, sup, sup_cpu = _paired_costs(lambda: standalone(x, y),
                                                   lambda: train_step(x, y, arch), args.steps)
        own_wall, super_wall = float(np.median(own)), float(np.median(sup))
        row = {"candidate": i, "hash": genotype.hash()[:12], "backend": keras.backend.backend(),
               "params": supernet.path_params(genotype), "standalone_wall": own_wall,
               "supernet_wall": super_wall, "standalone_cpu": float(np.median(own_cpu)),
               "supernet_cpu": float(np.median(sup_cpu)),
               "ratio_wall": super_wall / own_wall,
               "ratio_cpu": float(np.median(sup_cpu) / np.median(own_cpu)),
               "paired_ratio_wall": float(np.median(np.asarray(sup) / np.asarray(own))),
               "loadavg": _loadavg()}
        if args.functional_conditionals:
            row["conditionals"] = "functional"
        row["standalone_norms"] = "keras" if args.standalone_keras_norms else "engine"
        _emit(out, row)
        rows.append(row)
    summary = {"summary": "step", "space": args.space, "backend": keras.backend.backend(),
               "config": config.to_dict(),
               "conditionals": "functional" if args.functional_conditionals else "lowered",
               "standalone_norms": "keras" if args.standalone_keras_norms else "engine",
               "first_step_wall": first_wall, "first_step_cpu": first_cpu,
               "median_ratio_wall": float(np.median([r["ratio_wall"] for r in rows])),
               "median_paired_ratio_wall": float(np.median([r["paired_ratio_wall"]
                                                            for r in rows])),
               "median_ratio_cpu": float(np.median([r["ratio_cpu"] for r in rows]))}
    _emit(out, summary)
    _table(["cell", "params", "standalone ms", "supernet ms", "ratio (wall)", "ratio (CPU)",
            "median of paired ratios"],
           [(r["hash"], r["params"], 1e3 * r["standalone_wall"], 1e3 * r["supernet_wall"],
             r["ratio_wall"], r["ratio_cpu"], r["paired_ratio_wall"]) for r in rows])
    print(f"median over cells: {summary['median_ratio_wall']:.2f}x wall, "
          f"{summary['median_ratio_cpu']:.2f}x CPU, "
          f"{summary['median_paired_ratio_wall']:.2f}x paired (affine_ops={config.affine_ops}, "
          f"{summary['backend']}); first step {first_wall:.1f} s")


# ---------------------------------------------------------------------------------------------
# (b) throughput and memory: train once, score many


def throughput(args) -> None:
    from search_space import get_space

    config = _config(args)
    scorer, train_wall, recorded = _trained_scorer(args, config)
    space = get_space(args.space)
    rng = np.random.default_rng(args.seed)
    out = args.results / "oneshot_throughput.jsonl"
    start, seconds, rss = time.perf_counter(), [], []
    for i in range(args.candidates):
        metrics = scorer.score(space.sample(rng))
        seconds.append(metrics["score_seconds"])
        if i == 0 or (i + 1) % 50 == 0 or i + 1 == args.candidates:
            rss.append((i + 1, _rss_mb()))
            _emit(out, {"candidate": i + 1, "rss_mb": rss[-1][1], "seconds": seconds[-1],
                        "elapsed": time.perf_counter() - start, "loadavg": _loadavg()})
    score_wall = time.perf_counter() - start
    reused = train_wall < 0.5 * recorded  # a trained supernet was loaded: count its training
    training = recorded if reused else train_wall
    total = training + score_wall
    summary = {"summary": "throughput", "space": args.space, "config": config.to_dict(),
               "candidates": args.candidates, "train_seconds": training, "reused": reused,
               "score_seconds_total": score_wall, "first_score_seconds": seconds[0],
               "median_score_seconds": float(np.median(seconds)),
               "per_hour": args.candidates / total * 3600,
               "per_hour_scoring_only": args.candidates / score_wall * 3600,
               "vs_proxy": args.candidates / total * 3600 / PROXY_PER_HOUR,
               "rss_after_first_mb": rss[0][1], "rss_last_mb": rss[-1][1],
               "rss_growth_mb": rss[-1][1] - rss[0][1]}
    _emit(out, summary)
    _table(["candidates", "train s", "score s", "per hour", "x proxy", "RSS growth MB"],
           [(args.candidates, training, score_wall, summary["per_hour"], summary["vs_proxy"],
             summary["rss_growth_mb"])])


# ---------------------------------------------------------------------------------------------
# (c) fidelity: one-shot scores against the proxy and 5x longer training of the same cells


def _read_rows(path: Path, key: str = "candidate") -> dict:
    rows = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if key in row:
                rows[row[key]] = row
    return rows


def _reference(args, genotypes, path: Path) -> dict:
    """Proxy and long scores of each cell (BENCHMARKS.md's fidelity settings), resumable."""
    from nasplay.runtime import devices
    from nasplay.scorers.proxy import training as proxy
    from nasplay.data import load_source

    done = _read_rows(path)
    todo = [i for i in range(args.first, min(args.last or len(genotypes), len(genotypes)))
            if i not in done]
    if todo:
        devices.configure(cpus=args.cpus)
        data = load_source(args.data)
        short = proxy.ProxyConfig(data=args.data, cpus=args.cpus, train_size=args.proxy_train_size,
                                  val_size=args.proxy_val_size, epochs=args.proxy_epochs,
                                  seed=args.reference_seed)
        long = short.replace(train_size=args.long_train_size, epochs=args.long_epochs)
        for i in todo:
            row = {"candidate": i, "hash": genotypes[i].hash()[:12], "loadavg": _loadavg()}
            for name, setting in (("proxy", short), ("long", long)):
                start = _clock()
                try:
                    metrics = proxy.evaluate(genotypes[i], setting, data=data)
                except proxy.TrainingDiverged as e:
                    metrics = {"val_accuracy": float("nan"), "error": str(e)}
                row[name] = metrics["val_accuracy"]
                row[f"{name}_wall"], row[f"{name}_cpu"] = _since(start)
                row["params"] = metrics.get("params")
            _emit(path, row)
            done[i] = row
    return done


def _reference_path(results: Path, space: str, seed: int = 0) -> Path:
    """The standalone references of seed 0 (the fidelity tables') or a repeat with another
    seed (other initial weights and data order; the same images)."""
    return results / f"oneshot_fidelity_reference_{space}{f'_seed{seed}' if seed else ''}.jsonl"


def _repeatability(args, repeat: dict) -> None:
    """How well the standalone trainings agree with themselves: seed 0's proxy and long scores
    against the repeat's, on the cells both have (the ceiling any cheaper score is read
    against)."""
    first = _read_rows(_reference_path(args.results, args.space))
    cells = sorted(i for i in repeat if i in first)
    if len(cells) < 3:
        print(f"repeatability: {len(cells)} cells in both seeds' references; need 3")
        return
    rows = []
    for a, b in (("proxy", "proxy"), ("long", "long"), ("proxy", "long")):
        x, y = [first[i][a] for i in cells], [repeat[i][b] for i in cells]
        stats = _rank_stats(x, y)
        rows.append((f"{a} (seed 0) vs {b} (seed {args.reference_seed})", len(cells),
                     stats["spearman"], stats["kendall"], _top_overlap(x, y)))
    _table(["scores", "cells", "Spearman", "Kendall", "top-5 overlap"], rows)


def _fidelity_cells(results: Path, space: str, count: int | None = 24):
    """``(genotypes, reference, cells)``: the first ``count`` fidelity cells (None: as many as
    have a reference), their cached standalone references (``fidelity --reference-only``) and
    the indices that have one."""
    reference = _read_rows(_reference_path(results, space))
    genotypes = _genotypes(count if count is not None else max(reference, default=-1) + 1, 0,
                           space)
    return genotypes, reference, sorted(i for i in reference if i < len(genotypes))


class _PathTraining:
    """A trained supernet's scorer (the default ``OneShotConfig``), its training subset and the
    trainer's traced masked-SGD step on it: what the fine-tuning control and the few-shot
    experiment train paths with before scoring them."""

    def __init__(self, supernet_dir, data: str, space: str):
        from nasplay.scorers.proxy import training as proxy
        from nasplay.scorers.oneshot.supernet import OneShotConfig, cached_scorer
        from nasplay.scorers.oneshot.train import engine

        self.config = config = OneShotConfig(data=data, cpus=os.cpu_count()).check()
        self.scorer = cached_scorer(supernet_dir, config, space)
        self.supernet = self.scorer.supernet
        self.sets = proxy.subsets(proxy.ProxyConfig(data=config.data,
                                                    train_size=config.train_size,
                                                    val_size=config.val_size,
                                                    subset_seed=config.subset_seed))
        self.optimizer = engine().MaskedSGD(self.supernet.trainable_variables, config.momentum,
                                            config.weight_decay)
        self.train_step, _ = engine().compile_steps(self.supernet, self.optimizer,
                                                    config.batch_size)

    def weights(self) -> list:
        return [v.numpy() for v in self.supernet.variables]

    def reset(self, weights) -> None:
        """Every variable from ``weights`` (as :meth:`weights` gives them), momentum zeroed."""
        for variable, value in zip(self.supernet.variables, weights):
            variable.assign(value)
        self.optimizer.load_slots([np.zeros(s.shape, np.float32) for s in self.optimizer.slots])

    def step(self, rng, arch, learning_rate: float) -> float:
        """One step on path ``arch`` with a random batch drawn from ``rng``; its loss."""
        from nasplay.data.pipeline import normalize

        self.optimizer.learning_rate.assign(learning_rate)
        idx = rng.choice(len(self.sets.x_train), self.config.batch_size, replace=False)
        loss, _ = self.train_step(normalize(self.sets.x_train[idx]),
                                  self.sets.y_train[idx].astype(np.int32), arch)
        return float(loss)


def _rank_stats(a, b) -> dict:
    from scipy.stats import kendalltau, spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = np.isfinite(a) & np.isfinite(b)
    if keep.sum() < 3:
        return {"spearman": float("nan"), "kendall": float("nan"), "n": int(keep.sum())}
    return {"spearman": float(spearmanr(a[keep], b[keep]).statistic),
            "kendall": float(kendalltau(a[keep], b[keep]).statistic), "n": int(keep.sum())}


def _top_overlap(a, b, k: int = 5) -> int:
    return len(set(np.argsort(-np.asarray(a))[:k]) & set(np.argsort(-np.asarray(b))[:k]))


def _widen_validation(scorer, config, images: int) -> None:
    """Score on ``images`` held-out images instead of the config's ``val_size``: its validation
    images plus training-split images that follow the supernet's training subset in
    ``stratified_split``'s per-class order, so none of them was trained on (a benchmark's
    question: does a less noisy score rank better? The scorer itself keeps ``val_size``)."""
    from nasplay.data import load_source, stratified_split
    from nasplay.data.pipeline import normalize

    if images <= config.val_size:
        return
    source = load_source(config.data, cache_dir=config.cache_dir)
    trained, val = stratified_split(source.y, config.train_size, config.val_size,
                                    config.subset_seed)
    wider, _ = stratified_split(source.y, config.train_size + images - config.val_size,
                                config.val_size, config.subset_seed)
    extra = np.setdiff1d(wider, trained)
    held_out = np.sort(np.concatenate([val, extra]))
    assert not np.intersect1d(held_out, trained).size  # never trained on
    scorer.x_val = normalize(source.x[held_out])
    scorer.y_val = source.y[held_out].astype(np.int32)


def fidelity(args) -> None:
    import keras

    from nasplay.scorers.zero_cost import naswot as zero_cost
    from nasplay.scorers.oneshot.supernet import OneShotConfig

    genotypes = _genotypes(args.candidates, args.seed, args.space)
    reference = _reference(args, genotypes, _reference_path(args.results, args.space,
                                                            args.reference_seed))
    if args.reference_seed:
        _repeatability(args, reference)
    if args.reference_only or args.reference_seed:
        return
    config = _config(args)
    scorer, _, _ = _trained_scorer(args, config)
    if args.score_images:
        _widen_validation(scorer, config, args.score_images)
    cells = sorted(i for i in reference if i < len(genotypes))
    oneshot = [scorer.score(genotypes[i]) for i in cells]
    scores = {
        "oneshot": [m["oneshot_accuracy"] for m in oneshot],
        "oneshot_neg_loss": [-m["oneshot_loss"] for m in oneshot],  # lower loss ranks higher
        **({"oneshot_neg_finetune_loss": [-m["oneshot_finetune_loss"] for m in oneshot]}
           if config.finetune_steps else {}),  # the fine-tuning's training-speed estimate
        "naswot": [zero_cost.evaluate(genotypes[i])["naswot"] for i in cells],
        "params": [float(reference[i]["params"]) for i in cells],
        "proxy": [reference[i]["proxy"] for i in cells],
    }
    long = [reference[i]["long"] for i in cells]
    table = {name: {"vs_long": _rank_stats(s, long), "vs_proxy": _rank_stats(s, scores["proxy"]),
                    "top5_overlap_long": _top_overlap(s, long)} for name, s in scores.items()}
    seconds = float(np.median([m["score_seconds"] for m in oneshot[1:]]))  # the first traces
    result = {"space": args.space, "config": config.to_dict(), "cells": cells,
              "oneshot_median_score_seconds": seconds,
              "hashes": [genotypes[i].hash()[:12] for i in cells], "long": long, **scores,
              "stats": table}
    result["score_images"] = len(scorer.y_val)
    result["backend"] = keras.backend.backend()
    variant = "" if config.affine_ops else "_affinefree"
    variant += "_loosemean" if scorer.supernet.loose_mean else ""
    variant += f"_seed{config.seed}" if config.seed else ""
    variant += "" if config.learning_rate == OneShotConfig.learning_rate else \
        f"_lr{config.learning_rate:g}"
    variant += "" if result["backend"] == "tensorflow" else f"_{result['backend']}"
    variant += f"_finetune{config.finetune_steps}" if config.finetune_steps else ""
    variant += f"_val{len(scorer.y_val)}" if args.score_images else ""
    variant += f"_{len(cells)}cells" if len(cells) != 24 else ""  # 24: the first measurements
    variant += f"_{args.tag}" if args.tag else ""
    path = args.results / f"oneshot_fidelity_{args.space}{variant}.json"
    write_json(path, result)
    _table(["score", "Spearman vs long", "Kendall vs long", "Spearman vs proxy",
            "Kendall vs proxy", "top-5 overlap (long)"],
           [(name, t["vs_long"]["spearman"], t["vs_long"]["kendall"], t["vs_proxy"]["spearman"],
             t["vs_proxy"]["kendall"], t["top5_overlap_long"]) for name, t in table.items()])
    print(f"one-shot: median {seconds:.2f} s a candidate (finetune_steps={config.finetune_steps})")


# ---------------------------------------------------------------------------------------------
# (d) searchers on real CIFAR-10 through the supernet


def _searcher(name, space, seed, trials):
    from searchers import make_searcher
    from searchers.evolution import RegularizedEvolution

    if name == "evolution":
        return RegularizedEvolution.for_budget(space, trials, seed=seed)
    return make_searcher(name, space, seed=seed, max_trials=trials)


def _search(name, seed, args, scorer, space, memo) -> dict:
    """One in-process ask/tell run; scores memoized by genotype (they are deterministic)."""
    searcher = _searcher(name, space, seed, args.trials)
    best, curve, history = -math.inf, [], []
    while len(history) < args.trials:
        proposal = searcher.ask()
        if proposal is None:
            break
        key = proposal.genotype.hash()
        if key not in memo:
            memo[key] = scorer.score(proposal.genotype)["oneshot_accuracy"]
        searcher.tell(proposal.trial_id, memo[key])
        history.append({"genotype": proposal.genotype.to_dict(), "oneshot": memo[key]})
        best = max(best, memo[key])
        curve.append(best)
    return {"searcher": name, "seed": seed, "curve": curve, "history": history}


def _rescore(run, args, proxy_memo) -> list:
    """The run's top ``rescore_top`` by one-shot score, trained standalone (the proxy)."""
    from nasplay.scorers.proxy import training as proxy
    from search_space import Genotype

    top = sorted(run["history"], key=lambda h: -h["oneshot"])[:args.rescore_top]
    scores = []
    for item in top:
        genotype = Genotype.from_dict(item["genotype"])
        key = genotype.hash()
        if key not in proxy_memo:
            config = proxy.ProxyConfig(data=args.data, cpus=args.cpus,
                                       train_size=args.proxy_train_size,
                                       val_size=args.proxy_val_size, epochs=args.proxy_epochs)
            proxy_memo[key] = proxy.evaluate(genotype, config)["val_accuracy"]
        scores.append({"hash": key[:12], "oneshot": item["oneshot"], "proxy": proxy_memo[key]})
    return scores


def _plot(runs, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in sorted({r["searcher"] for r in runs}):
        curves = [r["curve"] for r in runs if r["searcher"] == name]
        n = min(len(c) for c in curves)
        values = np.asarray([c[:n] for c in curves])
        mean, std = values.mean(0), values.std(0)
        steps = np.arange(1, n + 1)
        ax.plot(steps, mean, label=f"{name} ({len(curves)} seeds)")
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("candidates scored")
    ax.set_ylabel("best one-shot accuracy so far")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def searchers(args) -> None:
    from search_space import get_space

    config = _config(args)
    scorer, _, _ = _trained_scorer(args, config)
    space = get_space(args.space)
    path = args.results / f"oneshot_searchers_{args.space}.jsonl"
    done = _runs(path)
    memo = {h: s for r in done.values() for h, s in _memo(r).items()}
    proxy_memo = {x["hash"]: x["proxy"] for r in done.values() for x in r.get("rescored", [])}
    for seed in args.seeds:
        for name in args.searchers.split(","):
            if (name, seed) in done and len(done[(name, seed)]["curve"]) >= args.trials:
                continue
            start = time.perf_counter()
            run = _search(name, seed, args, scorer, space, memo)
            run["seconds"] = time.perf_counter() - start
            run["rescored"] = _rescore(run, args, proxy_memo) if args.rescore_top else []
            _emit_quiet(path, run)
            done[(name, seed)] = run
    runs = [done[(n, s)] for s in args.seeds for n in args.searchers.split(",")]
    _plot(runs, args.results / f"oneshot_searchers_{args.space}.png")
    rows = []
    for name in args.searchers.split(","):
        mine = [r for r in runs if r["searcher"] == name]
        best = [r["curve"][-1] for r in mine]
        proxy_best = [max(x["proxy"] for x in r["rescored"]) for r in mine if r["rescored"]]
        proxy_mean = [np.mean([x["proxy"] for x in r["rescored"]]) for r in mine if r["rescored"]]
        rows.append((name, len(mine), _mean_std(best), _mean_std(proxy_best),
                     _mean_std(proxy_mean)))
    k = args.rescore_top
    _table(["searcher", "seeds", "best one-shot", f"best of top-{k} (proxy)",
            f"top-{k} mean (proxy)"],
           rows)


def _runs(path: Path) -> dict:
    runs = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            run = json.loads(line)
            runs[(run["searcher"], run["seed"])] = run
    return runs


def _memo(run) -> dict:
    from search_space import Genotype

    return {Genotype.from_dict(h["genotype"]).hash(): h["oneshot"] for h in run["history"]}


def _emit_quiet(path: Path, record: dict) -> None:
    """A run's record (long) goes to the file; the terminal gets its summary."""
    _append(path, record)
    print(json.dumps({k: record[k] for k in ("searcher", "seed", "seconds")}
                     | {"best": record["curve"][-1] if record["curve"] else None,
                        "rescored": record["rescored"]}), flush=True)


def _mean_std(values) -> str:
    if not values:
        return "-"
    return f"{np.mean(values):.3f} +- {np.std(values):.3f}"


def _reduced_space(base: str, ops):
    """``base``'s blocks and combines with only ``ops`` as candidates, registered in this process
    as ``<base>-<N>ops`` (the issue's "fewer ops": does a supernet over fewer ops rank better?)."""
    from search_space import SearchSpace, get_space, register_space

    space = get_space(base)
    unknown = [op for op in ops if op not in space.ops]
    if unknown:
        raise SystemExit(f"--ops: {', '.join(unknown)} not among {base}'s ops "
                         f"({', '.join(space.ops)})")
    ops = tuple(op for op in space.ops if op in ops)  # the base space's order
    return register_space(SearchSpace(f"{base}-{len(ops)}ops", ops=ops,
                                      num_blocks=space.num_blocks, combines=space.combines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["step", "throughput", "fidelity", "searchers"])
    parser.add_argument("--space", default="amoebanet")
    parser.add_argument("--ops", nargs="+", default=None,
                        help="a reduced space: --space's blocks with only these candidate ops, "
                             "registered as <space>-<N>ops (its own reference cells and supernet)")
    parser.add_argument("--data", default=SHARED_CIFAR)
    parser.add_argument("--supernet", type=Path, default=None,
                        help="supernet directory (trained there when it holds none)")
    parser.add_argument("--candidates", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random cells")
    parser.add_argument("--supernet-seed", type=int, default=0,
                        help="OneShotConfig.seed: weights, data order, paths")
    parser.add_argument("--cpus", type=int, default=os.cpu_count())
    parser.add_argument("--affine-ops", action="store_true",
                        help="candidate ops' batch norms with scale and shift (supernets saved "
                             "before affine_ops existed, e.g. runs/supernet-headbn)")
    parser.add_argument("--loose-mean", action="store_true",
                        help="OneShotConfig.loose_mean: the classifier reads the mean of the "
                             "last cell's loose ends")
    parser.add_argument("--gpus", action="store_true",
                        help="train and score on the visible GPU (PyTorch: KERAS_BACKEND=torch "
                             "on a machine without TensorFlow)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="folder of the result files")
    parser.add_argument("--verbose", type=int, default=1, help="supernet training progress bar")
    for name, kind in (("train-size", int), ("val-size", int), ("epochs", int),
                       ("batch-size", int), ("filters", int), ("cells-per-stage", int),
                       ("sampler", str), ("recalibration-batches", int), ("finetune-steps", int),
                       ("finetune-learning-rate", float), ("learning-rate", float)):
        parser.add_argument(f"--{name}", type=kind, default=None,
                            help="OneShotConfig field (default: its default)")
    parser.add_argument("--standalone-keras-norms", action="store_true",
                        help="step, TensorFlow: step the standalone network with Keras's own "
                             "batch norms, not the fused ones the engine gives both networks")
    parser.add_argument("--functional-conditionals", action="store_true",
                        help="step, TensorFlow: conditionals as functional If/Case ops, not "
                             "lowered to Switch/Merge (an experiment)")
    parser.add_argument("--steps", type=int, default=20,
                        help="step: timed steps per cell, each network")
    # the standalone reference: the default CPU proxy (ProxyConfig), and 5x its training
    parser.add_argument("--proxy-train-size", type=int, default=2000)
    parser.add_argument("--proxy-val-size", type=int, default=1000)
    parser.add_argument("--proxy-epochs", type=int, default=3)
    parser.add_argument("--long-train-size", type=int, default=5000)
    parser.add_argument("--long-epochs", type=int, default=6)
    parser.add_argument("--first", type=int, default=0,
                        help="fidelity: reference cells from this index (split over processes)")
    parser.add_argument("--last", type=int, default=None, help="fidelity: ... up to this one")
    parser.add_argument("--score-images", type=int, default=None,
                        help="fidelity: score on this many held-out images (the validation "
                             "subset plus training-split images the supernet never saw)")
    parser.add_argument("--tag", default=None,
                        help="fidelity: suffix of the result file's name (a repeated training)")
    parser.add_argument("--reference-seed", type=int, default=0,
                        help="fidelity: repeat the standalone references with this training "
                             "seed (its own file) and compare them with seed 0's")
    parser.add_argument("--reference-only", action="store_true",
                        help="fidelity: only the proxy and long trainings")
    parser.add_argument("--trials", type=int, default=500, help="searchers: candidates per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--searchers", default="random,evolution,controller")
    parser.add_argument("--rescore-top", type=int, default=5,
                        help="searchers: each run's top K re-scored by the standalone proxy")
    # a tiny supernet and 3 candidates; give --supernet and --results temporary folders
    add_smoke(parser, **SMOKE_SIZES, ops=SMOKE_OPS, epochs=1, recalibration_batches=1,
              candidates=3, verbose=0)
    args = parser.parse_args(argv)
    if args.ops:
        args.space = _reduced_space(args.space, args.ops).name
    if args.candidates is None:
        args.candidates = {"step": 4, "throughput": 1000, "fidelity": 24, "searchers": 0}[
            args.command]
    {"step": step, "throughput": throughput, "fidelity": fidelity, "searchers": searchers}[
        args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

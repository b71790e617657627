"""The one-shot scorer against NAS-Bench-201's ground truth: train an nb201 supernet, score the
fixed sample, compare with the table.

Trains an ``nb201`` supernet by uniform path sampling (SPOS) with the trainer the ``--scorer
oneshot`` search uses (``nasplay.scorers.oneshot.train.train_supernet``), scores the 200 cells of
``nb201_truth.sample_cells()`` with ``nasplay.scorers.oneshot.score.cached_scorer`` (recalibrated
batch norms, accuracy on the held-out images), and prints ``rank_stats`` against the table's
12-epoch validation accuracy, and against the standalone parameter count (weight sharing's known
bias), with the CPU cost: training seconds, seconds a cell.

Then checks whether a poor ranking is a defect (``--no-checks`` skips them):
  * cells whose output node is unreachable (every path to node 3 passes a ``none``) must score
    at chance (the table gives them ~10%);
  * fixed cells of one op everywhere (all ``nor_conv_3x3``, all ``nor_conv_1x1``, all
    ``avg_pool_3x3``, all ``skip_connect``): convolutions should beat pools and skips;
  * the extracted standalone network (``EdgeSuperNet.extract`` right after the cell was scored,
    so with the path's recalibrated statistics) must give the scorer's accuracy: the scorer
    measures the path;
  * the sample's scores split by the table's rank (deciles), and the training curve.

    python -m benchmarks.nb201_oneshot --filters 16 --cells-per-stage 1 --train-size 25000 \\
        --epochs 25 --score-images 5000 --tag _c16n1_25k_25ep
    # 23 minutes of training (9,750 steps at 0.10-0.18 s on the loaded 2-core machine), 1.1 s a
    # cell on 1,000 images, 5.3 s on 5,000: Kendall 0.33 (1,000 images), 0.40 (5,000)

A supernet of the table's depth, grown from a trained one-cell-a-stage one (``--scorer
oneshot``'s nb201 default; ``OneShotConfig.shallow_epochs``), in one call or from a shallow
supernet trained before (the same weights):

    python -m benchmarks.nb201_oneshot --filters 16 --cells-per-stage 5 --train-size 25000 \
        --shallow-epochs 25 --epochs 2 --learning-rate 0.02 --tag _c16n5_grown
    python -m benchmarks.nb201_oneshot --deepen-from runs/supernet-nb201_c16n1_25k_25ep \
        --filters 16 --cells-per-stage 5 --train-size 25000 --epochs 2 --learning-rate 0.02 \
        --tag _c16n5_deepened_25k_2ep
    # 21 + 8 minutes of training here, 3.3 s a cell: Kendall 0.56 (accuracy), 0.58 (loss)

``--sample-seed S`` scores another random sample of 200 cells (result file ``..._sS.json``).

The supernet lives in ``--supernet DIR`` (default ``runs/supernet-nb201<tag>``, which git
ignores; a finished one is loaded, a partial one resumed). Results:
``OUT/nb201_oneshot<tag>.json`` (``--out OUT``, default ``benchmarks/results``: settings, costs,
per-cell scores, the stats and the checks).

    python -m benchmarks.nb201_oneshot --smoke --data DIR --out /tmp/x   # the tests' run

``--smoke``: a C=4, N=1 supernet, 1 epoch on 64 images, 10 cells scored on 32 images, the checks
included; its supernet goes to ``OUT/supernet-nb201<tag>`` unless ``--supernet`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402

from benchmarks.common import REPO, RESULTS, SHARED_CIFAR, add_smoke
from benchmarks.nb201_truth import TABLE_HEADER, format_stats, rank_stats, sample_cells

UNIFORM = {op: "|{0}~0|+|{0}~0|{0}~1|+|{0}~0|{0}~1|{0}~2|".format(op)
           for op in ("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "none")}


def output_reachable(genotype) -> bool:
    """Whether some path from node 0 to node 3 has no ``none`` edge (else the cell outputs 0)."""
    reach = {0}
    for i, j, op in sorted(genotype.edges(), key=lambda e: e[1]):
        if op != "none" and i in reach:
            reach.add(j)
    return 3 in reach


def _config(args):
    from nasplay.scorers.oneshot.supernet import OneShotConfig

    return OneShotConfig(data=args.data, train_size=args.train_size, val_size=args.val_size,
                         epochs=args.epochs, batch_size=args.batch_size,
                         learning_rate=args.learning_rate, filters=args.filters,
                         cells_per_stage=args.cells_per_stage, seed=args.seed,
                         recalibration_batches=args.recalibration_batches,
                         finetune_steps=args.finetune_steps, shallow_epochs=args.shallow_epochs,
                         shallow_learning_rate=args.shallow_learning_rate,
                         affine_ops=args.affine_ops,
                         cpus=args.cpus).check()


def deepen(shallow_dir, config, directory) -> None:
    """Start the supernet training in ``directory`` from the trained shallower supernet in
    ``shallow_dir`` (``EdgeSuperNet.grow_from``: each stage's cell copied into every cell of the
    stage): an epoch-0 checkpoint (momentum zero) that ``train_supernet`` resumes from. The same
    supernet as ``OneShotConfig.shallow_epochs`` trains in one call, when ``shallow_dir`` holds
    its shallow phase (tests/test_oneshot_nb201.py checks they agree)."""
    from nasplay.data.subsets import load_subsets
    from nasplay.scorers.oneshot import checkpoint as ckpt

    shallow = ckpt.load_supernet(shallow_dir)
    sets = load_subsets(config.data, config.train_size, config.val_size, config.subset_seed,
                        cache_dir=config.cache_dir)
    deep = ckpt.new_supernet("nb201", num_classes=len(sets.classes), filters=config.filters,
                             cells_per_stage=config.cells_per_stage,
                             input_shape=sets.x_train.shape[1:], affine_ops=config.affine_ops)
    deep.grow_from(shallow)
    meta = ckpt.new_meta("nb201", config, len(sets.classes), sets.x_train.shape[1:],
                         ckpt.fingerprint(sets))
    meta["deepened_from"] = str(Path(shallow_dir).resolve())
    Path(directory).mkdir(parents=True, exist_ok=True)
    ckpt.save(directory, deep, [np.zeros(v.shape, "float32") for v in deep.trainable_variables],
              meta)


def _extract_check(scorer, genotypes) -> list[dict]:
    """Score each genotype, then run its extracted standalone network (with the path's weights
    and the statistics the scorer just recalibrated) on the same images; then recalibrate the
    standalone network's batch norms with Keras's own layers (momentum 0, the scorer's
    calibration images as one batch) and score it again: the scorer's recalibration (traced,
    fused kernels, per-batch means) should agree up to the pooled-vs-mean variance."""
    import keras

    def accuracy_of(model):
        probs = np.asarray(model.predict(scorer.x_val, batch_size=500, verbose=0))
        return float(np.mean(probs.argmax(-1) == scorer.y_val))

    rows = []
    for g in genotypes:
        accuracy = scorer.accuracy(g)
        model = scorer.supernet.extract(g)
        standalone = accuracy_of(model)
        for layer in model._flatten_layers():
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = 0.0
        model(np.concatenate(scorer.calibration), training=True)
        rows.append({"arch_str": scorer.supernet.space.to_arch_str(g), "oneshot": accuracy,
                     "extracted": standalone, "extracted_keras_recalibrated": accuracy_of(model)})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=SHARED_CIFAR)
    parser.add_argument("--filters", type=int, default=16)
    parser.add_argument("--cells-per-stage", type=int, default=1)
    parser.add_argument("--train-size", type=int, default=20000)
    parser.add_argument("--val-size", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--recalibration-batches", type=int, default=4)
    parser.add_argument("--shallow-epochs", type=int, default=0,
                        help="OneShotConfig.shallow_epochs: first train one cell a stage this "
                             "many epochs (in SUPERNET/shallow), then grow it")
    parser.add_argument("--shallow-learning-rate", type=float, default=0.05)
    parser.add_argument("--finetune-steps", type=int, default=0,
                        help="SGD steps on each cell's path before scoring it (a scoring "
                             "setting: the supernet is the same; name it with --supernet)")
    parser.add_argument("--affine-ops", action="store_true")
    parser.add_argument("--seed", type=int, default=0, help="the supernet's seed")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--cells", type=int, default=200, help="first N cells of the sample")
    parser.add_argument("--sample-seed", type=int, default=0,
                        help="score another random sample (nb201_truth.sample_cells(seed=S)); "
                             "the result file gets '_sS' after the tag")
    parser.add_argument("--supernet", type=Path, default=None)
    parser.add_argument("--tag", default="", help="suffix of the result file and supernet dir")
    parser.add_argument("--train-only", action="store_true", help="train (time it) and stop")
    parser.add_argument("--deepen-from", type=Path, default=None, metavar="DIR",
                        help="start from this trained, shallower supernet of the same width "
                             "(each stage's cell copied into every cell of the stage)")
    parser.add_argument("--score-images", type=int, default=0,
                        help="also score every cell on this many held-out images (the val_size "
                             "ones and more never trained on: oneshot_benchmark's "
                             "_widen_validation), a less noisy score from the same supernet")
    parser.add_argument("--no-checks", action="store_true")
    parser.add_argument("--verbose", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="the folder of the result file nb201_oneshot<tag>.json")
    add_smoke(parser, filters=4, cells_per_stage=1, train_size=64, val_size=32, epochs=1,
              batch_size=32, recalibration_batches=1, cells=10, verbose=0)
    args = parser.parse_args(argv)
    if args.smoke and args.out.resolve() == RESULTS.resolve():
        parser.error("--smoke: give --out a folder other than benchmarks/results")

    from nasplay.scorers.oneshot.supernet import cached_scorer, train_supernet
    from nasplay.scorers.oneshot.checkpoint import read_meta
    from nasplay.scorers.oneshot.train import SHALLOW_DIR
    from search_space import get_space

    space = get_space("nb201")
    config = _config(args)
    directory = args.supernet or ((args.out if args.smoke else REPO / "runs")
                                  / f"supernet-nb201{args.tag}")
    start = time.perf_counter()
    if args.deepen_from is not None and not (directory / "supernet.npz").exists():
        deepen(args.deepen_from, config, directory)
    train_supernet("nb201", config, directory, verbose=args.verbose)
    meta = read_meta(directory)
    print(f"supernet: {meta['train_seconds']:.0f} s training recorded "
          f"({time.perf_counter() - start:.0f} s this call); history "
          + ", ".join(f"e{h['epoch']} loss {h['loss']:.3f} acc {h['accuracy']:.3f} "
                      f"{h['seconds']:.0f}s" for h in meta["history"]), flush=True)
    if args.train_only:
        return 0

    cells = sample_cells(seed=args.sample_seed)[:args.cells]
    genotypes = [space.from_arch_str(c["arch_str"]) for c in cells]
    truth = [c["val_accuracy"] for c in cells]
    start = time.perf_counter()
    scorer = cached_scorer(directory, config, "nb201")
    load_seconds = time.perf_counter() - start
    metrics = []
    for n, g in enumerate(genotypes):
        metrics.append(scorer.score(g))
        if (n + 1) % 50 == 0:
            print(f"scored {n + 1}/{len(genotypes)}", flush=True)
    scores = [m["oneshot_accuracy"] for m in metrics]
    params = [m["params"] for m in metrics]
    seconds = float(np.median([m["score_seconds"] for m in metrics[1:]]))
    stats = {"oneshot_accuracy": rank_stats(scores, truth),
             "oneshot_neg_loss": rank_stats([-m["oneshot_loss"] for m in metrics], truth),
             "params": rank_stats(params, truth)}
    if config.finetune_steps:  # how fast the path trains from the inherited weights
        stats["oneshot_neg_finetune_loss"] = rank_stats(
            [-m["oneshot_finetune_loss"] for m in metrics], truth)
    stats_vs_params = rank_stats(scores, params)
    # the cells that compute something (output reachable) alone: the ranking among them
    reachable = [output_reachable(g) for g in genotypes]
    keep = np.flatnonzero(reachable)
    stats["oneshot_accuracy_reachable_only"] = rank_stats(np.take(scores, keep),
                                                          np.take(truth, keep))

    label = (f"one-shot C={config.filters} N={config.cells_per_stage} "
             f"{config.train_size // 1000}k x {config.epochs} ep"
             + (f", finetune {config.finetune_steps}" if config.finetune_steps else ""))
    print("\n" + TABLE_HEADER)
    print(format_stats(label, stats["oneshot_accuracy"], seconds))
    print(format_stats(label + " (-loss)", stats["oneshot_neg_loss"], seconds))
    print(format_stats(label + ", reachable cells only", stats["oneshot_accuracy_reachable_only"],
                       seconds))
    print(format_stats("params", stats["params"]))
    print(f"one-shot score vs params: Spearman {stats_vs_params['spearman']:.3f} "
          f"[{stats_vs_params['spearman_ci'][0]:.2f}, {stats_vs_params['spearman_ci'][1]:.2f}], "
          f"Kendall {stats_vs_params['kendall']:.3f}")
    print(f"cost: supernet training {meta['train_seconds']:.0f} s, scorer load and traces "
          f"{load_seconds:.0f} s, median {seconds:.2f} s a cell")

    checks = {}
    if not args.no_checks:
        unreachable = [s for s, r in zip(scores, reachable) if not r]
        checks["unreachable_output"] = {
            "cells": len(unreachable), "oneshot_min": min(unreachable, default=None),
            "oneshot_max": max(unreachable, default=None),
            "truth_max": max((t for t, r in zip(truth, reachable) if not r), default=None)}
        print(f"\ncells with node 3 unreachable: {len(unreachable)}, one-shot "
              f"{checks['unreachable_output']['oneshot_min']}..."
              f"{checks['unreachable_output']['oneshot_max']} (chance 0.10)")
        uniform = {}
        for op, arch in UNIFORM.items():
            g = space.from_arch_str(arch)
            uniform[op] = {"oneshot": scorer.accuracy(g),
                           "truth": _table_value(arch), "params": scorer.supernet.path_params(g)}
        checks["uniform_cells"] = uniform
        print("one op on every edge: " + ", ".join(
            f"{op} {v['oneshot']:.3f} (table {v['truth']:.3f})" for op, v in uniform.items()))
        order = np.argsort(truth)
        deciles = []
        for part in np.array_split(order, 10):
            deciles.append({"truth_mean": float(np.mean(np.take(truth, part))),
                            "oneshot_mean": float(np.mean(np.take(scores, part)))})
        checks["deciles_by_truth"] = deciles
        print("deciles by the table (truth mean -> one-shot mean): " + ", ".join(
            f"{d['truth_mean']:.3f}->{d['oneshot_mean']:.3f}" for d in deciles))
        picks = [genotypes[int(order[k])] for k in (-1, len(order) // 2, len(order) // 10)]
        checks["extracted"] = _extract_check(scorer, picks)
        for row in checks["extracted"]:
            print(f"extract: {row['arch_str']} one-shot {row['oneshot']:.4f} standalone "
                  f"{row['extracted']:.4f}, recalibrated by Keras "
                  f"{row['extracted_keras_recalibrated']:.4f}")

    wide = None
    if args.score_images > config.val_size:
        from benchmarks.oneshot_benchmark import _widen_validation

        _widen_validation(scorer, config, args.score_images)
        wide = [scorer.score(g) for g in genotypes]
        wide_scores = [m["oneshot_accuracy"] for m in wide]
        wide_seconds = float(np.median([m["score_seconds"] for m in wide[1:]]))
        stats[f"oneshot_accuracy_{len(scorer.y_val)}_images"] = rank_stats(wide_scores, truth)
        stats[f"oneshot_neg_loss_{len(scorer.y_val)}_images"] = rank_stats(
            [-m["oneshot_loss"] for m in wide], truth)
        stats[f"oneshot_{len(scorer.y_val)}_images_vs_params"] = rank_stats(wide_scores, params)
        print(TABLE_HEADER)
        print(format_stats(f"{label}, scored on {len(scorer.y_val)} images",
                           stats[f"oneshot_accuracy_{len(scorer.y_val)}_images"], wide_seconds))
        print(format_stats(f"{label}, -loss on {len(scorer.y_val)} images",
                           stats[f"oneshot_neg_loss_{len(scorer.y_val)}_images"], wide_seconds))
        print(f"  vs params: Spearman "
              f"{stats[f'oneshot_{len(scorer.y_val)}_images_vs_params']['spearman']:.3f}")

    import keras
    import tensorflow as tf

    shallow_meta = (read_meta(meta["deepened_from"]) if meta.get("deepened_from")
                    else read_meta(directory / SHALLOW_DIR) if config.shallow_epochs else None)
    result = {"config": config.to_dict(), "sample_seed": args.sample_seed,
              "deepened_from": meta.get("deepened_from"),
              "shallow_train_seconds": shallow_meta and shallow_meta["train_seconds"],
              "shallow_history": shallow_meta and shallow_meta["history"],
              "backend": keras.backend.backend(),
              "tensorflow": tf.__version__, "loadavg": os.getloadavg(),
              "supernet_dir": str(directory), "train_seconds": meta["train_seconds"],
              "history": meta["history"], "scorer_load_seconds": load_seconds,
              "median_score_seconds": seconds, "stats": stats,
              "oneshot_vs_params": stats_vs_params, "checks": checks,
              "cells": [{"arch_str": c["arch_str"], "index": c["index"],
                         "val_accuracy": c["val_accuracy"],
                         "oneshot_accuracy": m["oneshot_accuracy"],
                         "oneshot_loss": m["oneshot_loss"], "params": m["params"],
                         "reachable": r, "score_seconds": m["score_seconds"],
                         **({"oneshot_finetune_loss": m["oneshot_finetune_loss"]}
                            if config.finetune_steps else {}),
                         **({"oneshot_accuracy_wide": w["oneshot_accuracy"],
                             "oneshot_loss_wide": w["oneshot_loss"]} if w else {})}
                        for c, m, r, w in zip(cells, metrics, reachable,
                                              wide or [None] * len(cells))]}
    if wide:
        result["score_images_wide"] = len(scorer.y_val)
        result["median_score_seconds_wide"] = wide_seconds
    path = args.out / (f"nb201_oneshot{args.tag}"
                       + (f"_s{args.sample_seed}" if args.sample_seed else "") + ".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(f"-> {path.relative_to(REPO) if path.resolve().is_relative_to(REPO) else path}")
    return 0


def _table_value(arch: str) -> float:
    from nasplay.scorers.nb201.table import table

    return table().lookup(arch).val_accuracy


if __name__ == "__main__":
    sys.exit(main())

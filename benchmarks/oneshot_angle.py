"""Does the angle a path's weights turned through in supernet training rank cells better?

ABS (Hu et al., "Angle-based Search Space Shrinking for Neural Architecture Search", ECCV
2020) scores a supernet path by the angle between its weight vector at initialisation and after
training, and reports that this ranks child models more stably than their inherited accuracy,
early in supernet training especially (after the layer-rotation observation of Carbonnelle & De
Vleeschouwer, 2019: layers that rotate further generalise better). Our supernets, trained for
minutes on a CPU, rank the fidelity cells by inherited accuracy at Spearman 0.04-0.35; an angle
needs no forward pass, so it is also the cheapest score there is.

The path's weight vector here is the concatenation of every trainable weight the standalone
network of the genotype inherits (:func:`cells.supernet_paths._pairs`: stem, the preprocessing
kernels' rows for the loose ends they read, the chosen ops, the classifier's rows), at
initialisation and after training. Initial weights are rebuilt, not stored: training starts
from ``keras.utils.set_random_seed(seed)`` and the supernet's construction, which this script
repeats (and checks by rebuilding twice). Parameter-free ops (identity, pools) add nothing to
the vector. Variants: the whole path (``angle``) and its cell ops alone (``angle_ops``, no
stem, preprocessing or classifier). Each supernet's row also says how far training turned its
weights (median cosine between initial and trained variables, candidate ops and shared parts
apart), and ``--standalone N`` measures the same for N fidelity cells trained by the proxy.

    python -m benchmarks.oneshot_angle runs/supernet-lr001 runs/supernet-lr001-s1 ...
    python -m benchmarks.oneshot_angle runs/supernet-default --standalone 2
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks.common import RESULTS, SHARED_CIFAR
from benchmarks.oneshot_benchmark import _fidelity_cells, _rank_stats, _top_overlap  # noqa: E402


def initial_supernet(meta: dict):
    """The supernet as its training started: the seed, then the same construction."""
    import keras

    from nasplay.scorers.oneshot import checkpoint as ckpt

    keras.utils.set_random_seed(meta["seed"])
    return ckpt.build(meta)


def _path_vectors(supernet, genotype, ops_only: bool) -> list[np.ndarray]:
    """Flattened weights of ``genotype``'s path in ``supernet``, in a fixed order."""
    from cells.supernet_paths import _input_axis, _pairs

    vectors = []
    for layer, channels, locator in _pairs(supernet, genotype):
        if ops_only and (len(locator) == 1 or locator[1] != "branch_ops"):
            continue
        for variable in layer.trainable_variables:
            array = np.asarray(variable.numpy())
            axis = _input_axis(array.shape)
            if channels is not None and axis is not None:
                array = np.take(array, channels, axis=axis)
            vectors.append(array.ravel())
    return vectors


def angle(initial, trained, genotype, ops_only: bool = False) -> float:
    """The angle (radians) between the path's initial and trained weight vectors."""
    a = np.concatenate(_path_vectors(initial, genotype, ops_only) or [np.zeros(1)])
    b = np.concatenate(_path_vectors(trained, genotype, ops_only) or [np.zeros(1)])
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    if norm == 0.0:
        return 0.0  # a path with no weights of its own (only parameter-free ops) did not turn
    return float(np.arccos(np.clip(np.dot(a, b) / norm, -1.0, 1.0)))


def _check_rebuild(meta: dict, initial) -> None:
    again = initial_supernet(meta)
    same = all(np.array_equal(np.asarray(x), np.asarray(y))
               for x, y in zip(initial.get_weights(), again.get_weights()))
    if not same:
        raise SystemExit("rebuilding the supernet with its seed does not repeat its initial "
                         "weights: the angle would be measured against the wrong start")


def _cosines(pairs) -> float:
    """Median over ``(initial, trained)`` arrays of more than 16 weights of their cosine."""
    out = []
    for a, b in pairs:
        a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
        norm = np.linalg.norm(a) * np.linalg.norm(b)
        if norm > 0 and a.size > 16:
            out.append(float(np.dot(a, b) / norm))
    return float(np.median(out)) if out else float("nan")


def rotation(initial, trained) -> dict:
    """How far training turned the supernet's kernels: the median cosine (initial, trained) of
    the candidate ops' kernels and of the shared ones (stem, preprocessing, classifier). A
    wrong initial supernet would give cosines near 0."""
    ops = {id(v) for cell in trained.super_cells for layer in cell.candidate_layers()
           for v in layer.trainable_variables}
    pairs = [(a, b) for a, b in zip(initial.trainable_variables, trained.trainable_variables)
             if "kernel" in b.path]
    return {"candidate_ops": _cosines((a.numpy(), b.numpy()) for a, b in pairs if id(b) in ops),
            "shared": _cosines((a.numpy(), b.numpy()) for a, b in pairs if id(b) not in ops)}


def standalone_rotation(genotypes, data: str) -> list[dict]:
    """The same cosines for standalone networks trained by the default proxy (their cell
    kernels, and the stem and classifier): how far weights turn when a path trains alone."""
    import keras

    from nasplay.scorers.proxy import training as proxy

    class Start(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.weights = [np.asarray(v.numpy()) for v in self.model.trainable_variables]

    rows = []
    for genotype in genotypes:
        start = Start()
        model, metrics = proxy.train(genotype, proxy.ProxyConfig(data=data), callbacks=[start])
        pairs = [(a, v.numpy(), v.path) for a, v in zip(start.weights, model.trainable_variables)
                 if "kernel" in v.path]
        shared = ("stem", "predictions")
        rows.append({"hash": genotype.hash()[:12], "val_accuracy": metrics["val_accuracy"],
                     "cells": _cosines((a, b) for a, b, p in pairs
                                       if not any(s in p for s in shared)),
                     "shared": _cosines((a, b) for a, b, p in pairs
                                        if any(s in p for s in shared))})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("supernets", nargs="+", type=Path)
    parser.add_argument("--space", default="amoebanet")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--standalone", type=int, default=0, metavar="N",
                        help="also train the first N fidelity cells with the default proxy and "
                             "print how far their weights turned")
    parser.add_argument("--data", default=SHARED_CIFAR)
    args = parser.parse_args(argv)

    from nasplay.scorers.oneshot import checkpoint as ckpt
    from nasplay.scorers.oneshot.train import setup_devices
    from nasplay.scorers.oneshot.supernet import OneShotConfig

    setup_devices(OneShotConfig(cpus=1))
    genotypes, reference, cells = _fidelity_cells(args.results, args.space, count=None)
    long = [reference[i]["long"] for i in cells]
    proxy = [reference[i]["proxy"] for i in cells]
    out = args.results / f"oneshot_angle_{args.space}.jsonl"
    for directory in args.supernets:
        trained = ckpt.load_supernet(directory)
        meta = ckpt.read_meta(directory)
        initial = initial_supernet(meta)
        _check_rebuild(meta, initial)
        turned = rotation(initial, trained)
        for ops_only in (False, True):
            name = "angle_ops" if ops_only else "angle"
            scores = [angle(initial, trained, genotypes[i], ops_only) for i in cells]
            row = {"supernet": str(directory), "score": name,
                   "learning_rate": meta["learning_rate"], "seed": meta["seed"],
                   "loose_mean": meta["loose_mean"], "epochs": meta["epochs_done"],
                   "median_cosine": turned,
                   "vs_long": _rank_stats(scores, long), "vs_proxy": _rank_stats(scores, proxy),
                   "top5_overlap_long": _top_overlap(scores, long),
                   "hashes": [genotypes[i].hash()[:12] for i in cells], "scores": scores}
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{directory} {name}: Spearman vs long {row['vs_long']['spearman']:.3f}, "
                  f"Kendall {row['vs_long']['kendall']:.3f}, vs proxy "
                  f"{row['vs_proxy']['spearman']:.3f}, top-5 {row['top5_overlap_long']}; median "
                  f"cosine (initial, trained): candidate ops {turned['candidate_ops']:.4f}, "
                  f"shared {turned['shared']:.3f}", flush=True)
    for row in standalone_rotation([genotypes[i] for i in cells[:args.standalone]], args.data):
        print(f"standalone {row['hash']} (proxy accuracy {row['val_accuracy']:.3f}): median "
              f"cosine (initial, trained): cell kernels {row['cells']:.4f}, stem and classifier "
              f"{row['shared']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

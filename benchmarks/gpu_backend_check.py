"""Run the model code (cells/, search_space/) on a GPU through a non-TensorFlow Keras backend.

Why: cells must work on any Keras 3 backend, and users move from a laptop to a GPU box. This
script checks, on whatever backend ``KERAS_BACKEND`` names (jax or torch), that every published
cell and a few sampled ones build and run, that a model saves and reloads with identical
predictions, and measures proxy training on real CIFAR-10 images: images/s in float32 and in
mixed precision, and the validation accuracy reached.

It needs no TensorFlow. Data: an ``.npz`` with x_train/y_train/x_val/y_val (uint8 images, int
labels), e.g. made from ``../shared/datasets/cifar10-jpeg``; without one it trains on random data
(throughput only).

    KERAS_BACKEND=jax python -m benchmarks.gpu_backend_check --data .gpudata/cifar_subset.npz

It trains with plain Keras, not nasplay's proxy; ``benchmarks/gpu_check.py`` measures the proxy
itself on a GPU (candidates per hour, compile share, bfloat16, two candidates per GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import add_smoke


MEAN = np.array([0.4914, 0.4822, 0.4465], "float32")
STD = np.array([0.2470, 0.2435, 0.2616], "float32")


def load(path: str | None, n_train: int, n_val: int):
    if path and Path(path).exists():
        d = np.load(path)
        x_tr, y_tr, x_va, y_va = d["x_train"], d["y_train"], d["x_val"], d["y_val"]
        real = True
    else:
        rng = np.random.default_rng(0)
        x_tr = rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8)
        y_tr = rng.integers(0, 10, n_train)
        x_va, y_va = x_tr[:n_val], y_tr[:n_val]
        real = False
    norm = lambda x: ((x.astype("float32") / 255.0) - MEAN) / STD  # noqa: E731
    return norm(x_tr[:n_train]), y_tr[:n_train], norm(x_va[:n_val]), y_va[:n_val], real


def check_builds(results: dict) -> None:
    """Every published cell and 3 samples of each space build and run a forward pass."""
    import keras

    from cells import build_network
    from search_space import PUBLISHED, get_space

    rng = np.random.default_rng(0)
    genotypes = dict(PUBLISHED)
    for name in ("nasnet", "amoebanet", "article"):
        for i in range(3):
            genotypes[f"{name}-sample{i}"] = get_space(name).sample(rng)
    x = np.zeros((2, 32, 32, 3), "float32")
    ok = {}
    for name, g in genotypes.items():
        model = build_network(g, filters=8, cells_per_stage=1)
        y = np.asarray(model(x, training=False))
        ok[name] = bool(y.shape == (2, 10) and np.allclose(y.sum(axis=1), 1.0, atol=1e-3))
        keras.backend.clear_session()
    results["forward_ok"] = ok
    print("forward pass ok:", all(ok.values()), f"({len(ok)} genotypes)", flush=True)


def check_save_load(results: dict) -> None:
    import keras

    from cells import build_network
    from search_space import PUBLISHED

    model = build_network(PUBLISHED["amoebanet-a"], filters=8, cells_per_stage=1)
    x = np.random.default_rng(1).normal(size=(4, 32, 32, 3)).astype("float32")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.keras")
        model.save(path)
        loaded = keras.saving.load_model(path)
        diff = float(np.max(np.abs(np.asarray(loaded(x)) - np.asarray(model(x)))))
    results["save_load_max_abs_diff"] = diff
    print(f"save/load max |diff| = {diff:.2e}", flush=True)
    keras.backend.clear_session()


def train(genotype_name: str, policy: str, data, filters: int, cells_per_stage: int,
          epochs: int, batch_size: int) -> dict:
    import keras

    from cells import build_network
    from search_space import PUBLISHED

    keras.backend.clear_session()
    keras.mixed_precision.set_dtype_policy(policy)
    keras.utils.set_random_seed(0)
    x_tr, y_tr, x_va, y_va, _ = data
    model = build_network(PUBLISHED[genotype_name], filters=filters,
                          cells_per_stage=cells_per_stage)
    steps = len(x_tr) // batch_size
    schedule = keras.optimizers.schedules.CosineDecay(0.05, steps * epochs)
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(x_tr[:batch_size], y_tr[:batch_size], batch_size=batch_size, epochs=1, verbose=0)
    first = time.perf_counter() - t0
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        model.fit(x_tr, y_tr, batch_size=batch_size, epochs=1, verbose=0, shuffle=True)
        times.append(time.perf_counter() - t)
    steady = float(np.median(times[1:] if len(times) > 1 else times))
    _, val_acc = model.evaluate(x_va, y_va, batch_size=512, verbose=0)
    out = {"genotype": genotype_name, "policy": policy, "filters": filters,
           "cells_per_stage": cells_per_stage, "params": int(model.count_params()),
           "epochs": epochs, "train_images": len(x_tr), "batch_size": batch_size,
           "compile_and_first_step_s": round(first, 1), "steady_epoch_s": round(steady, 2),
           "images_per_s": round(len(x_tr) / steady), "val_accuracy": round(float(val_acc), 3)}
    print(json.dumps(out), flush=True)
    keras.mixed_precision.set_dtype_policy("float32")
    return out


def main(argv=None) -> int:
    import keras  # here: importing the module runs nothing (and KERAS_BACKEND picks the backend)

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=".gpudata/cifar_subset.npz")
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--paper-size", action="store_true",
                        help="also time AmoebaNet-A at the paper's size (N=6, F=36)")
    add_smoke(parser, data="", epochs=1)  # random images, 256 of them, one network trained
    args = parser.parse_args(argv)

    results = {"backend": keras.backend.backend(), "keras": keras.__version__}
    if results["backend"] == "jax":
        import jax

        results["devices"] = [str(d) for d in jax.devices()]
    elif results["backend"] == "torch":
        import torch

        results["devices"] = [torch.cuda.get_device_name(0)] if torch.cuda.is_available() else ["cpu"]
    print(results, flush=True)
    data = load(args.data, 256, 128) if args.smoke else load(args.data, 6000, 1000)
    results["real_data"] = data[4]

    check_builds(results)
    check_save_load(results)
    half = "mixed_bfloat16"
    runs = [("amoebanet-a", "float32", 16, 2), ("amoebanet-a", half, 16, 2),
            ("nasnet-a", half, 16, 2)]
    if args.paper_size:
        runs.append(("amoebanet-a", half, 36, 6))
    if args.smoke:
        runs = [("amoebanet-a", "float32", 16, 1)]
    results["training"] = []
    for name, policy, filters, n in runs:
        epochs = args.epochs if filters == 16 else 2
        results["training"].append(train(name, policy, data, filters, n, epochs, 128))
        Path(args.out, "gpu_check.json").write_text(json.dumps(results, indent=2))

    print("\n| genotype | policy | F | N | params | first step (s) | epoch (s) | images/s | val acc |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results["training"]:
        print(f"| {r['genotype']} | {r['policy']} | {r['filters']} | {r['cells_per_stage']} | "
              f"{r['params']:,} | {r['compile_and_first_step_s']} | {r['steady_epoch_s']} | "
              f"{r['images_per_s']:,} | {r['val_accuracy']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

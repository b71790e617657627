"""``nasplay train``: train a published or found cell's network and save it.

    nasplay train --genotype nasnet-a --data ../shared/datasets/cifar10-jpeg --subset 2000 \\
        --epochs 3 --filters 8 --cells-per-stage 1 --seed 0 --out runs/nasnet-a-proxy
    nasplay train --genotype runs/search1 --data cifar10 --epochs 600 --filters 36 \\
        --cells-per-stage 6 --augment --cutout 16 --cosine --drop-path 0.2 --auxiliary-head \\
        --test-data cifar10 --out runs/search1-final

``--genotype`` is a published name, a genotype JSON file, or a run directory (its
``best_genotype.json``). Writes ``OUT/model.keras``, ``OUT/metrics.json`` (the proxy's metrics
plus what was run) and ``OUT/genotype.json``. The validation images are carved from the training
split as in a search; ``--test-data`` adds ``test_accuracy`` from a test split, which a search
never sees. Every input is checked before anything is written, and an ``--out`` that already
holds a model is refused unless ``--overwrite``.

Module-level imports stay light (the CLI builds every subcommand's parser); TensorFlow is
imported inside :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from nasplay.errors import UserError

MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
GENOTYPE_FILE = "genotype.json"
RUN_GENOTYPE_FILE = "best_genotype.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--genotype", required=True, metavar="NAME|FILE|DIR",
        help="published cell (nasnet-a, amoebanet-a, enas, darts-v2), a genotype JSON file, or "
             "a search run directory (uses its best_genotype.json)")
    add("--data", default="cifar10", metavar="SRC",
        help="'cifar10', a folder of CIFAR-10 python batches, or an image folder "
             "(<dir>/train/<class>/*.jpg); default cifar10")
    add("--subset", type=int, default=None, metavar="N",
        help="training images, class-stratified (default: all but the validation images)")
    add("--val-size", type=int, default=1000, metavar="N",
        help="validation images carved from the training split (default 1000)")
    add("--epochs", type=int, default=10, metavar="E", help="training epochs (default 10)")
    add("--filters", type=int, default=16, metavar="F", help="first-stage width (default 16)")
    add("--cells-per-stage", type=int, default=2, metavar="N",
        help="normal cells between reductions (default 2)")
    add("--seed", type=int, default=0, metavar="S",
        help="initial weights, data order, subset choice (default 0)")
    add("--out", required=True, metavar="DIR", help="where model.keras and metrics.json go")
    add("--batch-size", type=int, default=64, metavar="B", help="default 64")
    add("--lr", type=float, default=0.05, metavar="LR", help="SGD learning rate (default 0.05)")
    add("--augment", action="store_true", help="pad-4 random crop and horizontal flip")
    add("--cutout", type=int, default=0, metavar="PX", help="cutout square side (default 0: off)")
    add("--cosine", action="store_true", help="cosine decay of the learning rate to 0")
    add("--drop-path", type=float, default=0.0, metavar="P", help="drop-path rate (default 0)")
    add("--auxiliary-head", action="store_true",
        help="auxiliary classifier after the second reduction (loss weight 0.4)")
    add("--test-data", default=None, metavar="SRC",
        help="report test accuracy on SRC's test split ('cifar10', python batches' test_batch, "
             "<dir>/test/<class>/*, or a folder of class folders)")
    add("--cpus", type=int, default=None, metavar="N",
        help="TensorFlow threads (default: all cores)")
    add("--overwrite", action="store_true", help="replace a model already in --out")
    add("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from nasplay.proxy import ProxyConfig

    out = Path(args.out)
    _check_out(out, args.overwrite)
    if args.subset is not None and args.subset < 1:
        raise UserError(f"--subset must be a positive number of images, got {args.subset}")
    if args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}")
    if args.val_size < 1:
        raise UserError(f"--val-size must be at least 1, got {args.val_size}")
    genotype = resolve_genotype(args.genotype)
    config = ProxyConfig(
        # without --subset the size is known once the data is loaded; a batch's worth passes
        # the checks that do not depend on it
        data=args.data, train_size=args.subset or max(args.batch_size, 1),
        val_size=args.val_size,
        subset_seed=args.seed, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.lr, cosine=args.cosine, augment=args.augment, cutout=args.cutout,
        drop_path=args.drop_path, auxiliary_head=args.auxiliary_head, seed=args.seed,
        filters=args.filters, cells_per_stage=args.cells_per_stage, cpus=args.cpus,
        gpus=_has_gpu())
    try:
        config.check()
    except UserError as e:
        raise UserError(f"{e} (check --subset, --batch-size, --lr, --drop-path, --cutout)") \
            from None

    # TensorFlow from here on: devices first, before anything creates a tensor
    from nasplay import devices

    devices.configure(config.cpus, config.gpus, config.mixed_precision)
    from nasplay.data import load_source

    data = load_source(args.data)
    if args.subset is None:
        config = config.replace(train_size=len(data) - args.val_size)
        if config.train_size < config.batch_size:
            raise UserError(f"{args.data} has {len(data)} training images: too few for "
                            f"{args.val_size} validation images and one batch of "
                            f"{config.batch_size}")
    test = _load_test(args.test_data, data) if args.test_data else None
    from nasplay import proxy

    proxy.subsets(config, data)  # subset larger than the data: DataError, before any output

    started = time.time()
    model, metrics = proxy.train(genotype, config, data=data, test_data=test,
                                 verbose=0 if args.quiet else 1)
    out.mkdir(parents=True, exist_ok=True)
    _save_model(model, out / MODEL_FILE)
    _write_text(out / GENOTYPE_FILE, genotype.to_json() + "\n")
    record = {"metrics": metrics, "genotype": args.genotype, "genotype_hash": genotype.hash(),
              "data": args.data, "test_data": args.test_data, "config": config.to_dict(),
              "devices": devices.current().to_dict(), "started_at": started,
              "finished_at": time.time()}
    _write_text(out / METRICS_FILE, json.dumps(record, indent=2, default=float) + "\n")
    summary = f"val_accuracy {metrics['val_accuracy']:.4f}"
    if "test_accuracy" in metrics:
        summary += f", test_accuracy {metrics['test_accuracy']:.4f}"
    print(f"{summary}; {metrics['params']:,} parameters, {metrics['flops'] / 1e6:.1f}M "
          f"multiply-adds; wrote {out / MODEL_FILE} and {out / METRICS_FILE}")
    return 0


def resolve_genotype(spec: str):
    """A Genotype from a published name, a JSON file, or a run directory's best genotype."""
    from search_space import load_genotype

    path = Path(spec)
    if path.is_dir():
        best = path / RUN_GENOTYPE_FILE
        if not best.is_file():
            raise UserError(f"--genotype {spec}: a directory without {RUN_GENOTYPE_FILE}; "
                            f"give a run directory with a finished trial, a genotype JSON file "
                            f"or a published name")
        path = best
        spec = str(best)
    try:
        return load_genotype(spec)
    except ValueError as e:
        raise UserError(f"--genotype: {e}") from None


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if (out / MODEL_FILE).exists() and not overwrite:
        raise UserError(f"--out {out} already holds {MODEL_FILE}; pass --overwrite to replace "
                        f"it or choose another --out")


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _load_test(src: str, train):
    """The test split of ``src``; a folder of class folders is taken whole as test images."""
    from nasplay.data import DataError, load_source

    try:
        test = load_source(src, split="test")
    except DataError:
        root = Path(src)
        if not root.is_dir() or (root / "train").is_dir():
            raise
        test = load_source(src, split="train")  # <dir>/<class>/*: the folder is the test set
    if list(test.classes) != list(train.classes):
        raise UserError(f"--test-data {src}: classes {test.classes} differ from the training "
                        f"data's {train.classes}")
    if test.x.shape[1:] != train.x.shape[1:]:
        raise UserError(f"--test-data {src}: images are {test.x.shape[1:]}, the training "
                        f"images {train.x.shape[1:]}")
    return test


def _save_model(model, path: Path) -> None:
    """Save atomically, compiled with Keras's own SGD so loading needs only ``import cells``.

    Training used nasplay.proxy's fused SGD (a private subclass); the saved model keeps the
    trained weights, not the optimizer's state.
    """
    import keras

    from nasplay.proxy import loss_arguments

    model.compile(optimizer=keras.optimizers.SGD(), **loss_arguments(model), jit_compile=False)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    model.save(tmp)
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)

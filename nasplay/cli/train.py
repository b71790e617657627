"""``nasplay train``: train a published or found cell's network and save it.

    nasplay train --genotype nasnet-a --data cifar10 --subset 2000 \\
        --epochs 3 --filters 8 --cells-per-stage 1 --seed 0 --out runs/nasnet-a-proxy
    nasplay train --genotype runs/search1 --out runs/search1-best    # the run's own settings
    nasplay train --like runs/search1 --genotype cell.json --epochs 6 --out runs/cell-longer
    nasplay train --genotype runs/search1 --data cifar10 --epochs 600 --filters 36 \\
        --cells-per-stage 6 --augment --cutout 16 --cosine --drop-path 0.2 --auxiliary-head \\
        --test-data cifar10 --out runs/search1-final --backend jax

``--genotype`` is a published name, a NAS-Bench-201 cell string (``'|nor_conv_3x3~0|+...|'``,
quoted: it holds ``|``), a genotype JSON file, or a run directory (its ``best_genotype.json``).
An ``nb201`` genotype trains NAS-Bench-201's network (``cells.nb201``; 5 cells per stage unless
told), which has no drop path or auxiliary head. With a run directory, or ``--like RUN_DIR``,
training uses that run's own settings (``nasplay.cli.train_settings``), so the same seed reproduces
the search's score; flags override them. Writes ``OUT/model.keras``, ``OUT/metrics.json`` (the
proxy's metrics plus what was run) and ``OUT/genotype.json``. The validation images are carved
from the training split as in a search; ``--test-data`` adds ``test_accuracy`` from a test
split, which a search never sees. Every input is checked before anything is written, and an
``--out`` that already holds a model is refused unless ``--overwrite``.

Module-level imports stay light (the CLI builds every subcommand's parser); the backend is
selected (``--backend``, else the run's, else ``KERAS_BACKEND``) before Keras is imported.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nasplay.errors import UserError
from nasplay.runtime.backends import BACKENDS
from search_space.files import atomic_write, atomic_write_text

MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
GENOTYPE_FILE = "genotype.json"
LIKE = "the run's with --like or a run directory, else"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--genotype", metavar="NAME|FILE|DIR",
        help="published cell (nasnet-a, amoebanet-a, enas, darts-v2), a NAS-Bench-201 cell "
             "string ('|nor_conv_3x3~0|+...|', quoted), a genotype JSON file, or a search run "
             "directory (its best_genotype.json, trained with the run's settings)")
    add("--like", metavar="RUN_DIR",
        help="train with this search run's own settings (data, subset, epochs, network, seed, "
             "optimizer), so the same seed reproduces its score; flags override them; without "
             "--genotype, the run's best cell")
    add("--data", metavar="SRC",
        help=f"'cifar10', a folder of CIFAR-10 python batches, or an image folder "
             f"(<dir>/train/<class>/*.jpg); default: {LIKE} cifar10")
    add("--subset", type=int, metavar="N",
        help=f"training images, class-stratified (default: {LIKE} all but the validation images)")
    add("--val-size", type=int, metavar="N",
        help=f"validation images carved from the training split (default: {LIKE} 1000)")
    add("--epochs", type=int, metavar="E", help=f"training epochs (default: {LIKE} 10)")
    add("--filters", type=int, metavar="F", help=f"first-stage width (default: {LIKE} 16)")
    add("--cells-per-stage", type=int, metavar="N",
        help=f"normal cells between reductions (default: {LIKE} 2; 5 for an nb201 cell)")
    add("--seed", type=int, metavar="S",
        help=f"initial weights, data order, subset choice (default: {LIKE} 0)")
    add("--out", required=True, metavar="DIR", help="where model.keras and metrics.json go")
    add("--batch-size", type=int, metavar="B", help=f"default: {LIKE} 64")
    add("--lr", type=float, metavar="LR", help=f"SGD learning rate (default: {LIKE} 0.05)")
    add("--augment", action=argparse.BooleanOptionalAction,
        help="pad-4 random crop and horizontal flip (default: the run's, else off)")
    add("--cutout", type=int, metavar="PX", help="cutout square side (default: the run's, else 0)")
    add("--cosine", action=argparse.BooleanOptionalAction,
        help="cosine decay of the learning rate to 0 (default: the run's, else off)")
    add("--drop-path", type=float, metavar="P",
        help="drop-path rate (default: the run's, else 0; not for an nb201 cell)")
    add("--auxiliary-head", action=argparse.BooleanOptionalAction,
        help="auxiliary classifier after the second reduction, loss weight 0.4 (default: off; "
             "not for an nb201 cell)")
    add("--test-data", default=None, metavar="SRC",
        help="report test accuracy on SRC's test split ('cifar10', python batches' test_batch, "
             "<dir>/test/<class>/*, or a folder of class folders)")
    add("--backend", choices=BACKENDS, default=None,
        help="Keras backend (default: the run's with --like, else $KERAS_BACKEND or tensorflow)")
    add("--mixed-precision", action=argparse.BooleanOptionalAction,
        help="float16/bfloat16 compute (default: on with a GPU; refused without one)")
    add("--cpus", type=int, default=None, metavar="N", help="CPU threads (default: all cores)")
    add("--overwrite", action="store_true", help="replace a model already in --out")
    add("--quiet", action="store_true",
        help="no progress (default: a progress bar on a terminal, else a line per epoch)")


def prepare(args: argparse.Namespace) -> None:
    """Check the arguments (an ``--out`` that holds a model, the genotype, the flags), then select
    the backend (``--backend``, else the run's with ``--like``, else the process's): the CLI calls
    this before it imports Keras, so a refusal comes at once, not after TensorFlow's start-up.
    UserError for bad input, or for an unknown or uninstalled backend, or one other than the
    backend Keras already runs on."""
    from nasplay.runtime import backends
    from nasplay.cli import train_settings

    _check_out(Path(args.out), args.overwrite)
    args._train_plan = train_settings.plan(args)   # needs no Keras (nasplay.cli.train_settings)
    backend = args.backend or train_settings.run_backend(args)
    if backend is not None:
        backends.select_backend(backend)
    else:
        backends.check_backend(backends.active_backend())


def run(args: argparse.Namespace) -> int:
    from nasplay.cli import train_settings

    out = Path(args.out)
    if getattr(args, "_train_plan", None) is None:
        prepare(args)  # the CLI did it already, before Keras; otherwise checks, backend here
    plan = args._train_plan
    config, data, test = _load(plan, args)

    from nasplay.runtime import devices
    from nasplay.scorers.proxy import training as proxy

    started = time.time()
    verbose, callbacks = progress(args.quiet)
    model, metrics = proxy.train(plan.genotype, config, data=data, test_data=test,
                                 verbose=verbose, callbacks=callbacks)
    record = {"metrics": metrics, "genotype": args.genotype, "like": _str(plan.like),
              "genotype_hash": plan.genotype.hash(), "data": config.data,
              "test_data": args.test_data, "config": config.to_dict(),
              "devices": devices.current().to_dict(), "started_at": started,
              "finished_at": time.time()}
    _write_outputs(out, model, plan.genotype, record)
    _print_summary(out, metrics, train_settings.search_score(plan.like, plan.genotype))
    return 0


def progress(quiet: bool, stream=None) -> tuple[int, list]:
    """``fit``'s verbosity and callbacks: Keras's progress bar on a terminal; a plain line per
    epoch when the output is a file or a pipe (the bar's carriage returns, backspaces and
    escape codes would fill a redirected log); nothing with ``--quiet``."""
    import sys

    stream = stream or sys.stdout
    if quiet:
        return 0, []
    if getattr(stream, "isatty", lambda: False)():
        return 1, []
    return 0, [epoch_lines(stream)]


def epoch_lines(stream):
    """A Keras callback that writes ``epoch 2/10: accuracy 0.3125, loss 1.9876 (4.2 s)`` to
    ``stream`` at each epoch's end: whole lines only."""
    import keras

    class EpochLines(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            values = ", ".join(f"{k} {v:.4f}" for k, v in sorted((logs or {}).items())
                               if isinstance(v, (int, float)))
            seconds = time.perf_counter() - getattr(self, "_started", time.perf_counter())
            epochs = self.params.get("epochs") if self.params else None
            stream.write(f"epoch {epoch + 1}{f'/{epochs}' if epochs else ''}: {values} "
                         f"({seconds:.1f} s)\n")
            stream.flush()

    return EpochLines()


def _load(plan, args) -> tuple:
    """Devices, then the data and its subsets (all checks before any output): returns the final
    ProxyConfig, the training source and the test split (or None)."""
    from nasplay.runtime import devices

    config = plan.config.replace(gpus=devices.visible_gpus() > 0)
    # devices first, before anything creates a tensor
    devices.configure(config.cpus, config.gpus, config.mixed_precision)
    from nasplay.scorers.proxy import training as proxy
    from nasplay.data import load_source

    data = load_source(config.data)
    if plan.all_training_images:
        config = config.replace(train_size=len(data) - config.val_size)
        if config.train_size < config.batch_size:
            raise UserError(f"{config.data} has {len(data)} training images: too few for "
                            f"{config.val_size} validation images and one batch of "
                            f"{config.batch_size}")
    test = _load_test(args.test_data, data) if args.test_data else None
    proxy.subsets(config, data)  # subset larger than the data: DataError, before any output
    return config, data, test


def _write_outputs(out: Path, model, genotype, record: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    _save_model(model, out / MODEL_FILE)
    atomic_write_text(out / GENOTYPE_FILE, genotype.to_json() + "\n")
    atomic_write_text(out / METRICS_FILE, json.dumps(record, indent=2, default=float) + "\n")


def _print_summary(out: Path, metrics: dict, searched: tuple[str, float] | None) -> None:
    summary = f"val_accuracy {metrics['val_accuracy']:.4f}"
    if searched is not None:
        summary += f" (the search scored it {searched[1]:.4f} {searched[0]})"
    if "test_accuracy" in metrics:
        summary += f", test_accuracy {metrics['test_accuracy']:.4f}"
    flops = metrics.get("flops")
    size = f"{metrics['params']:,} parameters"
    if flops is not None:
        size += f", {flops / 1e6:.1f}M multiply-adds"
    print(f"{summary}; {size}; wrote {out / MODEL_FILE} and {out / METRICS_FILE}")


def _str(path) -> str | None:
    return None if path is None else str(path)


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a directory")
    if (out / MODEL_FILE).exists() and not overwrite:
        raise UserError(f"--out {out} already holds {MODEL_FILE}; pass --overwrite to replace "
                        f"it or choose another --out")


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

    Training may have used nasplay's fused SGD (a private subclass); the saved model keeps the
    trained weights, not the optimizer's state.
    """
    import keras

    from nasplay.scorers.proxy.training import loss_arguments

    model.compile(optimizer=keras.optimizers.SGD(), **loss_arguments(model), jit_compile=False)
    atomic_write(path, model.save)

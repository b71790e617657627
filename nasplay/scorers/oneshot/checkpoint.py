"""Supernet checkpoints: what a trained supernet is (its meta) and its weights, kill-safe.

A directory holds ``supernet.npz`` (weights, SGD momentum buffers, the controller's state, and
the meta as of that checkpoint) and ``supernet.json`` (the same meta, for people and for a run
that has not finished an epoch yet). Both are replaced atomically
(``search_space.files.atomic_write_bytes``), the weights first: a ``kill -9`` leaves the previous
epoch's checkpoint or the new one, never half of either, and the meta inside the weights file is
the one that counts.

The meta says what the supernet is: space, width, data and subsets (with a fingerprint of the
images, so a folder whose content changed is noticed), training settings and epochs done. A
supernet scores only the candidates of the space and data it was trained on, so loading checks
the fields the caller expects and refuses a mismatch in one line.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from nasplay.errors import UserError, first_line, plural
from search_space.files import atomic_write_bytes, atomic_write_text

META_FILE = "supernet.json"
WEIGHTS_FILE = "supernet.npz"
FORMAT = 2  # 2: the supernet has a head norm (cells.supernet); format 1 is refused
# settings that define a training run: a partial run resumes only with the same ones
TRAINING_FIELDS = ("seed", "sampler", "epochs", "batch_size", "learning_rate", "momentum",
                   "weight_decay", "affine_ops", "loose_mean", "shallow_epochs",
                   "shallow_learning_rate")


def source_id(data: str) -> str:
    """The data source as recorded: ``"cifar10"``, else the folder's absolute path."""
    return data if data == "cifar10" else os.path.abspath(os.path.expanduser(data))


def identity(space_name: str, config) -> dict:
    """Fields a supernet must match to score ``config``'s candidates: space, width, data."""
    return {"space": space_name, "filters": config.filters,
            "cells_per_stage": config.cells_per_stage, "data": source_id(config.data),
            "train_size": config.train_size, "val_size": config.val_size,
            "subset_seed": config.subset_seed}


expected_meta = identity  # the public name (nasplay.scorers.oneshot.supernet.expected_meta)


def training_identity(space_name: str, config) -> dict:
    """Fields a partial run must match to be resumed: the identity and the training settings."""
    return {**identity(space_name, config),
            **{name: getattr(config, name) for name in TRAINING_FIELDS}}


def fingerprint(sets) -> str:
    """A short digest of the subsets' labels and a sample of their images: the same source path
    with other content (a re-decoded or edited folder) gets another fingerprint."""
    digest = hashlib.sha256()
    for array in (sets.y_train, sets.y_val, sets.x_train[::max(1, len(sets.x_train) // 64)],
                  sets.x_val[::max(1, len(sets.x_val) // 64)]):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def new_meta(space_name: str, config, num_classes: int, input_shape, data_fingerprint) -> dict:
    return {"format": FORMAT, **training_identity(space_name, config),
            "num_classes": int(num_classes), "input_shape": [int(d) for d in input_shape],
            "data_fingerprint": data_fingerprint, "epochs_done": 0}


def save(directory, supernet, slots, meta: dict, controller_state: dict | None = None) -> None:
    """Write the weights file, then the meta file, each atomically (see module docstring)."""
    directory = Path(directory)
    arrays = {f"w{i:05d}": w for i, w in enumerate(supernet.get_weights())}
    arrays.update({f"m{i:05d}": np.asarray(s) for i, s in enumerate(slots)})
    arrays["meta"] = np.array(json.dumps(meta))
    arrays["controller"] = np.array(json.dumps(controller_state))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(directory / WEIGHTS_FILE, buffer.getvalue())
    write_meta(directory, meta)


def write_meta(directory, meta: dict) -> None:
    atomic_write_text(Path(directory) / META_FILE, json.dumps(meta, indent=2) + "\n")


class Checkpoint:
    """A checkpoint read from disk: ``meta``, ``weights`` and ``slots`` (lists of arrays) and
    ``controller_state`` (a dict or None)."""

    def __init__(self, meta, weights, slots, controller_state):
        self.meta, self.weights, self.slots = meta, weights, slots
        self.controller_state = controller_state


def read(directory) -> Checkpoint | None:
    """The checkpoint in ``directory``; None when it has none yet (a run that has not finished
    an epoch); a one-line UserError when it is unreadable."""
    path = Path(directory) / WEIGHTS_FILE
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            controller = json.loads(str(data["controller"]))
            weights = [data[k] for k in sorted(k for k in data.files if k.startswith("w"))]
            slots = [data[k] for k in sorted(k for k in data.files if k.startswith("m") and
                                             k != "meta")]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: corrupt supernet checkpoint ({first_line(e)}); delete "
                        f"{directory} and train again") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path}: not a supernet checkpoint of format {FORMAT} (an older "
                        f"nasplay's, or not a supernet); train a new one in another directory")
    return Checkpoint(_with_defaults(meta), weights, slots, controller)


def _with_defaults(meta: dict) -> dict:
    """Fields added to format 2 since: a supernet saved before ``affine_ops`` had affine ops,
    one saved before ``loose_mean`` summed its loose ends into the classifier, one saved before
    ``shallow_epochs`` was trained at its depth from the start."""
    return {"affine_ops": True, "loose_mean": False, "shallow_epochs": 0,
            "shallow_learning_rate": 0.05, **meta}


def read_meta(directory) -> dict | None:
    """The meta of the last checkpoint, else of a run started in ``directory``, else None."""
    checkpoint = read(directory)
    if checkpoint is not None:
        return checkpoint.meta
    path = Path(directory) / META_FILE
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: corrupt supernet meta ({first_line(e)})") from None
    return _with_defaults(meta) if isinstance(meta, dict) else meta


def check_matches(meta: dict, expect: dict, directory, what: str = "supernet") -> None:
    """One line naming the first field where ``meta`` differs from ``expect``."""
    for key, value in expect.items():
        if meta.get(key) != value:
            raise UserError(f"{what} in {directory} has {key} {meta.get(key)!r}, not {value!r}; "
                            f"train a new one in another directory")


def new_supernet(space, **sizes):
    """An untrained supernet of ``space`` (or its name), by the space's kind: a
    ``cells.supernet.SuperNet`` for cells of blocks, a ``cells.supernet_nb201.EdgeSuperNet``
    for ops on edges; ``sizes`` are both classes' keyword arguments. A setting the kind has no
    place for (``loose_mean`` on edges) is a one-line UserError."""
    from cells.supernet import SuperNet, check_space
    from cells.supernet_nb201 import EdgeSuperNet
    from search_space import EdgeSpace

    try:
        space = check_space(space)
        return (EdgeSuperNet if isinstance(space, EdgeSpace) else SuperNet)(space, **sizes)
    except ValueError as e:
        raise UserError(first_line(e)) from None


def build(meta: dict):
    """An untrained supernet of the meta's space and sizes."""
    return new_supernet(meta["space"], num_classes=meta["num_classes"], filters=meta["filters"],
                        cells_per_stage=meta["cells_per_stage"],
                        input_shape=tuple(meta["input_shape"]), affine_ops=meta["affine_ops"],
                        loose_mean=meta["loose_mean"])


def restore(supernet, checkpoint: Checkpoint, directory) -> None:
    """Set ``supernet``'s weights from ``checkpoint`` (shapes checked: a corrupt file says so)."""
    targets = supernet.weights
    shapes_ok = len(targets) == len(checkpoint.weights) and all(
        tuple(t.shape) == w.shape for t, w in zip(targets, checkpoint.weights))
    if not shapes_ok:
        raise UserError(f"{Path(directory) / WEIGHTS_FILE}: corrupt supernet checkpoint (its "
                        f"weights do not fit a {checkpoint.meta.get('space')} supernet of these "
                        f"sizes); delete {directory} and train again")
    supernet.set_weights(checkpoint.weights)


def load_supernet(directory, expect: dict | None = None, allow_partial: bool = False):
    """The trained supernet in ``directory`` (see ``supernet.load_supernet``)."""
    if not Path(directory).is_dir():
        raise UserError(f"no supernet in {directory}: no such directory; train one with "
                        f"nasplay.scorers.oneshot.supernet.train_supernet")
    checkpoint = read(directory)
    if checkpoint is None:
        meta = read_meta(directory)
        if meta is None:
            raise UserError(f"no supernet in {directory}: {WEIGHTS_FILE} is missing")
        raise UserError(f"supernet in {directory} has not finished an epoch yet (0 of "
                        f"{meta.get('epochs')}); resume its training first")
    meta = checkpoint.meta
    check_matches(meta, expect or {}, directory)
    if not allow_partial and meta["epochs_done"] < meta["epochs"]:
        raise UserError(f"supernet in {directory} has trained {meta['epochs_done']} of "
                        f"{plural(meta['epochs'], 'epoch')}; resume its training first")
    supernet = build(meta)
    restore(supernet, checkpoint, directory)
    return supernet

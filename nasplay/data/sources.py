"""Data for candidate evaluation: sources and seeded class-stratified subsets.

Every search step trains a candidate on a training subset and scores it on a validation subset.
Both are carved from the source's *training* split (the test split is for final reports only),
with a fixed seed, so every candidate of a search sees the same images.

Sources (``src``):

- ``"cifar10"``: ``keras.datasets.cifar10.load_data()``, downloaded once and kept by Keras in
  ``~/.keras/datasets``. The name always means this; write ``./cifar10`` for a folder so named.
- a folder of the official CIFAR-10 python batches (``data_batch_1``..``data_batch_5``,
  ``test_batch``, ``batches.meta``), directly or inside ``cifar-10-batches-py/``. They are
  pickles: read only files you trust, as with Keras's own loader.
- an image folder, ``<dir>/train/<class>/*.jpg|jpeg|png`` (with an optional ``<dir>/test/<class>``
  for the test split) or ``<dir>/<class>/*`` (no test split). Classes are the sorted sub-folder
  names of the training split, so CIFAR-10 folders keep CIFAR-10's label order. Images are
  decoded once and cached on disk (``nasplay.data.cache``). All images get the size of the first one
  (sorted by class, then file name): others are resized to it with a warning, because a network
  needs one input shape and failing on a few odd files would make most photo folders unusable.

Batches are made by ``nasplay.data.pipeline`` (numpy or tf.data, the same batches either way) and
image files decoded by ``nasplay.data.decode`` (TensorFlow or Pillow, the same pixels). TensorFlow
is imported only inside functions, and only under the TensorFlow backend: the CLI's start and
numpy-only uses (``stratified_split``) do not pay its import time, and a JAX or PyTorch process
does not start it. Under TensorFlow, decoding an image folder (a cache miss) and
``make_dataset`` start its runtime: in an evaluation process, call
``nasplay.runtime.devices.configure`` before them.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasplay.data import cache, decode
from nasplay.data.errors import DataError
from nasplay.errors import first_line, plural
# Per-channel mean and standard deviation of CIFAR-10's 50,000 training images, pixels in [0, 1].
# Fixed constants rather than statistics of the data at hand, so that training, validation and
# test pipelines, and subsets of any size, all normalize alike. Pass others for other data.
from nasplay.data.pipeline import CIFAR10_MEAN, CIFAR10_STD  # noqa: F401  (public here too)

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "test")
_FIX_HINT = ("point --data at a local copy: an image folder (DIR/train/<class>/*.jpg) or a "
             "folder holding the CIFAR-10 python batches (data_batch_1..5, test_batch)")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and labels of one split of a source."""

    x: np.ndarray       # uint8 (N, H, W, 3); read-only (memory-mapped) when it came from the cache
    y: np.ndarray       # int64 (N,), indices into classes
    classes: list[str]  # class names in label order

    def __post_init__(self):
        if self.x.ndim != 4 or self.x.shape[-1] != 3 or self.x.dtype != np.uint8:
            raise ValueError(f"x must be uint8 of shape (N, H, W, 3), "
                             f"got {self.x.dtype} {self.x.shape}")
        if self.y.shape != (len(self.x),):
            raise ValueError(f"y must have shape ({len(self.x)},) to match x, got {self.y.shape}")

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, idx: np.ndarray | Sequence[int]) -> Dataset:
        """The images at ``idx`` (copied into memory), with the same classes."""
        return Dataset(self.x[idx], self.y[idx], self.classes)


def load_source(src: str = "cifar10", split: str = "train",
                cache_dir: str | os.PathLike | None = None) -> Dataset:
    """One split ("train" or "test") of the source ``src`` (see the module docstring).

    ``cache_dir`` is where decoded image folders are kept (default ``$NASPLAY_CACHE`` or
    ``~/.cache/nasplay``). Raises ``DataError`` naming what was tried when nothing can be read.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if src == "cifar10":
        return _load_keras_cifar10(split)
    root = Path(src).expanduser()
    if not src or not root.is_dir():
        raise DataError(f"data source {src!r} is neither 'cifar10' nor a directory "
                        f"({root.absolute()} is not one); {_FIX_HINT}")
    for batches in (root, root / "cifar-10-batches-py"):
        if (batches / "data_batch_1").is_file() or (batches / "test_batch").is_file():
            return _load_python_batches(batches, split)
    return _load_image_folder(root, split, cache_dir)


def _load_keras_cifar10(split: str) -> Dataset:
    import keras

    try:
        train, test = keras.datasets.cifar10.load_data()
    except Exception as e:  # Keras raises a bare Exception for a failed download
        raise DataError(f"cannot load 'cifar10' with keras.datasets.cifar10.load_data() "
                        f"({first_line(e)}); offline? {_FIX_HINT}") from e
    x, y = train if split == "train" else test
    return Dataset(x, y.reshape(-1).astype(np.int64), list(CIFAR10_CLASSES))


def _load_python_batches(folder: Path, split: str) -> Dataset:
    """The official CIFAR-10 python format: pickled dicts with bytes keys b"data", b"labels".

    b"data" is N x 3072 uint8, channel-major (1024 red, 1024 green, 1024 blue values per image).
    The training split is every ``data_batch_<n>`` present, in order of n.
    """
    if split == "train":
        numbered = {int(m[1]): p for p in folder.iterdir()
                    if (m := re.fullmatch(r"data_batch_(\d+)", p.name))}
        paths = [numbered[n] for n in sorted(numbered)]
    else:
        paths = [folder / "test_batch"] if (folder / "test_batch").is_file() else []
    if not paths:
        wanted = "data_batch_1..5" if split == "train" else "test_batch"
        raise DataError(f"no {split} split in the CIFAR-10 python batches in {folder} "
                        f"({wanted} is missing)")
    batches = [_read_batch(p) for p in paths]
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    classes = list(CIFAR10_CLASSES)
    if (folder / "batches.meta").is_file():
        try:
            classes = [n.decode() for n in _unpickle(folder / "batches.meta")[b"label_names"]]
        except (KeyError, TypeError, AttributeError) as e:
            raise DataError(f"{folder / 'batches.meta'} has no b'label_names' list of bytes "
                            f"({first_line(e)})") from e
    if len(y) and not 0 <= y.min() <= y.max() < len(classes):
        raise DataError(f"labels in {folder} lie outside 0..{len(classes) - 1} "
                        f"({len(classes)} classes)")
    return Dataset(x, y, classes)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except Exception as e:  # a corrupt pickle can raise almost anything
        raise DataError(f"cannot read the CIFAR-10 python batch {path} ({first_line(e)}); "
                        f"replace it with an intact copy") from e


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path} is not a CIFAR-10 python batch (no usable b'data' and "
                        f"b'labels': {first_line(e)})") from e
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),):
        raise DataError(f"{path} is not a CIFAR-10 python batch: data {data.shape}, labels "
                        f"{labels.shape}, expected (N, 3072) and (N,)")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _load_image_folder(root: Path, split: str, cache_dir) -> Dataset:
    layouts = f"{root}/train/<class>/*.jpg|jpeg|png or {root}/<class>/*"
    nested = (root / "train").is_dir()
    train_root = root / "train" if nested else root
    split_root = train_root if split == "train" else root / "test"
    if split == "test" and not (nested and split_root.is_dir()):
        raise DataError(f"no test split in {root}: expected {root}/test/<class>/* beside "
                        f"{root}/train/<class>/*")
    classes = _subfolders(train_root)
    if not classes:
        raise DataError(f"no class folders in {train_root}: expected {layouts}; {_FIX_HINT}")
    unknown = sorted(set(_subfolders(split_root)) - set(classes))
    if unknown:
        raise DataError(f"{split_root} has classes the training split lacks: {unknown}")

    listing, fingerprint = _list_images(split_root, classes)
    labels = np.repeat([classes.index(name) for name in listing],
                       [len(names) for names in listing.values()]).astype(np.int64)
    if not len(labels):
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the class folders of "
                        f"{split_root}: expected {layouts}; {_FIX_HINT}")

    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", root.resolve().name) or "root"
    where = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:8]
    entry = cache.cache_root(cache_dir) / f"{slug}-{where}-{split}" / f"{fingerprint}.npy"
    x = cache.load_array(entry)
    if x is None or x.ndim != 4 or x.shape[0] != len(labels) or x.shape[-1] != 3:
        # Paths are built only here: 50,000 of them cost more than the cache hit itself.
        x = decode.decode_images([os.path.join(split_root, name, file)
                                  for name, names in listing.items() for file in names])
        cache.save_array(entry, x)
    return Dataset(x, labels, classes)


def _list_images(split_root: Path, classes: list[str]) -> tuple[dict[str, list[str]], str]:
    """Sorted image file names per class folder present, and a fingerprint for the cache key.

    The fingerprint covers the decoding (v2: JPEGs with the accurate DCT, ``nasplay.data.decode``),
    folder mtimes and file names: adding, removing or renaming an image
    invalidates the cache entry at the cost of this one listing. Rewriting a file in place under
    the same name does not (that would take a stat per file, ~0.3 s for 50,000): delete the
    cache entry then.
    """
    listing, fingerprint = {}, hashlib.sha256(f"v2\n{split_root.resolve()}".encode())
    for name in classes:
        folder = split_root / name
        if not folder.is_dir():
            continue
        with os.scandir(folder) as entries:
            listing[name] = sorted(e.name for e in entries
                                   if e.name.lower().endswith(IMAGE_SUFFIXES) and e.is_file())
        fingerprint.update(f"\n{name}\n{folder.stat().st_mtime_ns}\n".encode())
        fingerprint.update("\n".join(listing[name]).encode())
    return listing, fingerprint.hexdigest()[:32]


def _subfolders(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))


def _balanced_counts(total: int, available: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """How many of ``total`` items to take from each class: as equal as ``available`` allows.

    Water filling over classes sorted by availability: a class short of its fair share gives all
    it has and the rest is shared among the others, so counts of classes with enough images
    differ by at most one. ``tiebreak`` (a random permutation) decides which classes get the
    extra ones, so no class is favoured by its label. Requires total <= available.sum().
    """
    counts = np.zeros_like(available)
    remaining = total
    order = np.lexsort((tiebreak, available))
    for i, c in enumerate(order):
        counts[c] = min(available[c], remaining // (len(order) - i))
        remaining -= counts[c]
    return counts


def stratified_split(y: np.ndarray, train_size: int, val_size: int,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted, disjoint index arrays of a training and a validation subset of labels ``y``.

    Class-stratified (per-class counts differ by at most one where classes have the images) and
    a function of (y, sizes, seed) only. The validation subset is carved first from a per-class
    permutation and the training subset from what follows, so the validation images do not
    depend on ``train_size`` and a larger training subset contains a smaller one (same seed):
    proxy scores at different budgets are then measured on the same validation images.
    """
    y = np.asarray(y)
    if train_size < 0 or val_size < 0:
        raise DataError(f"subset sizes must be >= 0, got train {train_size}, val {val_size}")
    if train_size + val_size > len(y):
        raise DataError(f"a subset of {train_size} training + {val_size} validation images "
                        f"is larger than the {plural(len(y), 'image')} in the training split")
    rng = np.random.default_rng(seed)
    classes, y_idx = np.unique(y, return_inverse=True)
    members = [rng.permutation(np.flatnonzero(y_idx == c)) for c in range(len(classes))]
    available = np.array([len(m) for m in members])
    val_counts = _balanced_counts(val_size, available, rng.permutation(len(classes)))
    train_counts = _balanced_counts(train_size, available - val_counts,
                                    rng.permutation(len(classes)))
    none = np.empty(0, dtype=np.int64)  # so that no classes at all gives empty subsets
    val = np.concatenate([none, *(m[:v] for m, v in zip(members, val_counts))])
    train = np.concatenate([none, *(m[v:v + t] for m, v, t in
                                    zip(members, val_counts, train_counts))])
    return np.sort(train), np.sort(val)


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, training: bool,
                 augment: bool = False, cutout: int = 0, seed: int = 0,
                 mean: Sequence[float] = CIFAR10_MEAN, std: Sequence[float] = CIFAR10_STD):
    """A ``tf.data.Dataset`` of (float32 normalized images, labels) batches (TensorFlow only).

    Training pipelines (``training=True``) draw their order and augmentation from
    ``nasplay.data.pipeline.BatchPlan`` (seeded by ``seed``; see there for the augmentation), every
    iteration of the dataset being the next epoch, and drop the last partial batch. Evaluation
    pipelines keep order and every image. The proxy itself streams a whole run through
    ``nasplay.data.pipeline`` (any backend); this is for scripts that want a ``tf.data`` pipeline.
    """
    from nasplay.data.pipeline import BatchPlan, scale_offset, tf_batches

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if (augment or cutout) and not training:
        raise ValueError("augmentation (augment, cutout) is for training pipelines only")
    if len(x) != len(y):
        raise ValueError(f"x and y differ in length: {len(x)} and {len(y)}")
    if training:
        plan = BatchPlan(len(x), batch_size, None, augment, cutout, seed)
        return tf_batches(x, y, plan, mean=mean, std=std, next_epoch_per_iteration=True)
    import tensorflow as tf

    scale, offset = (tf.constant(v) for v in scale_offset(mean, std))
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).map(
        lambda images, labels: (tf.cast(images, tf.float32) * scale - offset, labels))

"""Disk cache of decoded arrays, so a folder of images is decoded once rather than on every run.

Decoding CIFAR-10's 50,000 JPEG files takes seconds; reading the decoded uint8 array back with
``np.load(mmap_mode="r")`` costs a page-cache read. An entry is one ``.npy`` file whose name is
a fingerprint of what it was decoded from; the caller computes the fingerprint, this module only
stores, loads and replaces arrays.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from search_space.files import atomic_write


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where entries live: ``cache_dir``, else ``$NASPLAY_CACHE``, else ``~/.cache/nasplay``."""
    if cache_dir is None:
        cache_dir = os.environ.get("NASPLAY_CACHE") or Path.home() / ".cache" / "nasplay"
    return Path(cache_dir).expanduser()


def load_array(path: Path) -> np.ndarray | None:
    """The read-only, memory-mapped array stored at ``path``; None when missing or unreadable.

    None means "rebuild": a truncated or corrupt file (a killed writer, a full disk) must never
    stop a run, only cost it a decode.
    """
    try:
        return np.asarray(np.load(path, mmap_mode="r", allow_pickle=False))
    except (OSError, ValueError, EOFError):
        return None


def save_array(path: Path, array: np.ndarray) -> None:
    """Store ``array`` at ``path`` atomically and drop the other entries in its folder.

    Written with ``search_space.files.atomic_write`` (a temporary file, fsync, rename), so a
    concurrent reader sees either no entry or a whole one. The other ``.npy`` files in the folder
    are older versions of the same source (the caller keeps one folder per source and split),
    removed so that editing a dataset does not leave stale copies behind. A cache that cannot be
    written (read-only home, full disk) is a warning, not an error: the data is in memory
    either way.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: np.save(tmp, array, allow_pickle=False))
        for stale in path.parent.glob("*.npy"):
            if stale != path and not stale.name.startswith("."):  # not a writer's temp file
                stale.unlink(missing_ok=True)
    except OSError as e:
        warnings.warn(f"could not write the data cache {path}: {e}", stacklevel=2)

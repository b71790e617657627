"""Atomic file replacement: the one way every part of nasplay writes a file that must survive a kill.

A reader (a resumed search, ``nasplay inspect`` on a running search, Ray restoring a searcher)
must see a file's old version or its new one, never half of either. So every write goes to a
temporary file in the same folder, is flushed and ``fsync``-ed, and is renamed over the target
with ``os.replace`` (atomic on POSIX and Windows); the folder is then ``fsync``-ed so the rename
itself survives a power cut. This is what Ray's ``Searcher.save_to_dir`` and Keras's checkpoint
writers do too.

It lives in ``search_space`` because that is the lowest layer: ``searchers`` (the Ray adapter's
checkpoints) and ``nasplay`` (run records, data cache, exported models) both import it, and it
needs nothing but the standard library.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write(path, write: Callable[[Path], None]) -> None:
    """Replace ``path`` with what ``write(tmp_path)`` writes to a temporary path beside it.

    ``write`` may be anything that writes one file to the path it is given (``model.save``,
    ``np.save``, ``Path.write_text``); the temporary path keeps ``path``'s suffix, since some
    writers choose the format by it. On any error the temporary file is removed and ``path`` is
    left as it was.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.",
                                    suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual mode
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) all at once."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_bytes(path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder) -> None:
    """Make a rename or a new file in ``folder`` survive a power cut (a no-op where the OS
    cannot open folders, such as Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

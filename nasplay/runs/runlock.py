"""One search per run directory: an OS file lock held for as long as the search runs.

Two searches writing one run (a second terminal's ``--resume``, a script started twice) would
interleave ``trials.jsonl`` and overwrite each other's searcher state. The driver holds an
exclusive ``flock`` on ``DIR/.lock`` (which names its pid) from before it writes anything until it
exits; the kernel drops the lock when the process dies, so ``kill -9`` never leaves a stale one.
A second search on a held directory fails at once, naming the holder. Readers (``inspect``,
``export``) never lock and keep working on a held directory.

On a system without ``fcntl`` (Windows) the lock is not taken.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from nasplay.errors import UserError
from nasplay.runs.rundir import LOCK_FILE

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


@contextlib.contextmanager
def holding(run_dir):
    """Hold ``run_dir``'s lock inside the block (creating the folder if needed); a folder this
    created is removed again if the block fails before anything but the lock was written."""
    run_dir = Path(run_dir)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    lock_path = run_dir / LOCK_FILE
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, run_dir)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield
        except BaseException:
            if created and [p.name for p in run_dir.iterdir()] == [LOCK_FILE]:
                lock_path.unlink(missing_ok=True)
                run_dir.rmdir()
            raise
    finally:
        os.close(fd)  # releases the lock


def _acquire(fd: int, run_dir: Path) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
        raise UserError(f"--run-dir {run_dir} is in use by another search (pid {holder}); wait "
                        f"for it to finish or stop it, then --resume") from None


def holder(run_dir) -> int | None:
    """The pid of the search holding ``run_dir``, or None if none does."""
    lock_path = Path(run_dir) / LOCK_FILE
    if fcntl is None or not lock_path.exists():
        return None
    fd = os.open(lock_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)
    return None

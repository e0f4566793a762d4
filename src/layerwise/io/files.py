"""Atomic file writes: a file is replaced whole or not at all.

A temp file next to the target is written, flushed and fsynced, renamed over the target with
``os.replace`` (atomic on POSIX and Windows), and the directory is fsynced; so a crash or a
full disk leaves the previous file intact. Every file layerwise writes goes through here.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["PathLike", "atomic_write", "atomic_writer", "save_png"]

PathLike = str | os.PathLike


def _umask() -> int:
    # /proc avoids os.umask's set-and-restore, which races with other threads creating files.
    with suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable. Not every platform (Windows) or filesystem can fsync a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(path: PathLike) -> Iterator[BinaryIO]:
    """Open a temp file next to ``path`` for binary writing; on a clean exit it replaces ``path``.

    The temp file is flushed and fsynced, renamed over ``path`` with ``os.replace`` (atomic on
    POSIX and Windows), and the directory is fsynced. If the block raises, the temp file is
    removed and whatever was at ``path`` before is untouched. The new file gets the old file's
    permissions, or the usual ones (0o666 & ~umask) when there was none — ``mkstemp`` alone
    would leave it private (0o600).
    """
    path = Path(path)
    directory = path.parent
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        with suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            # A failed write (ENOSPC, EIO) names no file; say which one could not be written.
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    _fsync_dir(directory)


def atomic_write(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see ``atomic_writer``); returns the path."""
    with atomic_writer(path) as f:
        f.write(data)
    return Path(path)


def save_png(fig: Any, path: PathLike) -> Path:
    """Write a matplotlib figure as PNG, atomically, and close it."""
    import matplotlib.pyplot as plt  # ~0.3 s to import: only for the commands that draw

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(path, buffer.getvalue())

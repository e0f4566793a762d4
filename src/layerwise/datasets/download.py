"""Downloading a file from a list of mirrors, verified before it is kept, written atomically.

A download goes to a temporary file in the destination directory, is fsynced, checked by the
caller's ``verify`` function and only then renamed into place (``os.replace`` is atomic on
POSIX and Windows). A failed or interrupted download therefore never leaves a partial or
unverified file under the final name, and the temporary file is removed. Only the standard
library (urllib) is used.
"""

from __future__ import annotations

import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from http.client import HTTPException
from pathlib import Path
from typing import TypeVar

from tqdm import tqdm

from ..errors import DownloadError, LayerwiseError

T = TypeVar("T")

#: Seconds to wait for a connection or for the next bytes of a response.
DEFAULT_TIMEOUT = 30.0
#: A mirror sending more than this for one file is refused (the largest real file is ~26 MiB).
MAX_DOWNLOAD_BYTES = 256 * 2**20
_CHUNK = 1 << 16
_SCHEMES = ("http://", "https://", "file://")


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible (nor needed) on Windows.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_in(directory: Path, name: str) -> tuple[int, Path]:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
    return fd, Path(tmp)


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temp file in the same directory, fsync, rename.

    Readers see either the old file or the complete new one, never a partial write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_in(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def mirror_url(mirror: str, filename: str) -> str:
    """``mirror`` joined with ``filename`` (a missing slash between them is added)."""
    return mirror + filename if mirror.endswith("/") else f"{mirror}/{filename}"


def _show_progress(progress: bool) -> bool:
    # A bar is for a person watching a terminal; in logs and CI it is only noise.
    try:
        return progress and sys.stderr.isatty()
    except (AttributeError, ValueError):  # stderr replaced or closed
        return False


def _fetch_to(url: str, fd: int, *, timeout: float, max_bytes: int, progress: bool) -> None:
    """Stream ``url`` into the open file ``fd``; raise OSError/HTTPException with a reason."""
    if not url.startswith(_SCHEMES):
        raise ValueError(f"unsupported URL scheme (use one of {', '.join(_SCHEMES)})")
    request = urllib.request.Request(url, headers={"User-Agent": "layerwise"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        content_type = response.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() == "text/html":
            raise ValueError("the server returned an HTML page, not the file")
        length_header = response.headers.get("Content-Length")
        length = int(length_header) if length_header and length_header.isdigit() else None
        if length is not None and length > max_bytes:
            raise ValueError(f"file too large ({length} bytes; limit {max_bytes})")
        received = 0
        with (
            os.fdopen(fd, "wb", closefd=False) as out,
            tqdm(
                total=length,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=url.rsplit("/", 1)[-1],
                disable=not _show_progress(progress),
                leave=False,
            ) as bar,
        ):
            while True:
                chunk = response.read(_CHUNK)
                if not chunk:
                    break
                received += len(chunk)
                if received > max_bytes:
                    raise ValueError(f"file too large (more than {max_bytes} bytes)")
                out.write(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        # http.client's read(n) returns b"" when the server closes early instead of raising,
        # so a transfer cut short is only visible by counting.
        if length is not None and received != length:
            raise ValueError(f"truncated transfer: received {received} of {length} bytes")


def _reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return f"timed out after {timeout:g} s"
        return str(getattr(reason, "strerror", None) or reason)
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g} s"
    return str(exc) or type(exc).__name__


def download(
    filename: str,
    mirrors: Sequence[str],
    dest_dir: str | os.PathLike[str],
    verify: Callable[[Path, str], T],
    *,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    hint: str = "",
) -> tuple[Path, T]:
    """Download ``filename`` from the first mirror that delivers a file passing ``verify``.

    Mirrors are tried in order. ``verify(temp_path, url)`` must return a value (passed back
    to the caller, e.g. the parsed array, so the file is not read twice) or raise a
    :class:`~layerwise.errors.LayerwiseError` (typically ``FormatError`` for a bad checksum);
    the next mirror is then tried. A file that fails verification is deleted, never kept.
    Returns ``(dest_dir / filename, verify's value)``. When every mirror fails, raises
    :class:`~layerwise.errors.DownloadError` listing each URL and why it failed.
    """
    dest = Path(dest_dir)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the download directory {dest}: {exc}") from exc
    final = dest / filename
    failures: list[str] = []
    for mirror in mirrors:
        url = mirror_url(mirror, filename)
        try:
            fd, tmp = _temp_in(dest, filename)
        except OSError as exc:
            raise DownloadError(f"cannot write to the download directory {dest}: {exc}") from exc
        kept = False
        try:
            try:
                _fetch_to(url, fd, timeout=timeout, max_bytes=max_bytes, progress=progress)
            finally:
                os.close(fd)
            value = verify(tmp, url)
            os.replace(tmp, final)
            kept = True
        except (OSError, HTTPException, ValueError, LayerwiseError) as exc:
            failures.append(f"{url}: {_reason(exc, timeout)}")
        finally:
            if not kept:
                tmp.unlink(missing_ok=True)
        if kept:
            _fsync_dir(dest)
            return final, value
    tried = "\n".join(f"  - {line}" for line in failures) or "  (no mirrors configured)"
    message = f"could not download {filename} from any mirror:\n{tried}"
    if hint:
        message += f"\n{hint}"
    raise DownloadError(message)

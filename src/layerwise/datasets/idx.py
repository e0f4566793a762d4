"""The IDX file format (MNIST, Fashion-MNIST), read strictly and written atomically.

An IDX file is a 4-byte magic number ``00 00 <dtype code> <ndim>``, then ``ndim`` big-endian
uint32 sizes, then the array in C order, big-endian. The files are usually distributed
gzip-compressed; :func:`read_idx` tells the two apart by their first bytes, not by the name.

Every problem (wrong magic, unknown dtype code, sizes that disagree with the payload in
either direction, truncated or corrupt gzip, a ``.gz`` that is not gzip, an empty file, a
checksum mismatch) raises :class:`~layerwise.errors.FormatError` naming the file and the
problem; nothing else escapes for malformed input.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import FormatError, InputError
from .download import atomic_write

#: IDX dtype code -> NumPy dtype as stored (big-endian for multi-byte types).
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("=") if dt.itemsize > 1 else dt: code for code, dt in IDX_DTYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"
# Decompress in bounded chunks: a header may claim terabytes, and we must find out the
# payload is short without ever allocating what the header claims.
_CHUNK = 1 << 20


def _name_of(source: object, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    return os.fspath(source)  # type: ignore[arg-type]


class _Reader:
    """Reads the decompressed stream in bounded chunks and hashes what it reads."""

    def __init__(self, stream: BinaryIO, name: str, compressed: bool) -> None:
        self.stream = stream
        self.name = name
        self.compressed = compressed
        self.md5 = hashlib.md5(usedforsecurity=False)

    def read(self, n: int) -> bytearray:
        """Up to ``n`` bytes; fewer only at the end of the data."""
        out = bytearray()
        while len(out) < n:
            try:
                chunk = self.stream.read(min(_CHUNK, n - len(out)))
            except EOFError as exc:  # gzip stream cut before its end marker
                raise FormatError(f"{self.name}: truncated gzip data ({exc})") from exc
            except (OSError, zlib.error) as exc:  # BadGzipFile, CRC/length mismatch, bad deflate
                raise FormatError(f"{self.name}: corrupt gzip data ({exc})") from exc
            if not chunk:
                break
            out += chunk
        self.md5.update(out)
        return out


def _parse(reader: _Reader, max_bytes: int | None) -> np.ndarray:
    name = reader.name
    magic = reader.read(4)
    if len(magic) == 0:
        raise FormatError(f"{name}: empty {'gzip stream' if reader.compressed else 'file'}")
    if len(magic) < 4:
        raise FormatError(f"{name}: truncated IDX header ({len(magic)} of 4 magic bytes)")
    if magic[0] != 0 or magic[1] != 0:
        raise FormatError(
            f"{name}: not an IDX file: wrong magic number {bytes(magic).hex(' ')} "
            "(an IDX file starts with 00 00 <dtype code> <ndim>)"
        )
    code, ndim = magic[2], magic[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise FormatError(f"{name}: unknown IDX dtype code 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise FormatError(f"{name}: IDX header says 0 dimensions")
    raw_dims = reader.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise FormatError(
            f"{name}: truncated IDX header: {ndim} dimensions need {4 * ndim} bytes of sizes, "
            f"got {len(raw_dims)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(bytes(raw_dims), dtype=">u4"))
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=object)) * dtype.itemsize
    if max_bytes is not None and expected > max_bytes:
        raise FormatError(
            f"{name}: IDX header claims shape {dims} ({expected} bytes), more than the "
            f"{max_bytes} bytes allowed for this file"
        )
    payload = reader.read(expected)
    if len(payload) < expected:
        raise FormatError(
            f"{name}: truncated IDX data: shape {dims} of {dtype.name} needs {expected} bytes, "
            f"the file holds {len(payload)}"
        )
    if reader.read(1):
        raise FormatError(
            f"{name}: trailing bytes after the IDX data: shape {dims} of {dtype.name} "
            f"needs exactly {expected} bytes"
        )
    # frombuffer over a bytearray gives a writable array without a copy; multi-byte types
    # are converted to native byte order (one copy) so arithmetic on them is fast.
    array = np.frombuffer(payload, dtype=dtype).reshape(dims)
    if dtype.itemsize > 1:
        array = array.astype(dtype.newbyteorder("="))
    return array


def _open(
    source: str | os.PathLike[str] | bytes, name: str
) -> tuple[BinaryIO, BinaryIO, bool]:
    """(underlying file, stream of the IDX bytes, compressed?). Gzip is told by its magic, not
    by the name. Close both: GzipFile does not close a file object it was handed."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        base: BinaryIO = io.BytesIO(bytes(source))
    else:
        try:
            base = open(source, "rb")  # closed by the caller's ``with``
        except OSError as exc:
            raise FormatError(f"{name}: cannot open: {exc.strerror or exc}") from exc
    try:
        head = base.read(2)
        base.seek(0)
        if not head:
            raise FormatError(f"{name}: empty file")
        if head == _GZIP_MAGIC:
            return base, gzip.GzipFile(fileobj=base, mode="rb"), True  # type: ignore[return-value]
        if name.endswith(".gz"):
            raise FormatError(
                f"{name}: named .gz but is not gzip (starts with {head.hex(' ')}, not 1f 8b)"
            )
        return base, base, False
    except BaseException:
        base.close()
        raise


def read_idx(
    source: str | os.PathLike[str] | bytes,
    *,
    md5: str | None = None,
    max_bytes: int | None = None,
    name: str | None = None,
) -> np.ndarray:
    """Read an IDX file (raw or gzip, told apart by its first bytes) into a NumPy array.

    ``source`` is a path or the file's bytes. ``md5``, if given, is checked against the
    *decompressed* IDX bytes (mirrors re-compress the files, so the .gz bytes vary while the
    IDX content does not). ``max_bytes`` caps the payload size the header may claim (a guard
    against decompression bombs when the true size is known). ``name`` is used in error
    messages instead of the path. Returns a writable array in native byte order.
    """
    label = _name_of(source, name)
    base, stream, compressed = _open(source, label)
    with base, stream:
        reader = _Reader(stream, label, compressed)
        array = _parse(reader, max_bytes)
    if md5 is not None:
        actual = reader.md5.hexdigest()
        if actual != md5.lower():
            raise FormatError(
                f"{label}: checksum mismatch: md5 of the decompressed IDX data is {actual}, "
                f"expected {md5.lower()}"
            )
    return array


def idx_md5(source: str | os.PathLike[str] | bytes) -> str:
    """md5 (hex) of the decompressed IDX data, after validating the file like read_idx."""
    label = _name_of(source, None)
    base, stream, compressed = _open(source, label)
    with base, stream:
        reader = _Reader(stream, label, compressed)
        _parse(reader, None)
    return reader.md5.hexdigest()


def idx_bytes(array: np.ndarray) -> bytes:
    """The raw (uncompressed) IDX encoding of ``array``."""
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=") if array.dtype.itemsize > 1 else array.dtype
    code = _CODES.get(key)
    if code is None:
        supported = ", ".join(dt.name for dt in _CODES)
        raise InputError(f"write_idx: dtype {array.dtype} has no IDX code (supported: {supported})")
    if not 1 <= array.ndim <= 255:
        raise InputError(f"write_idx: IDX stores 1 to 255 dimensions, got {array.ndim}")
    if any(d > 0xFFFFFFFF for d in array.shape):
        raise InputError(f"write_idx: dimension too large for IDX: {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()


def write_idx(path: str | os.PathLike[str], array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write ``array`` as an IDX file, atomically (temp file + fsync + rename).

    Gzip-compressed when ``compress`` is true, or when it is None and the name ends in
    ``.gz``. The gzip header carries no timestamp, so the same array gives the same bytes.
    """
    path = Path(path)
    data = idx_bytes(array)
    if compress is None:
        compress = path.name.endswith(".gz")
    if compress:
        data = gzip.compress(data, mtime=0)
    atomic_write(path, data)
    return path

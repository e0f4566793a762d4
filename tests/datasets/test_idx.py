"""The IDX reader/writer: round trips, every malformed case, and fuzzing."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerwise.datasets import idx_md5, read_idx, write_idx
from layerwise.datasets.download import atomic_write
from layerwise.datasets.idx import IDX_DTYPES, idx_bytes
from layerwise.errors import FormatError, InputError

DTYPES = [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]
SHAPES = {1: (7,), 2: (3, 5), 3: (2, 3, 4), 4: (2, 1, 3, 2)}


def _sample(dtype: type, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    if info is not None:
        a = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
        a.flat[0], a.flat[-1] = info.min, info.max  # the extremes survive the byte swap
        return a
    a = rng.standard_normal(shape).astype(dtype) * 1e3
    a.flat[0] = np.finfo(dtype).max
    a.flat[-1] = -np.inf
    return a


def _header(code: int, dims: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("ndim", [1, 2, 3, 4])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_every_dtype_and_ndim(tmp_path, dtype, ndim, suffix):
    a = _sample(dtype, SHAPES[ndim], seed=ndim)
    path = write_idx(tmp_path / f"a-idx{ndim}{suffix}", a)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    assert b.shape == a.shape
    np.testing.assert_array_equal(b, a)
    assert b.flags.writeable and b.flags.c_contiguous
    # The same from bytes, and the md5 is that of the raw IDX bytes whatever the compression.
    np.testing.assert_array_equal(read_idx(path.read_bytes()), a)
    assert idx_md5(path) == hashlib.md5(idx_bytes(a)).hexdigest()


def test_layout_matches_the_format_spec():
    a = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int16)
    raw = idx_bytes(a)
    assert raw[:4] == b"\x00\x00\x0b\x02"
    assert raw[4:12] == struct.pack(">II", 2, 3)
    assert raw[12:] == struct.pack(">6h", 1, 2, 3, 4, 5, 6)
    assert {c: IDX_DTYPES[c].itemsize for c in IDX_DTYPES} == {
        8: 1, 9: 1, 11: 2, 12: 4, 13: 4, 14: 8
    }


def test_gzip_detected_by_magic_not_name(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    p = tmp_path / "images-idx2-ubyte"  # no .gz, but gzip inside
    p.write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(read_idx(p), a)


def test_multi_member_gzip(tmp_path):
    # gzip allows concatenated members (e.g. files re-compressed in pieces); the content is
    # their concatenation.
    a = np.arange(40, dtype=np.uint8)
    raw = idx_bytes(a)
    np.testing.assert_array_equal(read_idx(gzip.compress(raw[:9]) + gzip.compress(raw[9:])), a)


def test_written_gzip_is_deterministic(tmp_path):
    a = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", a)
    write_idx(tmp_path / "b.gz", a)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["a.gz", "b.gz"]  # no temp files left


def test_write_rejects_types_without_an_idx_code(tmp_path):
    for bad in (np.zeros(3, np.int64), np.zeros(3, bool), np.zeros(3, np.uint16)):
        with pytest.raises(InputError, match="no IDX code"):
            write_idx(tmp_path / "x", bad)
    with pytest.raises(InputError, match="dimensions"):
        write_idx(tmp_path / "x", np.array(5, dtype=np.uint8))
    assert not os.listdir(tmp_path)


def test_atomic_write_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def boom(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"new contents")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f"]


VALID = idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))

MALFORMED = {
    "wrong magic": (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"x", "wrong magic"),
    "html page": (b"<!DOCTYPE html><html></html>", "wrong magic"),
    "unknown dtype code": (_header(0x0A, (2,)) + b"ab", "unknown IDX dtype code 0x0A"),
    "zero dimensions": (b"\x00\x00\x08\x00", "0 dimensions"),
    "short magic": (b"\x00\x00", "truncated IDX header"),
    "short dims": (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "truncated IDX header"),
    "payload too short": (_header(0x08, (2, 3)) + b"12345", "needs 6 bytes, the file holds 5"),
    "payload short for dtype": (_header(0x0C, (2,)) + b"1234567", "needs 8 bytes"),
    "trailing bytes": (VALID + b"\x00", "trailing bytes"),
    "empty gzip stream": (gzip.compress(b""), "empty gzip stream"),
}


# Each case raw and gzip-compressed (the empty gzip stream is already compressed).
MALFORMED_FILES = [
    pytest.param(data, problem, compress, id=f"{case}-{'gz' if compress else 'raw'}")
    for case, (data, problem) in sorted(MALFORMED.items())
    for compress in ((False,) if case == "empty gzip stream" else (False, True))
]


@pytest.mark.parametrize(("data", "problem", "compress"), MALFORMED_FILES)
def test_malformed_files_raise_format_error_naming_file_and_problem(
    tmp_path, data, problem, compress
):
    path = tmp_path / ("bad-idx.gz" if compress or data[:2] == b"\x1f\x8b" else "bad-idx")
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(FormatError, match=problem) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_empty_file(tmp_path):
    for name in ("empty", "empty.gz"):
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(FormatError, match="empty file") as info:
            read_idx(tmp_path / name)
        assert name in str(info.value)
    with pytest.raises(FormatError, match="<bytes>: empty file"):
        read_idx(b"")


def test_dot_gz_that_is_not_gzip(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(VALID)  # a raw IDX file under a .gz name
    with pytest.raises(FormatError, match=r"named \.gz but is not gzip"):
        read_idx(path)


def test_truncated_gzip(tmp_path):
    packed = gzip.compress(idx_bytes(np.arange(5000, dtype=np.int32)))
    for cut in (len(packed) - 4, len(packed) // 2, 12):
        path = tmp_path / "cut.gz"
        path.write_bytes(packed[:cut])
        with pytest.raises(FormatError, match="truncated") as info:
            read_idx(path)
        assert "cut.gz" in str(info.value)


def test_corrupt_gzip_crc(tmp_path):
    packed = bytearray(gzip.compress(VALID))
    packed[-8] ^= 0xFF  # the CRC32 of the member
    (tmp_path / "crc.gz").write_bytes(bytes(packed))
    with pytest.raises(FormatError, match="corrupt gzip"):
        read_idx(tmp_path / "crc.gz")


def test_huge_claimed_shape_is_refused_without_allocating():
    # The header claims ~8e28 bytes; the reader must notice the short payload, not allocate.
    data = gzip.compress(_header(0x0E, (2**32 - 1,) * 3) + b"\x00" * 64)
    with pytest.raises(FormatError, match="truncated IDX data"):
        read_idx(data)
    with pytest.raises(FormatError, match="more than the 100 bytes allowed"):
        read_idx(_header(0x08, (101,)) + bytes(101), max_bytes=100)


def test_checksum_is_of_decompressed_data(tmp_path):
    good = hashlib.md5(VALID).hexdigest()
    # Two different compressions of the same content both verify.
    for level in (1, 9):
        read_idx(gzip.compress(VALID, compresslevel=level), md5=good)
    read_idx(VALID, md5=good.upper())
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(VALID))
    with pytest.raises(FormatError, match="checksum mismatch") as info:
        read_idx(path, md5="0" * 32)
    assert str(path) in str(info.value) and good in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(FormatError, match="cannot open"):
        read_idx(tmp_path / "nope")


# --- fuzzing: anything either loads or raises FormatError, quickly --------------------------


def _load_or_format_error(data: bytes) -> None:
    try:
        a = read_idx(data)
    except FormatError:
        return
    assert isinstance(a, np.ndarray) and a.ndim >= 1


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_fuzz_random_bytes(data):
    _load_or_format_error(data)
    _load_or_format_error(b"\x00\x00" + data)  # past the first magic check
    _load_or_format_error(b"\x1f\x8b" + data)  # claims to be gzip


SEED_FILES = [
    idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4)),
    idx_bytes(np.linspace(-1, 1, 6, dtype=np.float32).reshape(3, 2)),
    idx_bytes(np.arange(5, dtype=np.int16)),
]


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEED_FILES)))
    if draw(st.booleans()):
        data = bytearray(gzip.compress(bytes(data), mtime=0))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "append"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[pos]
        elif op == "truncate":
            del data[pos:]
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@settings(max_examples=400)
@given(mutated())
def test_fuzz_mutations_of_valid_files(data):
    _load_or_format_error(data)

"""Atomic writes: a crash or a full disk leaves the previous file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from layerwise.io import (
    atomic_write,
    atomic_writer,
)
from layerwise.io import files as io_files


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_atomic_write_creates_and_replaces(tmp_path):
    target = tmp_path / "f.bin"
    assert atomic_write(target, b"one") == target
    assert target.read_bytes() == b"one"
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert leftovers(tmp_path) == []


def test_atomic_writer_exception_keeps_old_file_and_removes_temp(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="disk full"), atomic_writer(target) as f:
        f.write(b"half of the new con")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


def test_atomic_write_failing_rename_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    target.write_bytes(b"previous")

    def broken_replace(src, dst):
        raise OSError("rename failed")

    monkeypatch.setattr(io_files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="rename failed"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


def test_atomic_write_permissions(tmp_path):
    target = tmp_path / "new.bin"
    atomic_write(target, b"x")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0o600
    target.chmod(0o640)
    atomic_write(target, b"y")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # an existing file keeps its mode

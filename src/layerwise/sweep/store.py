"""A sweep's directory: ``sweep.json`` (the spec, written atomically) and ``trials.jsonl`` (one
line per finished trial, appended whole), read back to resume or to report.

A line is appended with one ``write`` on a file opened for appending, then flushed to disk,
so a killed sweep leaves whole lines; should a line still end cut short (a full disk, a
crash of the machine), the next run drops that fragment before appending, and its trial runs
again. Each trial is kept once: a trial recorded twice (two runs of the command at once) is
read as its first record.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import FormatError, InputError
from ..io import atomic_write
from .spec import SweepSpec

__all__ = ["PLOT_NAMES", "SPEC_NAME", "TRIALS_NAME", "SweepDir"]

SPEC_NAME = "sweep.json"
TRIALS_NAME = "trials.jsonl"
PLOT_NAMES = ("best-trials.png", "lr-weight-decay.png")


class SweepDir:
    """``SWEEP_DIR``: its spec and its finished trials."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.spec_path = self.path / SPEC_NAME
        self.trials_path = self.path / TRIALS_NAME

    def read_spec(self) -> SweepSpec | None:
        if not self.spec_path.is_file():
            return None
        try:
            return SweepSpec.from_dict(json.loads(self.spec_path.read_text()))
        except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
            raise FormatError(f"{self.spec_path}: not a sweep spec ({exc})") from None

    def prepare(self, spec: SweepSpec, force: bool = False) -> bool:
        """Make the directory hold ``spec``. Returns True when it resumes a sweep there. A
        directory with another sweep is refused with the differences named, unless ``force``
        (which removes that sweep's files, and only those)."""
        if self.path.exists() and not self.path.is_dir():
            raise InputError(f"--out {self.path} exists and is not a directory")
        existing = self.read_spec()
        if existing is not None and existing != spec:
            if not force:
                changes = "; ".join(existing.differences(spec))
                raise InputError(f"--out {self.path} holds another sweep ({changes}); use another --out, "
                                 "or --force to replace it")
            for name in (SPEC_NAME, TRIALS_NAME, *PLOT_NAMES):
                (self.path / name).unlink(missing_ok=True)
            existing = None
        elif existing is None and self.path.is_dir() and self.trials_path.exists() and not force:
            raise InputError(f"--out {self.path} has {TRIALS_NAME} but no {SPEC_NAME}; use another --out, "
                             "or --force to replace it")
        self.path.mkdir(parents=True, exist_ok=True)
        if existing is None:
            self.trials_path.unlink(missing_ok=True)
            atomic_write(self.spec_path, (json.dumps(spec.to_dict(), indent=1) + "\n").encode())
            return False
        self._drop_torn_tail()
        return True

    def _drop_torn_tail(self) -> None:
        """Remove a last line cut short (no newline): its trial was not recorded."""
        if not self.trials_path.is_file():
            return
        data = self.trials_path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data[: data.rfind(b"\n") + 1]
            atomic_write(self.trials_path, keep)

    def append(self, result: dict) -> None:
        """Record one finished trial: one line, one write, flushed to disk."""
        line = (json.dumps(result, allow_nan=False, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.trials_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
            if written != len(line):  # a full disk: leave no torn line for the next reader
                os.ftruncate(fd, os.fstat(fd).st_size - written)
                raise OSError(f"{self.trials_path}: disk full? wrote {written} of {len(line)} bytes")
            os.fsync(fd)
        finally:
            os.close(fd)

    def results(self) -> dict[int, dict]:
        """The finished trials by number (a torn last line is skipped)."""
        if not self.trials_path.is_file():
            return {}
        out: dict[int, dict] = {}
        lines = self.trials_path.read_bytes().split(b"\n")
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except (UnicodeDecodeError, json.JSONDecodeError):
                if number == len(lines):  # the torn tail of a killed run
                    continue
                raise FormatError(f"{self.trials_path}, line {number}: not a JSON record") from None
            if not isinstance(record, dict) or not isinstance(record.get("trial"), int):
                raise FormatError(f"{self.trials_path}, line {number}: not a trial record")
            out.setdefault(record["trial"], record)
        return out

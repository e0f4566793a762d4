"""Where the choices measured on a machine are kept: one small JSON file, keyed by the machine.

``kernels.tuning`` measures its choices (a training run's thread plan, a convolution's way, a
product's blocks) once per machine and keeps them here, so that later runs start at once and
make the same choice: a run's numbers then repeat bit for bit on the machine. The file maps a
machine's signature (:func:`machine_signature`: CPU model, cores, BLAS and its kernels, the
layerwise version and :data:`FORMAT`) to its choices by key; it is written whole to a
temporary file and renamed over, so a reader never sees half of it, and a file that cannot be
read or written only costs a measurement. One measurement at a time runs on the machine
(:func:`machine_lock`, across processes). A worker process of the ``"processes"`` plan measures
nothing (:func:`measure_nothing`) and takes its trainer's choices (:func:`choices_here`,
:func:`adopt_choices`).

``LAYERWISE_TUNING=0`` turns the measurements off (:func:`tuning_enabled`); ``LAYERWISE_CACHE_DIR``
says where the file lives (else ``$XDG_CACHE_HOME/layerwise`` or ``~/.cache/layerwise``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import cpu
from .._version import __version__
from .blas_limits import _blas

__all__ = [
    "CACHE_ENV_VAR",
    "FORMAT",
    "TUNING_ENV_VAR",
    "adopt_choices",
    "cache_file",
    "choices_here",
    "cpu_model",
    "kept_records",
    "machine_lock",
    "machine_signature",
    "measure_nothing",
    "measuring_here",
    "recall",
    "remember",
    "tuning_enabled",
]

TUNING_ENV_VAR = "LAYERWISE_TUNING"
CACHE_ENV_VAR = "LAYERWISE_CACHE_DIR"
#: Bumped when the measurement changes, so that choices made the old way are made again.
FORMAT = 7  # 2: convolutions in chunks (a step's plans compare differently); 3: the split plan;
# 4: convolutions by Winograd where measured faster; 5: Winograd's transforms as products or
# sums (the ways compare anew); 6: Winograd's F(4×4, 3×3) as a fourth way; 7: the processes plan


def cache_file() -> Path:
    """Where measured choices are kept."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]) / "tuning.json"
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = Path.home() / ".cache"
        except RuntimeError:  # no home folder: the system's temporary one
            base = Path(tempfile.gettempdir())
    return Path(base) / "layerwise" / "tuning.json"


def tuning_enabled() -> bool:
    return os.environ.get(TUNING_ENV_VAR, "1").strip().lower() not in ("0", "off", "false", "no")


@functools.cache
def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name as Linux reports it, with its family, model and stepping numbers
    when it gives them (else what the platform module says).

    Why the numbers: a VM's model name can hide the generation. Two of this project's 2-core
    VMs both said "AMD EPYC": family 26 ran OpenBLAS's SkylakeX kernels at 254 GFLOP/s on one
    thread, family 25 model 17 (Zen 4) at 103, and the choices measured on one (the thread
    plans of ``kernels.tuning``) need not hold on the other."""
    fields: dict[str, str] = {}
    try:
        for line in cpuinfo.read_text().splitlines():
            if not line.strip():
                break  # the first CPU's block is enough
            name, _, value = line.partition(":")
            fields.setdefault(name.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or platform.machine()
    numbers = [f"{label} {fields[key]}" for key, label in (("cpu family", "family"), ("model", "model"),
                                                          ("stepping", "stepping")) if fields.get(key)]
    return f"{name} ({', '.join(numbers)})" if numbers else name


def machine_signature() -> str:
    """What a measured choice depends on: the CPU, the cores usable, and the BLAS with the
    kernels it picked (``OPENBLAS_CORETYPE`` changes them, hence the signature)."""
    blas = ", ".join(
        f"{lib.internal_api} {lib.version} {getattr(lib, 'architecture', '') or ''}".strip()
        for lib in _blas().lib_controllers
    )
    return (f"{cpu_model()} | {cpu.usable_cores()} cores | {blas or 'no BLAS info'} | "
            f"layerwise {__version__} | {FORMAT}")


_memory: dict[tuple[str, str], dict] = {}  # this process's choices, even when the file cannot be written
_file_lock = threading.Lock()  # one measurement at a time in this process ...
_holder = threading.local()  # .depth: how deep this thread is inside machine_lock


@contextlib.contextmanager
def machine_lock(wait: bool = True) -> Iterator[bool]:
    """... and across processes: a sweep's workers training one network on this machine wait
    for the first one's measurement instead of measuring at once, competing for the cores, and
    writing the file over each other. An advisory lock on a file beside the cache (POSIX); where
    it cannot be taken, only this process's lock holds. Re-entrant in the thread that holds it:
    a thread plan's measurement runs training steps whose convolutions may measure their way
    (``conv_way``) meanwhile; a second lock there waited for the first for ever. Yields True;
    with ``wait=False``, False at once when another thread of this process holds the lock (it
    may be waiting for the caller: a measurement's convolutions run in chunks on the pool)."""
    if getattr(_holder, "depth", 0):
        _holder.depth += 1
        try:
            yield True
        finally:
            _holder.depth -= 1
        return
    if not _file_lock.acquire(blocking=wait):
        yield False
        return
    try:
        _holder.depth = 1
        with _flock():
            yield True
    finally:
        _holder.depth = 0
        _file_lock.release()


@contextlib.contextmanager
def _flock() -> Iterator[None]:
    try:
        import fcntl  # POSIX only: the lock is skipped on Windows

        path = cache_file().with_suffix(".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # closed below, which releases the lock
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # releases the lock


def _read() -> dict:
    """The file's machines and their choices; {} for a missing or damaged file."""
    try:
        data = json.loads(cache_file().read_text())
    except (OSError, ValueError, RuntimeError):
        return {}
    machines = data.get("machines") if isinstance(data, dict) else None
    return {sig: choices for sig, choices in machines.items() if isinstance(choices, dict)} \
        if isinstance(machines, dict) else {}


def remember(signature: str, key: str, record: dict) -> bool:
    """Keep ``record`` for this process and in the file; False if the file could not be written."""
    _memory[signature, key] = record
    machines = _read()
    machines.setdefault(signature, {})[key] = record
    tmp = None
    try:
        path = cache_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole to a temporary file, then renamed over: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(prefix=".tuning-", dir=path.parent)
        with os.fdopen(fd, "w") as out:
            json.dump({"format": FORMAT, "machines": machines}, out, indent=1, sort_keys=True)
        os.replace(tmp, path)
        return True
    except (OSError, RuntimeError):
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return False


#: False in a worker process of the "processes" plan (``measure_nothing``).
_measuring_here = True


def measuring_here() -> bool:
    """Whether this process may measure a choice (False after ``measure_nothing``)."""
    return _measuring_here


def measure_nothing() -> None:
    """From now on this process measures no choice: it takes those kept (``adopt_choices``, the
    file) and otherwise the unmeasured default, and never waits for the machine's lock. For a
    worker process of the ``"processes"`` plan: its trainer holds that lock while it measures
    its thread plans, waiting for the worker's part meanwhile; a worker that waited for the
    lock in turn would never answer. The trainer measures the same choices in its own part (the
    same shapes on one core each) and hands them over (``choices_here``)."""
    global _measuring_here
    _measuring_here = False


def choices_here() -> dict[str, dict]:
    """Every choice kept for this machine, from the file and this process, by key."""
    return kept_records("", lambda record: isinstance(record, dict))


def adopt_choices(choices: dict[str, dict]) -> None:
    """Take ``choices`` (another process's ``choices_here``) as this process's own."""
    signature = machine_signature()
    for key, record in choices.items():
        _memory[signature, key] = record


def recall(signature: str, key: str, valid: Callable[[object], bool]) -> dict | None:
    """The record kept for ``key`` on the machine ``signature``, from this process or the file,
    if ``valid`` accepts it; else None."""
    if (signature, key) in _memory:
        return _memory[signature, key]
    record = _read().get(signature, {}).get(key)
    if valid(record):
        _memory[signature, key] = record
        return record
    return None


def kept_records(prefix: str, valid: Callable[[object], bool]) -> dict[str, dict]:
    """This machine's valid records whose key starts with ``prefix`` (taken off), from the file
    and this process, sorted by key."""
    signature = machine_signature()
    kept = {key: record for key, record in _read().get(signature, {}).items()
            if key.startswith(prefix) and valid(record)}
    kept.update({key: record for (sig, key), record in _memory.items()
                 if sig == signature and key.startswith(prefix) and valid(record)})
    return {key.removeprefix(prefix): kept[key] for key in sorted(kept)}

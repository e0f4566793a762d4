"""Choices that depend on the machine, measured on it once and kept.

Three choices here, none a constant tuned on one VM (the working-set sizes read off the
machine's caches are ``kernels.cache_sizes``'s):

- **How a training step uses several threads** (:func:`training_plan`): BLAS on all of them
  (``"blas"``), BLAS on one and nothing split (``"blas1"``), layerwise owning them and
  splitting passes and large products itself (``"owned"``, see ``threads.owned_threads``),
  each batch cut into one part per thread, each part through the whole network
  (``"split"``, see ``models.batch_parts``; offered for the networks it can cut), or the same
  parts with all but the first in worker processes (``"processes"``, see ``kernels.processes``;
  offered for the networks a worker can rebuild, on POSIX). DeepConvNet on 2 threads, Zen 4 VM,
  SkylakeX kernels, ms a step: blas 70.1, blas1 51.9, owned 35.6, split 36.3, processes 27.1
  (the Trainer's own measurement, fresh cache).
  Which is fastest depends on the CPU, its BLAS kernels and the network. Measured by the
  benchmark runner on the 2-core AMD VM of family 26 (SkylakeX kernels, 2 threads, ms a step
  as blas / blas1 / owned / split; benchmarks/README.md, "What layerwise chose on each
  machine"): 784-50-10 0.17 / 0.19 / 0.19 / 0.37, 784-512-512-10 2.8 / 3.0 / 2.9 / 2.9,
  SimpleConvNet 11.6 / 10.6 / 7.7 / 6.4, DeepConvNet 44 / 54 / 34 / 30; a day earlier blas1
  won for 784-50-10. On a Zen 4 VM (family 25) with Haswell kernels 784-512-512-10 split its
  batch (6.1 / 5.6 / 5.1 / 4.1). On an Intel VM the 784-512-512-10 epoch on two BLAS threads was 1.55x PyTorch's
  (issue 21's own report; no session has measured an Intel machine since).
  So the Trainer times a copy of the network under each plan the first time that network
  trains on this machine with that many threads, and keeps the winner in a small JSON file
  (:func:`cache_file`), keyed by the machine (CPU model, cores, BLAS and its kernels): later
  runs start at once and make the same choice. The choice decides which kernels compute a
  product, so it is kept rather than measured again: a run's numbers then repeat bit for bit
  on this machine.
- **Whether a 3×3 convolution computes by Winograd or by im2col** (:func:`conv_way`), and
  Winograd's tiles (F(2×2, 3×3) or F(4×4, 3×3)) and its transforms (by products, or for
  F(2×2) by sums): Winograd does fewer multiply-adds and more
  passes over memory, so which is faster depends on the machine's products against its
  memory, on the BLAS's small products, and on the shape and how the call runs on the threads
  (``kernels.winograd``, ``kernels.conv.use_winograd``). Measured the first time a shape runs
  on this machine, kept in the same file.
- **Whether a tall, thin product runs whole or in blocks of rows** (:func:`product_blocks`):
  a convolution's im2col products, which OpenBLAS's SkylakeX kernels for small products run
  1.6-1.8x faster in blocks of a few hundred rows and its Haswell kernels no faster
  (``kernels.blocks``). Measured the first time a shape of product runs, kept in the same file.

``LAYERWISE_TUNING=0`` turns the measurements off: the Trainer then decides by shape alone
(``"owned"`` when a step's activations are large enough to split, else ``"blas"``), as before
this module, and every convolution computes by im2col. ``LAYERWISE_CACHE_DIR`` says where
the file lives (else ``$XDG_CACHE_HOME/layerwise`` or ``~/.cache/layerwise``); a file that
cannot be read or written only costs a measurement.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import platform
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import cpu
from .._version import __version__
from .processes import processes_plan
from .threads import _blas, blas_limit, owned_threads, split_batches

__all__ = [
    "BLOCK_ROWS",
    "CACHE_ENV_VAR",
    "CONV_WAYS",
    "PLANS",
    "TUNING_ENV_VAR",
    "ThreadPlan",
    "adopt_choices",
    "cache_file",
    "choices_here",
    "conv_way",
    "cpu_model",
    "enter_plan",
    "kept_blocks",
    "kept_ways",
    "machine_signature",
    "measure_nothing",
    "measure_plans",
    "product_blocks",
    "training_plan",
]

TUNING_ENV_VAR = "LAYERWISE_TUNING"
CACHE_ENV_VAR = "LAYERWISE_CACHE_DIR"
#: The ways a training step can use several threads (see the module's docstring).
PLANS = ("blas", "blas1", "owned", "split", "processes")
#: Bumped when the measurement changes, so that choices made the old way are made again.
_FORMAT = 7  # 2: convolutions in chunks (a step's plans compare differently); 3: the split plan;
# 4: convolutions by Winograd where measured faster; 5: Winograd's transforms as products or
# sums (the ways compare anew); 6: Winograd's F(4×4, 3×3) as a fourth way; 7: the processes plan
#: Another plan replaces the one the shape rule would take only when it is this much faster:
#: timings on a shared VM wander by a few per cent, and a coin toss should not flip the choice.
MARGIN = 0.03
#: Each plan's turn runs steps untimed this long (and this many), then timed at least this long
#: (and 2 steps).
_SETTLE_S, _SETTLE_STEPS, _REP_S = 0.15, 3, 0.05
#: Rounds of turns: each plan is timed this many times (about 0.6 s a plan in all).
_ROUNDS = 3
#: Runs with fewer multiply-adds in their products than this take the shape rule's plan
#: unmeasured: measuring takes 2-3 s, and a run this short (10-50 s of training on one core)
#: gains less than that from the best plan. One Fashion-MNIST epoch of DeepConvNet is 1.6e12,
#: of SimpleConvNet 1.6e11, of 784-512-512-10 1.2e11, of 784-50-10 7e9.
MIN_WORK_TO_MEASURE = 10**12


@dataclass(frozen=True)
class ThreadPlan:
    """How a training run uses its threads, and how that was decided."""

    plan: str  # one of PLANS
    threads: int
    how: str  # "measured", "kept from an earlier measurement", "kept from the checkpoint", "by shape...", ...
    ms_per_step: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for logs and the benchmark's report."""
        names = {"blas": f"BLAS on {self.threads} threads", "blas1": "BLAS on 1 thread",
                 "owned": f"layerwise splits work across {self.threads} threads (BLAS on 1)",
                 "split": f"each batch in {self.threads} parts, one per thread (BLAS on 1)",
                 "processes": f"each batch in {self.threads} parts, one per process (BLAS on 1)"}
        text = f"{names[self.plan]} ({self.how}"
        if self.ms_per_step:
            text += "; ms a step: " + ", ".join(f"{p} {ms:.3g}" for p, ms in self.ms_per_step.items())
        return text + ")"


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
    plans above) need not hold on the other."""
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
            f"layerwise {__version__} | {_FORMAT}")


_memory: dict[tuple[str, str], dict] = {}  # this process's choices, even when the file cannot be written
_file_lock = threading.Lock()  # one measurement at a time in this process ...
_holder = threading.local()  # .depth: how deep this thread is inside _machine_lock


@contextlib.contextmanager
def _machine_lock(wait: bool = True) -> Iterator[bool]:
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


def _valid(record: object) -> bool:
    if not isinstance(record, dict) or record.get("plan") not in PLANS:
        return False
    ms = record.get("ms_per_step", {})
    return isinstance(ms, dict) and all(isinstance(v, int | float) for v in ms.values())


def _remember(signature: str, key: str, record: dict) -> bool:
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
            json.dump({"format": _FORMAT, "machines": machines}, out, indent=1, sort_keys=True)
        os.replace(tmp, path)
        return True
    except (OSError, RuntimeError):
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return False


#: False in a worker process of the "processes" plan (``measure_nothing``).
_measuring_here = True


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
    return _kept_records("", lambda record: isinstance(record, dict))


def adopt_choices(choices: dict[str, dict]) -> None:
    """Take ``choices`` (another process's ``choices_here``) as this process's own."""
    signature = machine_signature()
    for key, record in choices.items():
        _memory[signature, key] = record


def _recall(signature: str, key: str, valid: Callable[[object], bool] = _valid) -> dict | None:
    if (signature, key) in _memory:
        return _memory[signature, key]
    record = _read().get(signature, {}).get(key)
    if valid(record):
        _memory[signature, key] = record
        return record
    return None


@contextlib.contextmanager
def enter_plan(plan: str, threads: int) -> Iterator[None]:
    """The threads as ``plan`` uses them, inside a ``with`` block (restored after)."""
    if plan == "owned":
        with owned_threads():
            yield
    elif plan == "split":
        with split_batches():
            yield
    elif plan == "processes":  # owned threads for the optimizer's step; the parts pause them
        with owned_threads(), processes_plan(threads):
            yield
    else:
        with blas_limit(1 if plan == "blas1" else threads):
            yield


def measure_plans(
    step: Callable[[], object], threads: int, plans: tuple[str, ...] = PLANS,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Seconds per ``step()`` under each plan, one figure per round; in a round the plans take
    turns (in a rotated order each round), so that a machine drifting slows them alike.

    Each turn first runs steps untimed for ``_SETTLE_S``: OpenBLAS's idle threads spin for
    ~0.1 s after the last product of a turn on all threads, and on this 2-core VM they slowed
    the next turn's steps (SimpleConvNet on owned threads: 10.1 ms a step right after a turn of
    BLAS on 2 threads, 7.7 ms once they had stopped). And at least ``_SETTLE_STEPS`` steps: a
    turn of the processes plan starts its worker in its first step (0.3-0.5 s, longer than the
    settling), whose own first steps fill its memory and caches (DeepConvNet: processes 33.9
    against split 34.3 ms a step measured with one untimed step, 27.1 against 36.3 with more)."""
    times: dict[str, list[float]] = {plan: [] for plan in plans}
    for round_ in range(_ROUNDS):
        order = plans[round_ % len(plans):] + plans[: round_ % len(plans)]
        for plan in order:
            with enter_plan(plan, threads):
                started, settled = clock(), 0
                while settled < _SETTLE_STEPS or clock() - started < _SETTLE_S:
                    step()
                    settled += 1
                started, steps = clock(), 0
                while steps < 2 or clock() - started < _REP_S:
                    step()
                    steps += 1
                times[plan].append((clock() - started) / steps)
    return times


def training_plan(
    key: str, threads: int, by_shape: str, probe: Callable[[], Callable[[], object]], work: float = math.inf,
    plans: tuple[str, ...] = PLANS,
) -> ThreadPlan:
    """The plan a training run of the network ``key`` (its layers, batch, dtype, optimizer)
    takes on ``threads`` threads: kept from an earlier measurement on this machine, else
    measured now by timing the step ``probe()`` returns (one training step of a copy of the
    network, which must leave the run itself untouched) and kept. ``by_shape`` is the shape
    rule's plan, taken with one thread, with ``LAYERWISE_TUNING=0``, and unless another plan
    is faster by ``MARGIN``. ``work`` is the multiply-adds of the run's products: a run with
    less than ``MIN_WORK_TO_MEASURE`` takes a kept plan if there is one, else the shape rule's
    without measuring (and without touching the cache folder). ``plans``: those to measure
    (the run's network may not allow them all)."""
    if threads <= 1:
        return ThreadPlan("blas", threads, "one thread")
    if not tuning_enabled():
        return ThreadPlan(by_shape, threads, f"by shape: {TUNING_ENV_VAR}=0")
    signature, full_key = machine_signature(), f"{key} | {threads} threads"
    kept = _kept(signature, full_key, threads)  # also for a short run: later runs train the same way
    if kept is not None:
        return kept
    if work < MIN_WORK_TO_MEASURE:
        return ThreadPlan(by_shape, threads, "by shape: too short a run to measure")
    with _machine_lock():
        # Another process may have measured while this one waited for the lock.
        return _kept(signature, full_key, threads) or _measured(
            signature, full_key, threads, by_shape, probe, plans)


def _kept(signature: str, full_key: str, threads: int) -> ThreadPlan | None:
    record = _recall(signature, full_key)
    if record is None:
        return None
    return ThreadPlan(record["plan"], threads, "kept from an earlier measurement", record.get("ms_per_step", {}))


def _measured(
    signature: str, full_key: str, threads: int, by_shape: str, probe: Callable[[], Callable[[], object]],
    plans: tuple[str, ...] = PLANS,
) -> ThreadPlan:
    try:
        with np.errstate(all="ignore"):  # a copy whose loss blows up must not print warnings
            seconds = measure_plans(probe(), threads, plans)
    except Exception:  # any: the run itself then reports what is wrong with its own step
        return ThreadPlan(by_shape, threads, "by shape: the measurement failed")
    # Medians over the rounds, the figures the log line shows (a choice that contradicted
    # them, as ratios taken round by round could, would puzzle whoever reads it).
    median = {name: statistics.median(times) for name, times in seconds.items()}
    best = min(median, key=median.get)
    plan = best if median[best] < (1 - MARGIN) * median[by_shape] else by_shape
    ms = {name: round(value * 1e3, 4) for name, value in median.items()}
    kept = _remember(signature, full_key, {"plan": plan, "ms_per_step": ms, "measured": time.strftime("%Y-%m-%d")})
    return ThreadPlan(plan, threads, "measured" if kept else "measured, not kept", ms)


#: The ways a 3×3 convolution can compute (``conv_way``): im2col, or Winograd's F(2×2, 3×3) with
#: its tiles' transforms as products or as sums (``kernels.winograd.TRANSFORMS``), or its
#: F(4×4, 3×3) with products (``kernels.winograd.BLOCKS``).
CONV_WAYS = ("im2col", "winograd", "winograd by sums", "winograd 4x4")


def conv_way(key: str, measure: Callable[[], dict[str, float]]) -> str:
    """Which of ``CONV_WAYS`` computes the convolution ``key`` (its per-image shape, dtype and
    threads) fastest on this machine (``kernels.winograd`` says why it depends on the
    machine): kept from an earlier measurement, else measured now by ``measure()`` (seconds by
    way) and kept, so that later runs compute the same way and repeat their numbers. A
    Winograd way only when it is faster than im2col by ``MARGIN``; im2col always with
    ``LAYERWISE_TUNING=0`` (every convolution then computes by im2col, as before the way existed).
    Unmeasured (im2col) always after ``measure_nothing``.

    Threads asking for the same key take turns (the first measures, the others then read its
    choice: a split's two parts compute the same way), but none waits for the machine's lock
    while another thread of this process holds it: no other process measures meanwhile, so it
    measures without it. A thread plan's measurement holds that lock while its steps' parts run
    on other threads, and a part that waited for it waited for ever (the first DeepConvNet
    training on 2 threads on a machine, fresh cache)."""
    if not tuning_enabled():
        return "im2col"
    signature, full_key = machine_signature(), f"convolution {key}"
    record = _recall(signature, full_key, _valid_way)
    if record is None and not _measuring_here:
        return "im2col"
    if record is None:
        with _key_lock(full_key), _machine_lock(wait=False):  # not held: this process holds it elsewhere
            record = _recall(signature, full_key, _valid_way) or _measured_way(signature, full_key, measure)
    return record["way"]


_key_locks: dict[str, threading.Lock] = {}
_key_locks_lock = threading.Lock()


def _key_lock(key: str) -> threading.Lock:
    """The lock threads of this process take turns at to measure ``key``."""
    with _key_locks_lock:
        return _key_locks.setdefault(key, threading.Lock())


def kept_ways() -> dict[str, dict]:
    """The convolution ways kept for this machine (``conv_way``): key (shape, dtype, how
    the call ran) -> record (``"way"``, the ``"ms"`` each way took), from this process and the file."""
    return _kept_records("convolution ", _valid_way)


def _kept_records(prefix: str, valid: Callable[[object], bool]) -> dict[str, dict]:
    """This machine's valid records whose key starts with ``prefix`` (taken off), from the file
    and this process, sorted by key."""
    signature = machine_signature()
    kept = {key: record for key, record in _read().get(signature, {}).items()
            if key.startswith(prefix) and valid(record)}
    kept.update({key: record for (sig, key), record in _memory.items()
                 if sig == signature and key.startswith(prefix) and valid(record)})
    return {key.removeprefix(prefix): kept[key] for key in sorted(kept)}


def _valid_way(record: object) -> bool:
    return isinstance(record, dict) and record.get("way") in CONV_WAYS


def _measured_way(signature: str, full_key: str, measure: Callable[[], dict[str, float]]) -> dict:
    try:
        seconds = measure()
        winograd = min((way for way in seconds if way in CONV_WAYS[1:]), key=seconds.__getitem__)
        way = winograd if seconds[winograd] < (1 - MARGIN) * seconds["im2col"] else "im2col"
    except Exception:  # any: the convolution itself then reports what is wrong with its input
        return {"way": "im2col"}  # not kept: measured again next time
    record = {"way": way, "ms": {k: round(v * 1e3, 4) for k, v in seconds.items()},
              "measured": time.strftime("%Y-%m-%d")}
    _remember(signature, full_key, record)
    return record


#: Rows per block ``product_blocks`` may choose (0 stands for the whole product, unblocked).
BLOCK_ROWS = (0, 128, 256, 512, 1024, 2048)


def product_blocks(key: str, measure: Callable[[], dict[int, float]]) -> int | None:
    """How many rows per block the product ``key`` (its operation, inner and outer sizes, dtype,
    layout and BLAS threads) runs fastest in on this machine, 0 for the whole product
    (``kernels.blocks`` says why it depends on the machine): kept from an earlier measurement,
    else measured now by ``measure()`` (seconds by rows of ``BLOCK_ROWS``) and kept. Blocks only
    when faster than the whole product by ``MARGIN``; the whole product always with
    ``LAYERWISE_TUNING=0``. None, unmeasured, while another thread of this process measures
    (products run in chunks on the pool, and that thread may be waiting for them: a
    convolution's way measured by ``conv_way``, or a thread plan's steps): the caller then runs
    the product whole, this once."""
    if not tuning_enabled():
        return 0
    signature, full_key = machine_signature(), f"product {key}"
    record = _recall(signature, full_key, _valid_blocks)
    if record is None and not _measuring_here:
        return 0
    if record is None:
        with _machine_lock(wait=False) as held:
            if not held:  # another thread is measuring, maybe waiting for this product
                return None
            record = _recall(signature, full_key, _valid_blocks) or _measured_blocks(signature, full_key, measure)
    return record["rows"]


def kept_blocks() -> dict[str, dict]:
    """The block sizes kept for this machine (``product_blocks``): key -> record (``"rows"``,
    the ``"ms"`` each size took, by rows; "0" the whole product), from this process and the file."""
    return _kept_records("product ", _valid_blocks)


def _valid_blocks(record: object) -> bool:
    return isinstance(record, dict) and record.get("rows") in BLOCK_ROWS


def _measured_blocks(signature: str, full_key: str, measure: Callable[[], dict[int, float]]) -> dict:
    try:
        seconds = measure()
        fastest = min((rows for rows in seconds if rows), key=seconds.__getitem__, default=0)
        rows = fastest if fastest and seconds[fastest] < (1 - MARGIN) * seconds[0] else 0
    except Exception:  # any: the product itself then reports what is wrong with its operands
        return {"rows": 0}  # not kept: measured again next time
    record = {"rows": rows, "ms": {str(k): round(v * 1e3, 4) for k, v in seconds.items()},
              "measured": time.strftime("%Y-%m-%d")}
    _remember(signature, full_key, record)
    return record

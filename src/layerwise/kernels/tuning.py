"""Choices that depend on the machine, measured on it once and kept.

Three choices here, none a constant tuned on one VM (the working-set sizes read off the
machine's caches are ``kernels.cache_sizes``'s, the sizes from which work is split across owned
threads ``kernels.split_sizes``'s):

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
  trains on this machine with that many threads (unless BLAS's speed-up on those threads was
  well below the machine's usual meanwhile: then the shape rule's plan serves and nothing is
  kept, ``measuring.cores_as_usual``), and keeps the winner in a small JSON file
  (``kernels.kept_choices.cache_file``), keyed by the machine (CPU model, cores, BLAS and its kernels): later
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
this module, and every convolution computes by im2col. Where and how the choices are kept (the
file, its lock, a worker process that measures nothing) is ``kernels.kept_choices``'s.
"""

from __future__ import annotations

import contextlib
import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from . import kept_choices, measuring, split_sizes
from .blas_limits import blas_limit
from .processes import processes_plan
from .threads import owned_threads, split_batches

__all__ = [
    "BLOCK_ROWS",
    "CONV_WAYS",
    "PLANS",
    "ThreadPlan",
    "conv_way",
    "enter_plan",
    "kept_blocks",
    "kept_ways",
    "measure_plans",
    "product_blocks",
    "training_plan",
]

#: The ways a training step can use several threads (see the module's docstring).
PLANS = ("blas", "blas1", "owned", "split", "processes")
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


def _valid_plan(record: object) -> bool:
    if not isinstance(record, dict) or record.get("plan") not in PLANS:
        return False
    ms = record.get("ms_per_step", {})
    return isinstance(ms, dict) and all(isinstance(v, int | float) for v in ms.values())


@contextlib.contextmanager
def enter_plan(plan: str, threads: int) -> Iterator[None]:
    """The threads as ``plan`` uses them, inside a ``with`` block (restored after)."""
    if plan == "owned":
        with owned_threads():
            split_sizes.adopt()
            yield
    elif plan == "split":
        with split_batches():
            split_sizes.adopt()
            yield
    elif plan == "processes":  # owned threads for the optimizer's step; the parts pause them
        with owned_threads(), processes_plan(threads):
            split_sizes.adopt()
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
    if not kept_choices.tuning_enabled():
        return ThreadPlan(by_shape, threads, f"by shape: {kept_choices.TUNING_ENV_VAR}=0")
    signature, full_key = kept_choices.machine_signature(), f"{key} | {threads} threads"
    kept = _kept(signature, full_key, threads)  # also for a short run: later runs train the same way
    if kept is not None:
        return kept
    if work < MIN_WORK_TO_MEASURE:
        return ThreadPlan(by_shape, threads, "by shape: too short a run to measure")
    with kept_choices.machine_lock():
        # Another process may have measured while this one waited for the lock.
        return _kept(signature, full_key, threads) or _measured(
            signature, full_key, threads, by_shape, probe, plans)


def _kept(signature: str, full_key: str, threads: int) -> ThreadPlan | None:
    record = kept_choices.recall(signature, full_key, _valid_plan)
    if record is None:
        return None
    return ThreadPlan(record["plan"], threads, "kept from an earlier measurement", record.get("ms_per_step", {}))


def _measured(
    signature: str, full_key: str, threads: int, by_shape: str, probe: Callable[[], Callable[[], object]],
    plans: tuple[str, ...] = PLANS,
) -> ThreadPlan:
    try:
        with np.errstate(all="ignore"):  # a copy whose loss blows up must not print warnings
            step = probe()
            seconds, speedup, usual = measuring.bracketed(
                signature, threads, lambda: measure_plans(step, threads, plans))
    except Exception:  # any: the run itself then reports what is wrong with its own step
        return ThreadPlan(by_shape, threads, "by shape: the measurement failed")
    # Medians over the rounds, the figures the log line shows (a choice that contradicted
    # them, as ratios taken round by round could, would puzzle whoever reads it).
    median = {name: statistics.median(times) for name, times in seconds.items()}
    ms = {name: round(value * 1e3, 4) for name, value in median.items()}
    if usual is not None:
        how = (f"by shape: BLAS on {threads} threads ran {speedup:.2f}x one thread's speed while the plans were "
               f"measured, {usual:.2f}x usually here; measured again next run")
        return ThreadPlan(by_shape, threads, how, ms)
    best = min(median, key=median.get)
    plan = best if median[best] < (1 - MARGIN) * median[by_shape] else by_shape
    record = {"plan": plan, "ms_per_step": ms, "measured": time.strftime("%Y-%m-%d")}
    kept = kept_choices.remember(signature, full_key, record)
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
    if not kept_choices.tuning_enabled():
        return "im2col"
    signature, full_key = kept_choices.machine_signature(), f"convolution {key}"
    record = kept_choices.recall(signature, full_key, _valid_way)
    if record is None and not kept_choices.measuring_here():
        return "im2col"
    if record is None:
        with _key_lock(full_key), kept_choices.machine_lock(wait=False):  # not held: this process holds it elsewhere
            record = kept_choices.recall(signature, full_key, _valid_way) or _measured_way(signature, full_key, measure)
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
    return kept_choices.kept_records("convolution ", _valid_way)


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
    kept_choices.remember(signature, full_key, record)
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
    if not kept_choices.tuning_enabled():
        return 0
    signature, full_key = kept_choices.machine_signature(), f"product {key}"
    record = kept_choices.recall(signature, full_key, _valid_blocks)
    if record is None and not kept_choices.measuring_here():
        return 0
    if record is None:
        with kept_choices.machine_lock(wait=False) as held:
            if not held:  # another thread is measuring, maybe waiting for this product
                return None
            record = (kept_choices.recall(signature, full_key, _valid_blocks)
                      or _measured_blocks(signature, full_key, measure))
    return record["rows"]


def kept_blocks() -> dict[str, dict]:
    """The block sizes kept for this machine (``product_blocks``): key -> record (``"rows"``,
    the ``"ms"`` each size took, by rows; "0" the whole product), from this process and the file."""
    return kept_choices.kept_records("product ", _valid_blocks)


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
    kept_choices.remember(signature, full_key, record)
    return record

"""How the kernels time the choices they measure on a machine, and whether its cores ran as
usual while they did: shared by ``kernels.tuning`` (the training plans) and
``kernels.split_sizes`` (when work is split across threads).

Why the check: the Zen 4 VM has periods in which its second core gives next to nothing and
the guest sees no stolen time. A choice measured then is wrong for every later run, and it is
kept: 784-512-512-10's 2-thread plans all measured at the one-thread rate (6.2-6.8 ms a step,
against 3.7-4.8 in other runs), "blas1" was kept, and later runs trained on one thread at 1.61x
PyTorch's time (benchmarks/results/2026-12-06-split-sizes). So a measurement on several
threads is bracketed by ``blas_speedup`` and kept only when the speed-up read as usual here
(``cores_as_usual``); otherwise the caller takes its default this time, and a later run
measures again.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from . import kept_choices
from .blas_limits import blas_limit

__all__ = ["USUAL_SPEEDUP_FRACTION", "blas_speedup", "bracketed", "cores_as_usual", "median_seconds"]

T = TypeVar("T")

#: A measurement is not kept when BLAS on all its threads ran at less than this fraction of
#: the machine's usual speed-up over one thread meanwhile (``cores_as_usual``).
USUAL_SPEEDUP_FRACTION = 0.75


def median_seconds(fn: Callable[[], object], reps: int) -> float:
    """Seconds ``fn()`` takes, the median of ``reps`` calls after one untimed call (the pool
    thread or BLAS's threads started, the operands touched)."""
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def blas_speedup(threads: int) -> float:
    """How many times faster BLAS multiplies two 768x768 float32 matrices on ``threads`` threads
    than on one, now: the median of 5 products each way (~80 ms in all here). Not the best of a
    few: with another process spinning on one of 2 cores, the best of 3 512x512 products still
    read 1.77x (a product fits between the scheduler's switches), the median of 5 768x768 ones
    1.02x, against 1.89x on the quiet VM."""
    a = np.random.default_rng(0).standard_normal((768, 768)).astype(np.float32)
    median = {}
    for n in (1, threads):
        with blas_limit(n):
            median[n] = median_seconds(lambda: np.dot(a, a), 5)
    return median[1] / median[threads]


def cores_as_usual(signature: str, threads: int, speedup: float) -> float | None:
    """None when ``speedup`` (``blas_speedup`` while something was measured) is within
    ``USUAL_SPEEDUP_FRACTION`` of the largest kept for this machine and thread count, or when
    none is kept yet; else that largest. The largest is kept up to date. The usual speed-up
    is the machine's own (a pair of SMT siblings gives ~1.1x)."""
    key = f"blas speedup, {threads} threads"
    record = kept_choices.recall(signature, key, lambda r: isinstance(r, dict) and isinstance(r.get("usual"), float))
    usual = None if record is None else record["usual"]
    if usual is None or speedup > usual:
        kept_choices.remember(signature, key, {"usual": round(speedup, 3), "measured": time.strftime("%Y-%m-%d")})
    return usual if usual is not None and speedup < USUAL_SPEEDUP_FRACTION * usual else None


def bracketed(signature: str, threads: int, measure: Callable[[], T]) -> tuple[T, float, float | None]:
    """``measure()`` between two readings of ``blas_speedup(threads)``: its result, the lower
    reading, and ``cores_as_usual``'s verdict on it (None: as usual, keep the result)."""
    before = blas_speedup(threads)
    result = measure()
    speedup = min(before, blas_speedup(threads))
    return result, speedup, cores_as_usual(signature, threads, speedup)

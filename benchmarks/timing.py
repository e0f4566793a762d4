"""The median time of a call, after warm-up calls: the one timing loop the benchmark tools and
the scripts under ``benchmarks/results/`` share.

Not ``layerwise.kernels.measuring.median_seconds`` (the same loop, for the choices the library
measures): ``benchmarks.before_after`` runs this code beside layerwise from older revisions,
which do not have that module."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_seconds(fn: Callable[[], object], reps: int, warmup: int = 1) -> float:
    """Seconds ``fn()`` takes, the median of ``reps`` calls after ``warmup`` untimed ones
    (threads started, caches filled, pages touched)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)

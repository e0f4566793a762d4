"""How many threads NumPy's BLAS may use, and running a block with BLAS on one thread.

Evaluation-mode ``predict`` runs its chunks on that many Python threads instead of asking BLAS
to split small matrix products: NumPy releases the GIL in BLAS, copies and ufuncs, and a
convolution's chunk spends most of its time in copies that BLAS threads never share.
threadpoolctl reads and sets the limit of whichever BLAS NumPy loaded (OpenBLAS, MKL, ...),
so a caller's ``threadpool_limits(1)`` is respected.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


@functools.cache
def _blas():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def blas_threads() -> int:
    """The number of threads NumPy's BLAS is allowed now (1 if it cannot be told)."""
    return max((lib.num_threads for lib in _blas().lib_controllers), default=1)


#: Held while a parallel section has BLAS limited to one thread. The limit is process-wide:
#: two overlapping sections could each record the other's 1 as "the previous limit" and leave
#: BLAS on one thread for good, so a second caller runs its chunks sequentially instead.
_parallel = threading.Lock()


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[bool]:
    """BLAS on one thread inside the block, the previous limits restored after it; yields
    False (and changes nothing) when another thread is inside such a block already."""
    if not _parallel.acquire(blocking=False):
        yield False
        return
    try:
        with _blas().limit(limits=1):
            yield True
    finally:
        _parallel.release()


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """One pool for the process: starting threads on every predict call costs more than a
    small batch's work. Sized by the CPUs; callers submit at most blas_threads() tasks."""
    import os

    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="layerwise")


def run_in_threads(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(item) for item in items]``, the calls running concurrently on the shared pool."""
    return list(_pool().map(fn, items))

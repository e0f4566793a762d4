"""How many threads NumPy's BLAS may use, and layerwise splitting work across them itself.

Plain expressions: ``in_parts(fn, n)`` is ``fn(...)`` (one call over everything), and
``matmul(a, b, add)`` is ``a @ b + add``; parts change which core computes what, not the
numbers (row and column blocks compute each output value as unsplit; inner-sum parts add in a
fixed order).

Evaluation-mode ``predict`` runs its chunks on that many Python threads instead of asking BLAS
to split small matrix products, and the Trainer splits a convnet's passes and products:
NumPy releases the GIL in BLAS, copies and ufuncs, and a convolution spends much of its time
in copies and elementwise passes that BLAS threads never share.
threadpoolctl reads and sets the limit of whichever BLAS NumPy loaded (OpenBLAS, MKL, ...),
so a caller's ``threadpool_limits(1)`` is respected.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from types import EllipsisType
from typing import TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")


@functools.cache
def _blas():
    from threadpoolctl import ThreadpoolController  # ~10 ms to import and scan: not at CLI start

    return ThreadpoolController().select(user_api="blas")


def blas_threads() -> int:
    """The number of threads NumPy's BLAS is allowed now (1 if it cannot be told)."""
    return max((lib.num_threads for lib in _blas().lib_controllers), default=1)


# Owning the threads. OpenBLAS splits a product across its threads, and each of them then
# spins on its core for ~0.1 s waiting for the next product (measured: a full core of CPU
# while the caller sleeps). A Python thread that layerwise puts on that core meanwhile, to
# split an elementwise pass, gets a fraction of it: SimpleConvNet's max pooling on 2 threads
# was no faster than on one. So when layerwise splits work itself, it owns the threads:
# BLAS is limited to one (no spinning workers) and layerwise cuts both the passes and the
# large products into parts, one per thread BLAS was allowed.
_ownership = threading.RLock()  # held by the thread that limited BLAS; re-entrant for it
_owned = 0  # the threads layerwise splits work across while it owns them; 0 otherwise
_busy = threading.Lock()  # held while parts run on the pool: a part never splits again


@contextlib.contextmanager
def owned_threads() -> Iterator[int]:
    """Inside the block layerwise owns the threads BLAS was allowed: BLAS runs on one, and
    ``in_parts``, ``matmul`` and evaluation-mode ``predict`` split their work across all of
    them. Yields their number; 1 (and changes nothing) when BLAS was allowed only one, or
    another thread owns them. Re-entrant in the owning thread. The BLAS limits in force
    before are restored on leaving. The limit is process-wide: two overlapping owners could
    each record the other's 1 as "the previous limit" and leave BLAS on one thread for good,
    so there is one owner at a time."""
    global _owned
    if not _ownership.acquire(blocking=False):
        yield 1
        return
    try:
        if _owned:
            yield _owned
            return
        workers = blas_threads()
        if workers <= 1:
            yield 1
            return
        with _blas().limit(limits=1):
            _owned = workers
            try:
                yield workers
            finally:
                _owned = 0
    finally:
        _ownership.release()


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """One pool for the process: starting threads on every predict call costs more than a
    small batch's work. Sized by the CPUs; callers submit at most blas_threads() tasks."""
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="layerwise")


def run_in_threads(fn: Callable[[T], R], items: Iterable[T]) -> list[R] | None:
    """``[fn(item) for item in items]``, the calls running concurrently on the shared pool;
    None (nothing called) when other parts are running on it already: the caller runs its
    work itself then, as a part must never wait for the pool it runs on."""
    if not _busy.acquire(blocking=False):
        return None
    try:
        return list(_pool().map(fn, items))
    finally:
        _busy.release()


#: Elements below which a pass is not split across threads: handing a part to a pool thread
#: and waiting for it costs ~25 us, what a float32 pass over ~100,000 elements takes.
SPLIT_MIN_ELEMENTS = 1 << 17

#: Multiply-adds below which a product is not split: the 784-50-10 net's 100x784x50
#: products (3.9M) take ~90 us on one core and ~100 us as two halves on two Python threads;
#: SimpleConvNet's (43M) take the same time as OpenBLAS's own two threads.
SPLIT_MIN_MACS = 1 << 24


def in_parts(fn: Callable[[slice | EllipsisType], None], n: int, split: bool = True) -> None:
    """Run ``fn(part)`` over parts that together cover ``range(n)`` (a batch axis, or a
    flattened array): one part per owned thread (see ``owned_threads``) when ``split`` (the
    caller's judgement that the work pays for threads) and layerwise owns several threads,
    else one call ``fn(...)``; also inside another part, which must never wait on the pool.

    Why: layerwise's elementwise passes (ReLU, max pooling, the optimizers) run on one core
    while BLAS splits only the products; NumPy releases the GIL in ufuncs and copies, so the
    parts of a pass run on all cores (max pooling on 2 threads: 2.4 -> 1.4 ms). ``fn`` must
    write each part's results into arrays allocated beforehand, touching nothing outside its
    part: the parts run in any order, at the same time.
    """
    workers = min(_owned, n) if split else 1
    if workers <= 1 or not _busy.acquire(blocking=False):
        fn(...)
        return
    try:
        bounds = [n * k // workers for k in range(workers + 1)]
        parts = [slice(lo, hi) for lo, hi in itertools.pairwise(bounds)]
        futures = [_pool().submit(fn, part) for part in parts[1:]]
        try:
            fn(parts[0])
        finally:
            wait(futures)  # every part done (or failed) before anyone reads the results
        for future in futures:
            future.result()  # a part's exception
    finally:
        _busy.release()


def matmul(a: np.ndarray, b: np.ndarray, add: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for 2-D arrays, plus the row ``add`` (a layer's bias) when given; while
    layerwise owns several threads, a product of at least SPLIT_MIN_MACS multiply-adds is cut
    into parts, one per thread (BLAS is on one thread then: see ``owned_threads``). Row blocks
    of ``a`` when it has many rows (each part adds ``add`` to its own rows, while they are in
    cache), else column blocks of ``b`` when it has many columns: each output value is the same
    computation as unsplit. With few of both (a weight gradient dᵀ·x summed over a
    long batch axis: SimpleConvNet's is 30 x 57,600 x 25) row blocks would be thin and each
    read all of ``b``, so the sum over the inner axis is cut instead and the parts' small
    results added (in part order: the same numbers for the same thread count)."""
    (m, k), n = a.shape, b.shape[1]
    if add is not None:
        # As a (1, n) row: for one row of a, NumPy then takes its same-shape add (0.6 us instead
        # of 1.5 us, which single-image inference counts).
        add = add.reshape(1, n)
    if _owned <= 1 or m * k * n < SPLIT_MIN_MACS:
        out = np.dot(a, b)  # for 2-D arrays a @ b, with ~0.35 us less overhead per call
    elif m >= 64 * _owned:
        out = np.empty((m, n), dtype=np.result_type(a, b))

        def row_block(rows: slice | EllipsisType) -> None:
            np.matmul(a[rows], b, out=out[rows])
            if add is not None:
                out[rows] += add

        in_parts(row_block, m)
        return out
    elif n >= 64 * _owned:  # few rows, many columns (dx = dout·Wᵀ of a wide layer): column blocks of b
        out = np.empty((m, n), dtype=np.result_type(a, b))
        in_parts(lambda cols: np.matmul(a, b[:, cols], out=out[:, cols]), n)
    else:
        partial: dict[int, np.ndarray] = {}

        def inner_part(ks: slice | EllipsisType) -> None:
            partial[ks.start if isinstance(ks, slice) else 0] = a[:, ks] @ b[ks]

        in_parts(inner_part, k)
        out, *rest = (partial[start] for start in sorted(partial))
        for part in rest:
            out += part
    if add is not None:
        out += add  # out is new: adding in place saves a temporary
    return out

"""Layerwise splitting work across the run's threads itself: owning them, parts, chunks, products.

Plain expressions: ``in_parts(fn, n)`` is ``fn(...)`` (one call over everything),
``in_chunks(fn, n, size)`` is ``fn`` over consecutive chunks of the batch in order, and
``matmul(a, b, add)`` is ``a @ b + add``; parts change which core computes what, not the
numbers (row and column blocks compute each output value as unsplit; inner-sum parts add in a
fixed order).

Evaluation-mode ``predict`` runs its chunks on that many Python threads instead of asking BLAS
to split small matrix products, and the Trainer splits a convnet's passes and products:
NumPy releases the GIL in BLAS, copies and ufuncs, and a convolution spends much of its time
in copies and elementwise passes that BLAS threads never share. Beside other work, the parts
are taken by whichever thread is free (``_Parts``; measurements: benchmarks/README.md, "Under
load"). How many threads a run gets, and BLAS's own limits, are ``kernels.blas_limits``'s.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import EllipsisType
from typing import TypeVar

import numpy as np

from .blas_limits import blas_limit, run_threads

T = TypeVar("T")
R = TypeVar("R")


# Owning the threads. OpenBLAS splits a product across its threads, and each of them then
# spins on its core for ~0.1 s waiting for the next product (measured: a full core of CPU
# while the caller sleeps). A Python thread that layerwise puts on that core meanwhile, to
# split an elementwise pass, gets a fraction of it: SimpleConvNet's max pooling on 2 threads
# was no faster than on one. So when layerwise splits work itself, it owns the threads:
# BLAS is limited to one (no spinning workers) and layerwise cuts both the passes and the
# large products into parts, one per thread of ``run_threads``.
_ownership = threading.RLock()  # held by the thread that limited BLAS; re-entrant for it
_owned = 0  # the threads layerwise splits work across while it owns them; 0 otherwise
_busy = threading.Lock()  # held while parts run on the pool: a part never splits again


@contextlib.contextmanager
def owned_threads() -> Iterator[int]:
    """Inside the block layerwise owns the threads of ``run_threads``: BLAS runs on one, and
    ``in_parts``, ``matmul`` and evaluation-mode ``predict`` split their work across all of
    them. Yields their number; 1 (and changes nothing) when another thread owns them.
    Re-entrant in the owning thread. On leaving, the BLAS limits in force before are restored
    (then a number the user set meanwhile applies: ``blas_limit``). The limit is process-wide:
    two overlapping owners could each record the other's 1 as "the previous limit" and leave
    BLAS on one thread for good, so there is one owner at a time."""
    global _owned
    if not _ownership.acquire(blocking=False):
        yield 1
        return
    try:
        if _owned:
            yield _owned
            return
        workers = run_threads()[0]
        with blas_limit(1):
            _owned = workers if workers > 1 else 0
            try:
                yield workers
            finally:
                _owned = 0
    finally:
        _ownership.release()


@contextlib.contextmanager
def paused_ownership() -> Iterator[None]:
    """Inside the block the owning thread's work runs unsplit, on it alone, as if no thread
    were owned (BLAS stays on one): a part of a training step that a worker process computes
    beside it (the ``"processes"`` plan), where the other core is the worker's. Only for the
    thread that owns the threads; elsewhere it changes nothing."""
    global _owned
    held, _owned = _owned, 0
    try:
        yield
    finally:
        _owned = held


_splitter: int | None = None  # the thread whose training steps cut their batch ("split" plan)


@contextlib.contextmanager
def split_batches() -> Iterator[int]:
    """``owned_threads``, and inside the block the calling thread's training steps cut their
    batch into one part per owned thread, each part through the whole network on its own
    (``batch_parts``; ``models.batch_parts`` does it). Yields the number of parts."""
    global _splitter
    with owned_threads() as workers:
        if workers <= 1 or _splitter is not None:
            yield workers
            return
        _splitter = threading.get_ident()
        try:
            yield workers
        finally:
            _splitter = None


def batch_parts() -> int:
    """How many parts a training step on this thread cuts its batch into now (1: not cut;
    always 1 on a thread other than the one that entered ``split_batches``)."""
    return _owned if _splitter == threading.get_ident() else 1




@functools.cache
def _pool() -> ThreadPoolExecutor:
    """One pool for the process: starting threads on every predict call costs more than a
    small batch's work. Sized by the CPUs; callers submit at most blas_threads() tasks."""
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="layerwise")


def run_in_threads(fn: Callable[[T], R], items: Iterable[T]) -> list[R] | None:
    """``[fn(item) for item in items]``, the calls running concurrently (``_Parts``);
    None (nothing called) when other parts are running on it already: the caller runs its
    work itself then, as a part must never wait for the pool it runs on."""
    if not _busy.acquire(blocking=False):
        return None
    try:
        items = list(items)
        return _Parts(fn, items).run_all(helpers=len(items) - 1)
    finally:
        _busy.release()


#: Elements below which a pass is not split across threads, until this machine's own size is
#: known (``kernels.split_sizes``, which says why it differs by machine): on the family-26 AMD
#: VM handing a part to a pool thread and waiting for it cost ~25 us, what a float32 pass over
#: ~100,000 elements took.
SPLIT_MIN_ELEMENTS = 1 << 17

#: Multiply-adds below which a product is not split, likewise: there the 784-50-10 net's
#: 100x784x50 products (3.9M) took ~90 us on one core and ~100 us as two halves on two Python
#: threads; SimpleConvNet's (43M) took the same time as OpenBLAS's own two threads.
SPLIT_MIN_MACS = 1 << 24

# The sizes in force: the defaults above, or this machine's (``set_split_sizes``).
_min_elements, _min_macs = SPLIT_MIN_ELEMENTS, SPLIT_MIN_MACS


def set_split_sizes(min_elements: int, min_macs: int) -> None:
    """The smallest pass (values) and product (multiply-adds) split across owned threads from
    now on: ``kernels.split_sizes.adopt`` sets this machine's."""
    global _min_elements, _min_macs
    _min_elements, _min_macs = int(min_elements), int(min_macs)


def current_split_sizes() -> tuple[int, int]:
    """The smallest pass (values) and product (multiply-adds) split across owned threads now."""
    return _min_elements, _min_macs


def worth_splitting(values: int) -> bool:
    """Whether a pass over ``values`` values is large enough to split across the owned
    threads on this machine (``in_parts``' ``split``)."""
    return values >= _min_elements


def owned() -> int:
    """The threads layerwise splits work across now (``owned_threads``); 0 when it owns none."""
    return _owned


_part = threading.local()  # .inside: this thread is running a part of _Parts (its fn)


class _Parts:
    """``fn`` over ``items``, each item taken by whichever thread is free: the calling thread
    runs items until none is left, then waits only for those a pool thread has started.

    Why: when another process keeps a core busy, a pool thread may wait for that core for a
    whole scheduler time slice (several ms) before it runs; the calling thread then takes
    its item instead of waiting (measured on 2 busy cores, 128x784 @ 784x512 products in row
    halves: 611 products/s this way, 485/s handing each half to a fixed thread). Each item's
    result is its own, so which thread computed it changes nothing in the numbers."""

    def __init__(self, fn: Callable[[T], R], items: Iterable[T]) -> None:
        self.fn = fn
        self.todo = collections.deque(enumerate(items))  # popleft is atomic: each item taken once
        self.results: list = [None] * len(self.todo)
        self.left = len(self.todo)
        self.finished = threading.Condition()
        self.error: BaseException | None = None

    def run(self) -> None:
        outer, _part.inside = getattr(_part, "inside", False), True
        try:
            while True:
                try:
                    index, item = self.todo.popleft()
                except IndexError:
                    return
                try:
                    self.results[index] = self.fn(item)
                except BaseException as exc:  # re-raised in the calling thread by wait()
                    self.error = self.error or exc
                with self.finished:
                    self.left -= 1
                    if not self.left:
                        self.finished.notify_all()
        finally:
            _part.inside = outer

    def run_all(self, helpers: int) -> list:
        """Run every item with up to ``helpers`` pool threads helping; the results in order."""
        for _ in range(min(helpers, self.left - 1)):
            _pool().submit(self.run)
        self.run()
        with self.finished:  # every item done (or failed) before anyone reads the results
            while self.left:
                self.finished.wait()
        if self.error is not None:
            raise self.error
        return self.results


def in_parts(fn: Callable[[slice | EllipsisType], None], n: int, split: bool = True) -> None:
    """Run ``fn(part)`` over parts that together cover ``range(n)`` (a batch axis, or a
    flattened array): one part per owned thread (see ``owned_threads``) when ``split`` (the
    caller's judgement that the work pays for threads) and layerwise owns several threads,
    else one call ``fn(...)``; also inside another part, which must never wait on the pool.
    The parts are the same whatever the load; which thread runs each one is not (``_Parts``).

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
        _Parts(fn, [slice(lo, hi) for lo, hi in itertools.pairwise(bounds)]).run_all(helpers=workers - 1)
    finally:
        _busy.release()


def in_chunks(fn: Callable[[slice], None], n: int, size: int) -> None:
    """Run ``fn(chunk)`` over consecutive, equal chunks of at most ``size`` that cover
    ``range(n)`` (a batch axis): in order on the calling thread, or, while layerwise owns
    several threads, each chunk taken by whichever of them is free (``_Parts``), as many
    chunks for each thread (while ``n`` allows); inside a part of another split (predict's
    chunks, the split plan's parts) as many as ``size`` needs, in order. The chunks depend on
    ``n``, ``size``, the owned threads and whether the call runs inside a part, never on the
    load (dW sums its chunks in order: the numbers depend on the chunks).
    ``fn`` follows ``in_parts``'s rule: it writes only its own chunk's results, into arrays
    allocated beforehand.

    Why: a convolution works through its batch a few images at a time so that each chunk's
    im2col matrix stays in cache (see ``kernels.conv``); spread over the threads, every core
    then runs whole chunks, copy and product together, on its own data. A chunk count that
    is a multiple of the threads keeps one thread from idling while another runs a last
    chunk (DeepConvNet's third convolution made 3 chunks of 34 images).
    """
    if n <= 0:
        return
    count = -(-n // max(1, size))
    inside = getattr(_part, "inside", False)  # inside a part: the chunks run in order, unsplit
    if _owned > 1 and not inside:
        count = -(-count // _owned) * _owned
    chunks = equal_chunks(n, min(n, count))
    # Another thread may hold _busy (a prediction beside the training): the same chunks, in order.
    if len(chunks) == 1 or _owned <= 1 or inside or not _busy.acquire(blocking=False):
        for chunk in chunks:
            fn(chunk)
        return
    try:
        _Parts(fn, chunks).run_all(helpers=min(_owned, len(chunks)) - 1)
    finally:
        _busy.release()


def sum_in_chunks(fn: Callable[[slice], np.ndarray], n: int, size: int) -> np.ndarray | None:
    """The sum of ``fn(chunk)`` over ``in_chunks``'s chunks of ``range(n)``, added in chunk
    order whichever threads computed them, so that the sum's rounding does not depend on the
    load; None when ``n`` is 0 (no chunk). A weight gradient's per-chunk products, summed."""
    partial: dict[int, np.ndarray] = {}

    def chunk(part: slice) -> None:
        partial[part.start] = fn(part)

    in_chunks(chunk, n, size)
    if not partial:
        return None
    total, *rest = (partial[start] for start in sorted(partial))
    for part in rest:
        total += part
    return total


def chunk_threads() -> int:
    """How many threads ``in_chunks`` would spread chunks across if called now: the owned
    threads, or 1 (nothing owned, or inside a part of another split)."""
    return _owned if _owned > 1 and not getattr(_part, "inside", False) else 1


def parts_at_once() -> int:
    """How many parts of a split run at the same time as the caller's (the caller's included):
    the owned threads inside a part, else 1."""
    return _owned if _owned > 1 and getattr(_part, "inside", False) else 1


def side_by_side(fn: Callable[[], object], copies: int) -> float:
    """Wall seconds of ``copies`` calls of ``fn`` running at once, each on a thread of its own
    that counts as a part of a split (``in_chunks`` runs its chunks in order there, as in a
    split's parts), the calling thread one of them. How a measurement sees a kernel run beside
    the other parts of a split: there the parts share the process's memory bandwidth, its
    allocator and the GIL, which a call alone does not show (see ``kernels.conv.use_winograd``)."""
    start = threading.Barrier(copies)
    errors: list[BaseException] = []

    def one() -> None:
        outer, _part.inside = getattr(_part, "inside", False), True
        try:
            start.wait()
            fn()
        except BaseException as exc:  # re-raised in the calling thread below
            errors.append(exc)
        finally:
            _part.inside = outer

    others = [threading.Thread(target=one, daemon=True) for _ in range(copies - 1)]
    for thread in others:
        thread.start()
    began = time.perf_counter()
    one()
    for thread in others:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - began


def equal_chunks(n: int, count: int) -> list[slice]:
    """``count`` consecutive slices covering ``range(n)`` whose lengths differ by at most one
    (100 in 3: 33, 33, 34), so no chunk runs at a much smaller batch than the others."""
    bounds = [n * k // count for k in range(count + 1)]
    return [slice(lo, hi) for lo, hi in itertools.pairwise(bounds)]


def matmul(a: np.ndarray, b: np.ndarray, add: np.ndarray | None = None, min_macs: int | None = None) -> np.ndarray:
    """``a @ b`` for 2-D arrays, plus the row ``add`` (a layer's bias) when given; while
    layerwise owns several threads, a product of at least ``min_macs`` multiply-adds (this
    machine's size, ``current_split_sizes``, unless given) is cut
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
    if _owned <= 1 or m * k * n < (_min_macs if min_macs is None else min_macs):
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

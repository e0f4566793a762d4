"""How many threads NumPy's BLAS may use: the run's number, limits held by blocks, and the cores
other processes leave free.

threadpoolctl reads and sets the limit of whichever BLAS NumPy loaded (OpenBLAS, MKL, ...),
so a caller's ``threadpool_limits(1)`` is respected. How many threads a run gets is
``run_threads`` (the numbers themselves come from ``cpu``); the user's number is followed
process-wide (``set_num_threads``, as ``torch.set_num_threads``); blocks hold BLAS at a count
of their own (``blas_limit``: the Trainer's plans, ``kernels.threads.owned_threads``); and an
MLP's BLAS threads follow the cores other processes leave free (``CoreShare``). Measurements
behind the last: benchmarks/README.md, "Under load". Splitting work across the threads
layerwise itself is ``kernels.threads``'s.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator

from .. import cpu
from ..cpu import CpuShare
from ..errors import InputError

__all__ = ["CoreShare", "blas_limit", "blas_threads", "run_threads", "set_blas_threads", "share_cores"]


@functools.cache
def _blas():
    from threadpoolctl import ThreadpoolController  # ~10 ms to import and scan: not at CLI start

    return ThreadpoolController().select(user_api="blas")


def blas_threads() -> int:
    """The number of threads NumPy's BLAS is allowed now (1 if it cannot be told)."""
    return max((lib.num_threads for lib in _blas().lib_controllers), default=1)


def run_threads() -> tuple[int, bool]:
    """The threads a training or a prediction runs on, and whether that number is fixed.

    Fixed: the user's number (``cpu.get_num_threads``: ``set_num_threads``, ``--threads``,
    ``LAYERWISE_THREADS``, ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``), or fewer threads than
    the usable cores that a caller allowed BLAS (``threadpool_limits(1)`` around a call holds).
    Otherwise the usable cores, left to layerwise to share (``CoreShare``)."""
    threads, source = cpu.thread_setting()
    if source != "usable cores":
        return threads, True
    allowed = blas_threads()
    return (allowed, True) if allowed < threads else (threads, False)


_user_limit = None  # threadpoolctl's limiter of the user's number: it holds the limits before
# BLAS's limits change in two ways: the user's number (above), and blocks that hold BLAS at a
# count of their own while they run (``blas_limit``: owned_threads, the Trainer's plans,
# share_cores). A set_num_threads on another thread while a training held BLAS at one thread
# recorded that 1 as "the limits before", so unsetting the number later left BLAS on one
# thread for good. So the changes take turns under ``_limits``, and a number set while a block
# holds BLAS is applied when the last such block ends.
_limits = threading.RLock()
_holding = 0  # blocks holding BLAS's limits now, in any thread
_follow_pending = False  # a set_num_threads came while _holding > 0


def _follow_thread_setting() -> None:
    """BLAS on the user's number of threads (``set_num_threads``, ``--threads``,
    ``LAYERWISE_THREADS``) everywhere in the process, as ``torch.set_num_threads`` does; back to
    the limits before once the number is unset. Why: without it a ``predict`` of one batch ran
    its products on every BLAS thread after ``set_num_threads(1)``; only the Trainer's plans and
    predict's chunks limited BLAS. (``OPENBLAS_NUM_THREADS`` and ``OMP_NUM_THREADS`` BLAS reads
    itself.) A bad ``LAYERWISE_THREADS`` is left for ``cpu.get_num_threads`` to name."""
    global _follow_pending
    with _limits:
        if _holding:  # applied when the last block lets go (blas_limit)
            _follow_pending = True
            return
        _apply_thread_setting()


def _apply_thread_setting() -> None:
    """The user's number on BLAS now, or the limits from before any number once it is unset."""
    global _user_limit
    try:
        threads, source = cpu.thread_setting()
    except InputError:
        return
    if source in ("set_num_threads", cpu.ENV_VAR):
        if _user_limit is None:
            _user_limit = _blas().limit(limits=threads)
        else:  # the first limiter keeps the limits from before any number was set
            _blas().limit(limits=threads)
    elif _user_limit is not None:
        _user_limit.restore_original_limits()
        _user_limit = None


cpu.follow_thread_setting(_follow_thread_setting)


@contextlib.contextmanager
def blas_limit(threads: int) -> Iterator[None]:
    """BLAS on ``threads`` threads inside the block; on leaving, the limits before, and then,
    when no other block holds BLAS, any number the user set meanwhile. Blocks nest; blocks of
    different threads that overlap without nesting leave the limits of whichever restores
    last (BLAS's limit is one for the process)."""
    global _holding, _follow_pending
    with _limits:
        limiter = _blas().limit(limits=threads)
        _holding += 1
    try:
        yield
    finally:
        with _limits:
            try:
                limiter.restore_original_limits()
            finally:
                _holding -= 1
                if not _holding and _follow_pending:
                    _follow_pending = False
                    _apply_thread_setting()


def set_blas_threads(threads: int) -> None:
    """BLAS on ``threads`` threads from now on, inside a ``blas_limit`` block that restores the
    limits when it ends (``CoreShare`` changing its count between steps)."""
    with _limits:
        _blas().limit(limits=threads)


class CoreShare:
    """BLAS's thread count during an MLP's training when the user left it to layerwise
    (``cpu.is_fixed``): all ``threads`` while the CPUs are otherwise idle, only the cores other
    processes leave free while they are busy (at least one).

    Why: OpenBLAS's threads spin on their cores between products and wait for each other
    within one; with another process on the other core each product waits for a time slice.
    Measured (``python -m benchmarks.under_load``, 2 cores, 784-50-10): two copies at once
    took 29x their time alone on 2 BLAS threads, 1.0x on one; no spin timeout helped (see
    benchmarks/README.md). The thread count changes which OpenBLAS kernels compute a product,
    so with it left to layerwise a run's last digits depend on the load: fix the threads
    (``set_num_threads``, ``LAYERWISE_THREADS``, ``--threads``) for bitwise repeatable runs.
    """

    def __init__(self, threads: int, share: CpuShare | None = None) -> None:
        self.threads = self.now = threads
        self.share = share or CpuShare(window_s=0.15)
        self._up_votes = 0

    def check(self) -> int:
        """Called between steps; re-decides at most once per window. Returns the thread count."""
        others = self.share.others()
        if others is None:
            return self.now
        free = max(1, min(self.threads, round(self.share.ncpus - others)))
        if free < self.now:  # contention costs at once: give the cores back now
            self._set(free)
        elif free > self.now:  # a free core must stay free for two windows before it is taken
            self._up_votes += 1
            if self._up_votes >= 2:
                self._set(free)
        else:
            self._up_votes = 0
        return self.now

    def _set(self, n: int) -> None:
        self.now, self._up_votes = n, 0
        set_blas_threads(n)


_shared: CoreShare | None = None  # the process's CoreShare: its decision outlives one fit()


@contextlib.contextmanager
def share_cores(threads: int) -> Iterator[CoreShare]:
    """The process's ``CoreShare`` for a block, starting from its last decision (a new
    ``fit()`` under load does not begin on cores another process holds); the BLAS limits in
    force before are restored on leaving."""
    global _shared
    if _shared is None or _shared.threads != threads:
        _shared = CoreShare(threads)
    with blas_limit(_shared.now):
        yield _shared

"""Worker processes that run parts of a training step beside the calling one: the machinery of
the ``"processes"`` thread plan (``models.batch_parts`` cuts the batch; the worker's loop is
``models.part_worker``).

Nothing here computes: a pool starts its workers, lays out one shared block of memory (the
parameters every worker reads, and each worker's own inputs and outputs), and passes small
messages. The numbers are the ``"split"`` plan's, part for part.

Why processes: two Python threads share one interpreter lock, and NumPy holds it between its
loops (argument parsing, dispatch, allocation, the Python around the calls): 16-19 % of a
DeepConvNet part's time. Two parts on two threads took 1.36 / 1.42x a part alone (forward /
gradient), as two processes 1.04 / 1.08x (Zen 4 VM, SkylakeX kernels; benchmarks/results/
2026-12-06-gil/gil_cost-skylakex.txt). A worker process has an interpreter of its own.

How: each worker is ``python -m layerwise.models.part_worker FD``, started with
``subprocess`` (not ``multiprocessing``, whose "spawn" runs the parent's main script again in
the child: a learner's script without ``if __name__ == "__main__"`` would train twice), talking
over a socket pair through ``multiprocessing.connection.Connection``. The shared block is a
file in ``/dev/shm`` (else the temp folder), mapped by both sides and unlinked once every
worker has mapped it, so nothing is left behind whatever happens to either. POSIX only
(``supported``): the socket's descriptor is handed to the child.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Layout", "PartProcesses", "WorkerLost", "active", "largest_worker_peak", "processes_plan", "supported"]

#: Where a pool's shared block lives when the folder exists: memory, not a disk.
SHARED_FOLDER = "/dev/shm"
#: Seconds a worker may take to start (import NumPy and layerwise) or to set a network up.
START_TIMEOUT_S = 60.0
#: Seconds a worker may take over one step's part before the pool gives up on it.
STEP_TIMEOUT_S = 600.0
#: The worker's entry point.
WORKER_MODULE = "layerwise.models.part_worker"
#: Each array in the shared block starts on a multiple of this many bytes (a cache line).
ALIGN = 64


class WorkerLost(RuntimeError):
    """A worker process died, timed out, or failed its part (the text says which and why)."""


def supported() -> bool:
    """Whether this platform can run worker processes here (a descriptor handed to a child)."""
    return os.name == "posix" and hasattr(socket, "socketpair")


@dataclass(frozen=True)
class Layout:
    """Where each named array lies in the shared block: name -> (offset, shape, dtype)."""

    places: dict[str, tuple[int, tuple[int, ...], str]]
    size: int

    @classmethod
    def of(cls, arrays: dict[str, tuple[tuple[int, ...], np.dtype]]) -> Layout:
        places, offset = {}, 0
        for name, (shape, dtype) in arrays.items():
            dtype = np.dtype(dtype)
            places[name] = (offset, tuple(int(n) for n in shape), dtype.str)
            offset += -(-math.prod(shape) * dtype.itemsize // ALIGN) * ALIGN
        return cls(places, max(offset, ALIGN))

    def views(self, buffer: Any) -> dict[str, np.ndarray]:
        """Each array as a NumPy view of ``buffer`` (the mapped block)."""
        return {name: np.ndarray(shape, np.dtype(dtype), buffer, offset)
                for name, (offset, shape, dtype) in self.places.items()}


class PartProcesses:
    """``count`` worker processes and the shared block they read and write.

    ``setup(spec, layout)`` maps a new block of ``layout`` and sends every worker ``spec`` (what
    it needs to build its part: the network's config, say) with it; ``send`` and ``receive``
    pass one step's messages. Any failure of a worker (it died, hung, or raised) is a
    ``WorkerLost``; the pool is then closed, and its caller computes the parts itself."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.views: dict[str, np.ndarray] = {}
        self.spec: Any = None
        self._block: mmap.mmap | None = None
        self._workers: list[tuple[subprocess.Popen, Connection]] = []
        self.closed = False
        try:
            for _ in range(count):
                self._workers.append(self._start())
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _start() -> tuple[subprocess.Popen, Connection]:
        ours, theirs = socket.socketpair()
        # The folder this layerwise was imported from first on the worker's path: a script that
        # put a source tree on sys.path itself gets its workers from the same tree.
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(filter(None, (package_root, os.environ.get("PYTHONPATH"))))
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", WORKER_MODULE, str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, start_new_session=True,  # Ctrl-C reaches the trainer alone
                env={**os.environ, "PYTHONPATH": path},
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return process, Connection(ours.detach())

    def setup(self, spec: Any, layout: Layout) -> None:
        """A new shared block of ``layout``, mapped here and by every worker, which builds what
        ``spec`` describes; ``views`` are the block's arrays. Raises ``WorkerLost``."""
        self._unmap()
        folder = SHARED_FOLDER if os.path.isdir(SHARED_FOLDER) else None
        handle, path = tempfile.mkstemp(prefix="layerwise-parts-", dir=folder)
        try:
            os.ftruncate(handle, layout.size)
            self._block = mmap.mmap(handle, layout.size)
            for index in range(self.count):
                self.send(index, ("setup", spec, path, layout))
            for index in range(self.count):
                self.receive(index, START_TIMEOUT_S)
        finally:
            os.close(handle)
            os.unlink(path)  # every worker has it mapped (or has failed): the memory lives on in the maps
        self.views, self.spec = layout.views(self._block), spec

    def send(self, index: int, message: Any) -> None:
        process, connection = self._workers[index]
        try:
            connection.send(message)
        except (OSError, ValueError) as error:
            status = _exit_status(process)
            what = f"stopped ({status})" if status else f"could not be sent its work ({error})"
            raise self._lost(index, what) from None

    def receive(self, index: int, timeout: float = STEP_TIMEOUT_S) -> Any:
        """The worker's answer: ``("ok", value)`` gives ``value``; anything else raises."""
        process, connection = self._workers[index]
        try:
            if not connection.poll(timeout):
                raise self._lost(index, f"gave no answer within {timeout:g} s")
            kind, value = connection.recv()
        except (EOFError, OSError) as error:
            raise self._lost(index, f"stopped ({_exit_status(process) or error})") from None
        if kind != "ok":
            raise self._lost(index, f"failed:\n{value}")
        return value

    def _lost(self, index: int, what: str) -> WorkerLost:
        self.close()
        return WorkerLost(f"layerwise's worker process {index + 1} of {self.count} {what}")

    def _unmap(self) -> None:
        self.views, self.spec = {}, None
        if self._block is not None:
            with contextlib.suppress(BufferError):  # a caller still holds a view: the map goes with it
                self._block.close()
            self._block = None

    def close(self) -> None:
        """Stop the workers (asked first, killed if they do not go) and unmap the block; each
        worker still answering says its peak memory first (``largest_worker_peak``)."""
        global _largest_peak
        if self.closed:
            return
        self.closed = True
        for _, connection in self._workers:
            with contextlib.suppress(OSError, ValueError, EOFError):
                connection.send(("peak_rss", None))
                if connection.poll(2):
                    kind, value = connection.recv()
                    if kind == "ok":
                        _largest_peak = max(_largest_peak, int(value))
            with contextlib.suppress(OSError, ValueError):
                connection.send(("stop", None))
            connection.close()
        for process, _ in self._workers:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._unmap()


_largest_peak = 0  # bytes: the largest peak memory a worker of this process reported when stopped


def largest_worker_peak() -> int:
    """The largest peak resident memory (bytes) any worker process of this process had, as it
    reported when its pool stopped; 0 if none ran. For the benchmarks' memory figures."""
    return _largest_peak


def _exit_status(process: subprocess.Popen) -> str:
    with contextlib.suppress(subprocess.TimeoutExpired):
        code = process.wait(timeout=1)
        return f"exit status {code}" if code >= 0 else f"killed by signal {-code}"
    return ""


# The plan's block: the parts' process count while it is on, and the pool it started, if any.
_plan = threading.local()


@contextlib.contextmanager
def processes_plan(threads: int) -> Iterator[int]:
    """Inside the block the calling thread's training steps cut their batch into ``threads``
    parts, the parts after the first computed by ``threads - 1`` worker processes (started at
    the first step, stopped when the block ends). Yields ``threads``. Nested, the outer
    block's pool serves."""
    if getattr(_plan, "threads", 0):
        yield _plan.threads
        return
    _plan.threads, _plan.pool = threads, None
    try:
        yield threads
    finally:
        pool, _plan.threads, _plan.pool = _plan.pool, 0, None
        if pool is not None:
            pool.close()


def active() -> tuple[int, PartProcesses | None]:
    """The calling thread's parts under ``processes_plan`` (0 outside it) and its pool so far."""
    return getattr(_plan, "threads", 0), getattr(_plan, "pool", None)


def start_pool(count: int) -> PartProcesses:
    """The plan's pool of ``count`` workers, started now (raises ``OSError`` if it cannot be)."""
    if not getattr(_plan, "threads", 0):
        raise RuntimeError("start_pool outside processes_plan")
    _plan.pool = PartProcesses(count)
    return _plan.pool


def forget_pool() -> None:
    """Drop the plan's pool (closed, after a ``WorkerLost``): its steps go on without processes."""
    _plan.pool = None
    _plan.threads = -1 if getattr(_plan, "threads", 0) else 0  # still inside the block, parts in this process

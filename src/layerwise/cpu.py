"""How many threads layerwise computes on: the cores this process may use, and the user's say.

Only the standard library here: the command line reads this before NumPy loads.

The number, first found wins:

1. ``set_num_threads(n)`` in the API, or ``--threads N`` on the command line;
2. the ``LAYERWISE_THREADS`` environment variable;
3. an explicit ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS`` (respected, as NumPy would);
4. the usable cores: the CPUs this process may run on (``os.sched_getaffinity``), capped by
   a cgroup CPU quota (a container given 2 CPUs of a 64-core host gets 2 threads, not 64).

A number set in one of the first two ways also limits NumPy's BLAS for the whole process,
as ``torch.set_num_threads`` limits PyTorch's (``kernels.threads`` follows the setting once
NumPy is loaded); BLAS reads the third way's variables itself.

A number set in one of the first three ways is *fixed*: layerwise computes on that many
threads, the way measured fastest for the network on this machine and kept
(``kernels.tuning``), whatever else runs. Otherwise layerwise also watches what other
processes use of its CPUs (``CpuShare``) and, in an MLP's training, lets BLAS use only the
cores they leave free (``kernels.blas_limits.share_cores``).
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections.abc import Callable
from pathlib import Path

from .errors import InputError

__all__ = [
    "ENV_VAR",
    "CpuShare",
    "cgroup_cpu_limit",
    "describe",
    "follow_thread_setting",
    "get_num_threads",
    "is_fixed",
    "set_num_threads",
    "thread_setting",
    "threads_from",
    "usable_cores",
]

ENV_VAR = "LAYERWISE_THREADS"
CGROUP_ROOT = Path("/sys/fs/cgroup")

_chosen: int | None = None  # set_num_threads's number, or None: decided by the environment
_followers: list[Callable[[], None]] = []  # called on every set_num_threads (follow_thread_setting)


def _parse_quota(max_text: str) -> float | None:
    """CPUs allowed by a cgroup v2 ``cpu.max`` line, ``"<quota> <period>"`` (``max``: none)."""
    fields = max_text.split()
    if not fields or fields[0] == "max":
        return None
    period = int(fields[1]) if len(fields) > 1 else 100_000
    return int(fields[0]) / period


def cgroup_cpu_limit(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = CGROUP_ROOT) -> float | None:
    """CPUs this process's cgroup may use per period (for example 1.5), or None without a quota.

    cgroup v2 keeps ``cpu.max`` in the process's group and each group above it, any of which
    may limit; cgroup v1 keeps ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` in the ``cpu``
    hierarchy. Inside a container the group's path may not exist in its own mount, whose
    root then is the group: both are read. The smallest limit found wins."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        rel = path.lstrip("/")
        if hierarchy == "0" and controllers == "":  # cgroup v2
            group = root / rel
            for directory in (group, *group.parents):
                if directory == root.parent:
                    break
                limit = _read_v2(directory / "cpu.max")
                if limit is not None:
                    limits.append(limit)
        elif "cpu" in controllers.split(","):  # cgroup v1
            for base in {root / "cpu", root / controllers, root / "cpu,cpuacct"}:
                for directory in (base / rel, base):
                    limit = _read_v1(directory)
                    if limit is not None:
                        limits.append(limit)
    return min(limits) if limits else None


def _read_v2(path: Path) -> float | None:
    try:
        return _parse_quota(path.read_text())
    except (OSError, ValueError, IndexError):
        return None


def _read_v1(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


@functools.cache
def _quota() -> float | None:
    """The process's cgroup quota, read once: the files take ~170 us to read, and every
    training and chunked prediction asks (the affinity, a ~1 us call, is asked each time)."""
    return cgroup_cpu_limit()


def usable_cores() -> int:
    """CPUs this process may run on, capped by its cgroup quota (rounded down, at least 1):
    a thread beyond the quota only gets the group throttled for the rest of each period."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    limit = _quota()
    if limit is not None:
        cores = min(cores, max(1, math.floor(limit)))
    return max(1, cores)


def _positive_int(name: str, value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise InputError(f"{name} must be a whole number of threads, at least 1; got {value!r}")
    return n


def threads_from(environ: dict[str, str] | os._Environ) -> tuple[int, str]:
    """The number of threads the environment asks for, and which setting said so."""
    for name in (ENV_VAR, "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        value = environ.get(name, "").strip()
        if value:
            # OpenBLAS reads "4,2" as 4 (nested OpenMP levels); take the first level alike.
            return _positive_int(name, value.split(",")[0]), name
    return usable_cores(), "usable cores"


def set_num_threads(n: int | None) -> None:
    """Compute on ``n`` threads from now on (None: back to what the environment says).
    Like ``torch.set_num_threads``: NumPy's BLAS too is limited to ``n`` threads in the whole
    process (None restores the limits it had before); 1 keeps everything on the calling thread."""
    global _chosen
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InputError(f"set_num_threads takes a whole number of threads, at least 1; got {n!r}")
    _chosen = n
    for follow in _followers:
        follow()


def follow_thread_setting(follow: Callable[[], None]) -> None:
    """Call ``follow`` now and after every ``set_num_threads``: how a library that loads after
    this module (BLAS, through ``kernels.threads``) keeps to the number without this module
    importing it."""
    _followers.append(follow)
    follow()


def thread_setting() -> tuple[int, str]:
    """The number of threads and who decided it: ``"set_num_threads"``, an environment
    variable's name, or ``"usable cores"`` (the only one that is not fixed)."""
    return (_chosen, "set_num_threads") if _chosen is not None else threads_from(os.environ)


def describe(option: int | None = None) -> str:
    """How many threads and who said so, for a command's first line: "2 threads (the usable
    cores, shared with other processes)"; ``option`` is a command's ``--threads``."""
    n, why = (option, "--threads") if option is not None else thread_setting()
    if why == "usable cores":
        why = "the usable cores, shared with other processes"
    return f"{n} thread{'s' if n != 1 else ''} ({why})"


def get_num_threads() -> int:
    """The number of threads layerwise computes on (see the module docstring for the order)."""
    return thread_setting()[0]


def is_fixed(environ: dict[str, str] | os._Environ | None = None) -> bool:
    """Whether the user fixed the number of threads (``set_num_threads``, ``LAYERWISE_THREADS``,
    ``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS``) rather than leaving it to layerwise."""
    if environ is None:
        return thread_setting()[1] != "usable cores"
    return _chosen is not None or threads_from(environ)[1] != "usable cores"


class CpuShare:
    """What other processes used of this process's CPUs, in cores, over the last window.

    The kernel's own accounting, read between training steps: the busy time of the CPUs this
    process may run on (``/proc/stat``: everything but idle and I/O wait; time the hypervisor
    gave to other machines counts as busy) minus this process's own CPU time (``os.times``).
    On a system without ``/proc/stat`` it reports nothing (``others()`` is always None).
    """

    def __init__(self, window_s: float = 0.3, stat: Path = Path("/proc/stat")) -> None:
        self.window_s = window_s
        self.stat = stat
        try:
            self.cpus = {f"cpu{n}" for n in os.sched_getaffinity(0)}
        except (AttributeError, OSError):
            self.cpus = set()
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._sample()

    @property
    def ncpus(self) -> int:
        return len(self.cpus)

    def _sample(self) -> tuple[float, float, float] | None:
        """(now, busy seconds of our CPUs, our own CPU seconds), or None if unreadable."""
        if not self.cpus:
            return None
        try:
            lines = self.stat.read_text().splitlines()
        except OSError:
            return None
        busy = 0
        for line in lines:
            fields = line.split()
            if fields and fields[0] in self.cpus:
                # user nice system idle iowait irq softirq steal (guest time is inside user)
                ticks = [int(v) for v in fields[1:9]]
                busy += sum(ticks) - ticks[3] - ticks[4]
        own = os.times()
        return time.monotonic(), busy / self.tick, own.user + own.system

    def others(self) -> float | None:
        """Cores the other processes kept busy on average since the last answer, once at
        least ``window_s`` has passed (None before that, or when it cannot be known)."""
        if self._last is None:
            return None
        now = time.monotonic()
        if now - self._last[0] < self.window_s:
            return None
        sample = self._sample()
        if sample is None:
            return None
        (t0, busy0, own0), (t1, busy1, own1) = self._last, sample
        self._last = sample
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / (t1 - t0))

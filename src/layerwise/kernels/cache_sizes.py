"""The machine's caches, read from the operating system, and the working sets sized from them.

What a core has to itself (its level-2 cache) and what it shares (the last-level cache, over
the CPUs that share it) decide how much of a batch a kernel works through at a time, so that
its arrays stay in cache between the passes over them. None of these is a constant tuned on
one VM: each is a share of what this machine reports (Linux's sysfs), clamped, with the
2-core AMD VM's caches (32 MiB of L3 shared by 2 CPUs) where the system does not say.

- **The chunk size of evaluation-mode ``predict``** (:func:`inference_chunk_bytes`): a share
  of the last-level cache one core has to itself (16 MiB on that AMD VM), half of it when
  predict runs on several threads, where fewer and longer passes keep the Python threads from
  waiting on each other for the GIL, a quarter on one. DeepConvNet's chunks (its second
  convolution's input and output, 100 KB an image) on 10,000 images there, 2 threads, batch
  100 / 1000: 0.90 / 0.85 s in chunks of 83 images (the rule's) against 1.04 / 0.97 in chunks
  of 18 and 1.17 at 125 (SkylakeX kernels; Haswell's 1.29 / 1.22 against 1.47 / 1.34). At 1
  thread the size matters less: 18 to 125 images within 4 %, and a before/after of 18 against
  83 images measured 83 2-5 % slower, so one thread takes 41
  (benchmarks/results/2026-12-05-relu-chunks/predict_chunks-*.txt, before_after-*.txt).
- **How many images a convolution works through at a time** (:func:`conv_chunk_bytes`): a
  quarter of that cache share (4 MiB there); ``kernels.conv.im2col_dot`` says why
  convolutions run in chunks, and the function the measurements behind the size.
- **What a training forward keeps for its backward** (:func:`kept_bytes`): the whole share.
- **A Winograd chunk** (:func:`core_cache_bytes`): the core's own level-2 cache.

The choices that are measured on the machine rather than read off it are ``kernels.tuning``'s.
"""

from __future__ import annotations

import functools
from pathlib import Path

__all__ = [
    "conv_chunk_bytes",
    "core_cache_bytes",
    "inference_chunk_bytes",
    "inference_share_parts",
    "kept_bytes",
    "last_level_cache",
]

#: Without a cache size from the operating system: the AMD VM's (32 MiB of L3, 2 CPUs).
_DEFAULT_CACHE = (32 * 2**20, 2)


def last_level_cache(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> tuple[int, int] | None:
    """(bytes, CPUs sharing it) of the largest data cache CPU 0 sees, from Linux's sysfs;
    None where the system does not say."""
    best: tuple[int, int, int] | None = None
    for index in sorted(root.glob("index*")):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            level = int((index / "level").read_text())
            size = _parse_size((index / "size").read_text())
            shared = _count_cpus((index / "shared_cpu_list").read_text())
        except (OSError, ValueError):
            continue
        if best is None or level > best[0]:
            best = (level, size, shared)
    return None if best is None else (best[1], best[2])


@functools.cache
def core_cache_bytes(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> int:
    """The size of the level-2 data cache CPU 0 has (to itself on the machines measured), from
    Linux's sysfs, clamped to 256 KiB-4 MiB; 1 MiB where the system does not say. The budget of
    one Winograd chunk (``kernels.winograd``): its transformed tiles stay there between the
    transform and the products."""
    for index in sorted(root.glob("index*")):
        try:
            if (index / "type").read_text().strip() != "Instruction" and int((index / "level").read_text()) == 2:
                return min(4 * 2**20, max(2**18, _parse_size((index / "size").read_text())))
        except (OSError, ValueError):
            continue
    return 2**20


def _parse_size(text: str) -> int:
    text = text.strip().upper()
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    if text and text[-1] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def _count_cpus(text: str) -> int:
    """How many CPUs a sysfs list names: ``0-1,4`` is 3."""
    count = 0
    for part in text.strip().split(","):
        if "-" in part:
            lo, hi = part.split("-")
            count += int(hi) - int(lo) + 1
        elif part:
            count += 1
    return max(count, 1)


def inference_share_parts(threads: int) -> int:
    """The part of the last-level cache's share per CPU an evaluation chunk takes on
    ``threads`` threads, as a divisor: a quarter at one thread, half at several (the module
    docstring has the measurements)."""
    return 4 if threads <= 1 else 2


@functools.cache
def inference_chunk_bytes(threads: int = 1) -> int:
    """Bytes per evaluation chunk of what its layers keep in cache (``Layer.workspace_size``)
    for a predict on ``threads`` threads: ``inference_share_parts`` of the last-level cache's
    share per CPU, clamped to 1-32 MiB. 4 and 8 MiB without sysfs."""
    return _share_of_cache(inference_share_parts(threads), 2**20, 32 * 2**20)


@functools.cache
def conv_chunk_bytes() -> int:
    """Bytes of im2col a convolution makes at a time (``kernels.conv.im2col_dot``): a quarter
    of the last-level cache's share per CPU (clamped to 512 KiB-16 MiB), so a chunk's col,
    the product it feeds and the input and output around them stay in cache while another
    core works on its own chunk. 4 MiB without sysfs.

    Measured (benchmarks/results/2026-12-04-conv-chunks/conv_chunk_sizes.py: DeepConvNet
    training steps, batch 100, 2-core AMD VM with 16 MiB of L3 per CPU, ms a step at 1 / 2
    threads): 2 MiB 56.6 / 38.9, 4 MiB 55.3 / 37.0, 8 MiB 57.6 / 42.3, whole batch
    83.5 / 48.1 (SkylakeX kernels); 2 MiB 78.8 / 47.6, 4 MiB 78.6 / 52.5, 8 MiB 83.1 / 59.1,
    whole batch 113.7 / 64.2 (Haswell kernels)."""
    return _share_of_cache(4, 2**19, 16 * 2**20)


@functools.cache
def kept_bytes() -> int:
    """Bytes a training forward keeps for its backward rather than make again, a
    Convolution-ReLU-Pooling run's col (``models.fusion``) or a Winograd convolution's
    transformed input tiles (``kernels.conv.conv_forward``): the last-level cache's share per
    CPU (clamped to 2-64 MiB; 16 MiB here; 16 MiB without sysfs). For col, so that a kept col
    comes back from the cache, not from memory: SimpleConvNet's 6 MB is kept (its step took
    0.95 of the time it took making col again, in 7 alternating rounds of a prototype of the
    run; benchmarks/README.md, "A Convolution, ReLU and Pooling run as one training step"),
    DeepConvNet's 45 MB second layer would not be. Winograd's tiles pay even from memory
    (DeepConvNet's weight gradients took 0.70-0.91 of the time with the caches flushed in
    between: benchmarks/results/2026-12-06-kept-tiles/kept_tiles-*.txt), so for them the
    bound only keeps a step's memory from growing with the batch: DeepConvNet's five layers
    keep 27 MiB at batch 100, and its second layer's tiles (10.8 MiB) are made again from a
    batch of 149 on."""
    return _share_of_cache(1, 2**21, 64 * 2**20)


def _share_of_cache(parts: int, low: int, high: int) -> int:
    """The last-level cache's share per CPU over ``parts``, clamped to [low, high]."""
    size, shared = last_level_cache() or _DEFAULT_CACHE
    return min(high, max(low, size // shared // parts))

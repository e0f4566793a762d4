"""Evaluation-mode ``predict``'s fast paths: the finiteness check and large batches in chunks.

Plain expressions (checked in tests/kernels/): ``all_finite(x)`` is
``bool(np.isfinite(x).all())``, and ``forward_in_chunks(forward, layers, x, chunk, ...)`` is
``forward(x, layers)``, up to float rounding (the products see other batch shapes).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .caches import ones
from .memory import keep_freed_memory
from .threads import equal_chunks, owned_threads, run_in_threads

__all__ = ["all_finite", "forward_in_chunks"]


#: Sizes up to which ``all_finite`` sums ``x`` as one BLAS dot product (an image or a few):
#: below OpenBLAS's threading threshold, so the product never wakes its threads.
ONE_DOT_MAX_SIZE = 4096


def all_finite(x: np.ndarray) -> bool:
    """``np.isfinite(x).all()``, usually without the array of flags: NaN and inf propagate into
    a sum, so a finite sum proves every value finite; only a non-finite (or overflowing) sum
    needs the flags. Up to ``ONE_DOT_MAX_SIZE`` values (one image of 784 pixels, or a few) are
    summed as a BLAS dot product with a vector of ones, 0.9 us where NumPy's sum takes 1.4; a
    larger batch sample by sample, ``np.add.reduce`` over
    the first axis (NumPy adds whole rows, vectorised) and then the one row of sums: 6.1 us on
    (100, 784) float32 where NumPy's sum of everything takes 11.0 (a seventh of a 784-50-10
    prediction at batch 100, Haswell kernels, 2 threads) and the flags 5.4, and 0.70 ms on
    10,000 images against 1.13 and 1.03. Not BLAS for a larger batch: its product with ones ran 4.2 us,
    but woke OpenBLAS's threads, which then spun on the core a chunked predict's second thread
    needed (DeepConvNet at batch 1000 on 2 threads 1.24x slower; benchmarks/results/
    2026-12-05-relu-chunks/before_after-blas-check-haswell.txt, all_finite_ways-*.txt)."""
    if x.size <= ONE_DOT_MAX_SIZE and x.flags.c_contiguous:
        total = np.dot(x.reshape(-1), ones(x.size, x.dtype))
    elif x.flags.c_contiguous and x.ndim > 1 and x.dtype.kind == "f":
        total = np.add.reduce(np.add.reduce(x.reshape(len(x), -1), axis=0))
    else:
        total = np.add.reduce(x, axis=None)
    return math.isfinite(total) or bool(np.isfinite(x).all())


def forward_in_chunks(
    forward: Callable[[np.ndarray, Sequence[Any]], np.ndarray], layers: Sequence[Any], x: np.ndarray, chunk: int,
    chunk_on_threads: int | None = None,
) -> np.ndarray:
    """``forward(x, layers)`` (evaluation mode) run on at most ``chunk`` samples at a time,
    or, when it runs on several threads, at most ``chunk_on_threads`` (default ``chunk``) at a
    time on each: there, fewer and longer passes keep the threads from waiting on each other
    for the GIL (``kernels.cache_sizes.inference_chunk_bytes`` has the measurements).

    Why chunks: memory stays bounded (DeepConvNet's first layer alone outputs 0.5 GB for
    10,000 images at once) and the work stays in cache (DeepConvNet on the test set: 2-3x
    faster in chunks of 18 than in batches of 500, measured before the convolutions ran in
    chunks of their own). Why threads: when BLAS may use several, ``x`` is cut into that
    many equal contiguous parts, each run on its own Python thread with BLAS on one thread
    meanwhile, since small products split across BLAS threads leave the copies around them
    (im2col, padding, ReLU, pooling) on one core. Each thread runs shallow copies of the
    layers: the parameters are shared, the caches forward writes are its own.
    """
    keep_freed_memory()  # each chunk's arrays reuse the last chunk's pages (see memory)

    def in_chunks_of(part: np.ndarray, size: int, own: Sequence[Any]) -> np.ndarray:
        """``part`` forward in the fewest near-equal chunks of at most ``size`` samples."""
        chunks = equal_chunks(len(part), -(-len(part) // size))
        return np.concatenate([forward(part[c], own) for c in chunks])

    with owned_threads() as threads:
        workers = min(threads, -(-len(x) // chunk))
        if workers <= 1:
            return in_chunks_of(x, chunk, layers)
        def run(part: slice) -> np.ndarray:
            own = [copy.copy(layer) for layer in layers]
            return in_chunks_of(x[part], chunk_on_threads or chunk, own)

        parts = run_in_threads(run, equal_chunks(len(x), workers))  # equal parts: no thread waits long
        return in_chunks_of(x, chunk, layers) if parts is None else np.concatenate(parts)

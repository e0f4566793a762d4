"""Products with many rows and few columns, in blocks of rows where this machine runs them
faster that way: a convolution's im2col products.

Plain expressions (checked in tests/kernels/test_blocks.py): ``rows_dot(a, b)`` is ``a @ b``
and ``inner_dot(a, b)`` is ``a.T @ b``, for 2-D ``a`` (M, K) with many rows M; equal to float
rounding (a block's sum over the rows is added to the next block's, not one long sum).

Why: OpenBLAS built for SkylakeX has kernels for small products (M·N·K up to 100³) that skip
the packing of the operands, and a convolution's products are tall and thin: col (rows, K)
times col_W (K, FN), and colᵀ·d summed over the rows. As one product of many rows they miss
those kernels; cut into blocks of a few hundred rows, one stacked ``np.matmul``, they take
them. SimpleConvNet's forward product on a chunk of 17 images, (9,792 × 26)·(26 × 30), took
252 us whole and 153 us in blocks of 576 rows, and its weight gradient colᵀ·d 284 us against
161 (1 thread, Zen 4 VM, SkylakeX kernels); with Haswell's kernels 220 against 221 and 256
against 262: no gain there (benchmarks/results/2026-12-06-blocks/block_sizes-*.txt). So the
block size is measured on this machine, once per shape of product (``tuning.product_blocks``),
the whole product included, and kept. SimpleConvNet's Trainer steps took 0.915 / 0.883 of
their time before (1 / 2 threads, SkylakeX kernels; before_after-skylakex.txt) and, in one
process, 0.899 / 0.862, and 1.004-1.021 with Haswell's kernels (fused_ab.txt).
"""

from __future__ import annotations

import time

import numpy as np

from . import kept_choices, tuning
from .blas_limits import blas_threads

__all__ = ["block_rows", "inner_dot", "rows_dot"]

#: Rows of the random operands a block size is measured on: a multiple of every size tried.
SAMPLE_ROWS = 4096
#: Products with fewer rows than this run whole, unmeasured: no block size can pay there.
MIN_ROWS = 2 * min(rows for rows in tuning.BLOCK_ROWS if rows)


#: This process's decisions by (op, K, N, dtypes, layouts, BLAS threads, tuning on): the
#: string key and the machine's signature took 8-20 us a call to build, and SimpleConvNet's
#: training step asks 12 times on 2 threads; with Haswell's kernels, which keep every product
#: whole, its steps took 1.064 of the time np.dot took, 1.004-1.021 with this dict (fused_ab.txt).
_decided: dict[tuple, int] = {}


def block_rows(op: str, a: np.ndarray, b: np.ndarray) -> int:
    """Rows per block for ``op`` ("rows": ``a @ b``, "inner": ``a.T @ b``) on operands of these
    inner and outer sizes, dtype and layouts (and BLAS's threads now), 0 for the whole product:
    measured the first time on this machine, then kept (``tuning.product_blocks``)."""
    if a.shape[0] < MIN_ROWS:
        return 0
    K, N = a.shape[1], b.shape[1]
    layouts = _layout(a), _layout(b)
    threads = blas_threads()
    memo = (op, K, N, a.dtype, b.dtype, *layouts, threads, kept_choices.tuning_enabled())
    rows = _decided.get(memo)
    if rows is None:
        dtype = np.result_type(a, b)
        key = f"{op} K{K} N{N} {dtype.name} a {layouts[0]} b {layouts[1]}, BLAS threads {threads}"
        rows = tuning.product_blocks(key, lambda: _time_blocks(op, K, N, dtype, *layouts))
        if rows is None:  # another thread is measuring: the whole product, this time
            return 0
        _decided[memo] = rows
    return rows


def rows_dot(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` for ``a`` (M, K) and ``b`` (K, N), into ``out`` (M, N) when given, in blocks of
    rows where this machine runs it faster so (module docstring)."""
    rows = block_rows("rows", a, b)
    if out is None:
        out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    if not rows or not out.flags.c_contiguous:  # blocks of out must be views of it
        return np.matmul(a, b, out=out)
    return _rows_in_blocks(a, b, out, rows)


def inner_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a.T @ b`` for ``a`` (M, K) and ``b`` (M, N): the sum over the M rows, in blocks of rows
    where this machine runs it faster so, the blocks' products added in order."""
    rows = block_rows("inner", a, b)
    if not rows:
        return np.matmul(a.T, b)
    return _inner_in_blocks(a, b, rows)


def _rows_in_blocks(a: np.ndarray, b: np.ndarray, out: np.ndarray, rows: int) -> np.ndarray:
    """``a @ b`` into a C-contiguous ``out`` as one stacked product of (rows, K) blocks of ``a``
    and the rest as one more. ``b`` (small: K × N) goes in row-major: a convolution's col_W is
    a transposed view, and the stacked product with it took the SkylakeX kernels' slow path
    (SimpleConvNet's 57,600 rows in blocks of 512: 2.7 ms, 1.1 with b copied; whole 2.0)."""
    body = a.shape[0] // rows * rows
    b = np.ascontiguousarray(b)
    np.matmul(a[:body].reshape(-1, rows, a.shape[1]), b, out=out[:body].reshape(-1, rows, out.shape[1]))
    if body < a.shape[0]:
        np.matmul(a[body:], b, out=out[body:])
    return out


def _inner_in_blocks(a: np.ndarray, b: np.ndarray, rows: int) -> np.ndarray:
    """``a.T @ b`` as the sum of one stacked product of (rows, K)ᵀ·(rows, N) blocks, plus the rest."""
    body = a.shape[0] // rows * rows
    K, N = a.shape[1], b.shape[1]
    parts = np.matmul(a[:body].reshape(-1, rows, K).transpose(0, 2, 1), b[:body].reshape(-1, rows, N))
    total = np.add.reduce(parts, axis=0)
    if body < a.shape[0]:
        total += np.matmul(a[body:].T, b[body:])
    return total


def _layout(a: np.ndarray) -> str:
    return "C" if a.flags.c_contiguous else "F" if a.flags.f_contiguous else "strided"


def _in_layout(a: np.ndarray, layout: str) -> np.ndarray:
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":
        return np.repeat(a, 2, axis=1)[:, ::2]
    return a


def _time_blocks(op: str, K: int, N: int, dtype: np.dtype, a_layout: str, b_layout: str) -> dict[int, float]:
    """Seconds each block size of ``tuning.BLOCK_ROWS`` takes for ``op`` on random operands of
    ``SAMPLE_ROWS`` rows in these layouts, as ``rows_dot`` and ``inner_dot`` run them: the
    fastest of 7 calls, the sizes taking turns (two more rounds first, to warm up)."""
    rng = np.random.default_rng(0)
    a = _in_layout(rng.standard_normal((SAMPLE_ROWS, K)).astype(dtype), a_layout)
    b = _in_layout(rng.standard_normal((K if op == "rows" else SAMPLE_ROWS, N)).astype(dtype), b_layout)
    out = np.empty((SAMPLE_ROWS, N), dtype=dtype)

    def product(rows: int) -> None:
        if op == "rows":
            _rows_in_blocks(a, b, out, rows) if rows else np.matmul(a, b, out=out)
        else:
            _inner_in_blocks(a, b, rows) if rows else np.matmul(a.T, b)

    times: dict[int, list[float]] = {rows: [] for rows in tuning.BLOCK_ROWS}
    for _ in range(9):
        for rows in times:
            start = time.perf_counter()
            product(rows)
            times[rows].append(time.perf_counter() - start)
    return {rows: min(spent[2:]) for rows, spent in times.items()}

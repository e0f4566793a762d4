"""Small read-only arrays made once per shape and shared between calls.

Why: a training step of a small network makes ~40 NumPy calls of 1-3 us each, so an array
rebuilt every step (``np.arange(n) * c``, ``np.ones(n)``) costs as much as the arithmetic it
serves. Each cache keeps at most ``CACHED_SHAPES`` entries: a training run uses a few
shapes, and a caller cycling through many batch sizes must not grow them without bound.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CACHED_SHAPES", "ones", "row_starts", "zeros"]

#: Entries kept by each cache below.
CACHED_SHAPES = 32

_row_starts: dict[tuple[int, int], np.ndarray] = {}
_ones: dict[tuple[int, np.dtype], np.ndarray] = {}
_zeros: dict[tuple[int, np.dtype], np.ndarray] = {}


def _keep(cache: dict, key: object, value: np.ndarray) -> np.ndarray:
    """Store ``value`` read-only (it is shared between calls) in a bounded cache; return it."""
    if len(cache) >= CACHED_SHAPES:
        cache.clear()
    value.flags.writeable = False
    cache[key] = value
    return value


def row_starts(n: int, c: int) -> np.ndarray:
    """``np.arange(n) * c``: where each row of a C-contiguous (n, c) array starts in its flat
    view, so ``row_starts + column`` indexes one element per row.

    Why flat indices: on a (100, 10) batch, ``take`` and item assignment with one flat index
    array cost a third of NumPy's 2-D fancy indexing ``a[rows, cols]``."""
    starts = _row_starts.get((n, c))
    return starts if starts is not None else _keep(_row_starts, (n, c), np.arange(n) * c)


def ones(n: int, dtype: np.dtype) -> np.ndarray:
    """``np.ones(n, dtype)``, read-only. Sums over a short axis go through it as a
    matrix-vector product: ``a @ ones`` sums the rows of a (100, 10) array in 0.8 us where
    ``a.sum(axis=1)`` takes 3 us (NumPy reduces row by row), and ``ones @ a`` sums a
    (100, 50) batch over its first axis in 1.2 us against 3."""
    key = (n, np.dtype(dtype))
    found = _ones.get(key)
    return found if found is not None else _keep(_ones, key, np.ones(n, dtype=dtype))


def zeros(n: int, dtype: np.dtype) -> np.ndarray:
    """``np.zeros(n, dtype)``, read-only: the zero operand of ``kernels.activations.relu``'s
    ``np.maximum`` (it says why an array and not the scalar 0)."""
    key = (n, np.dtype(dtype))
    found = _zeros.get(key)
    return found if found is not None else _keep(_zeros, key, np.zeros(n, dtype=dtype))

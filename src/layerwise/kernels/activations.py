"""ReLU's fast path: branch-free arithmetic, and large arrays in parts on the owned threads.

Plain expressions (checked in tests/kernels/): ``relu(x, keep_mask)`` is
``(np.maximum(x, 0), x <= 0)`` (the mask None when not kept), and ``relu_grad(dout, mask)``
is ``np.where(mask, 0, dout)``, a new array.

Why: ``np.where(mask, 0, dout)`` branches per element and mispredicts on ReLU's half-random
mask, 10x slower than arithmetic (10 ms vs 1 ms on a (100, 30, 24, 24) conv output). So the
gradient multiplies dout by the 0/1 mask ``~mask`` and adds 0, which turns the -0.0 of
``negative · 0`` into 0.0 (IEEE: -0 + 0 = +0) and changes no other value: for finite dout
the result equals the select, zeros all +0.0; an inf or NaN in dout at a blocked position
gives NaN instead of 0, which only happens once training has diverged. A convnet's
activations (at least ``SPLIT_MIN_ELEMENTS``) run in batch parts on the owned threads,
written into arrays of x's memory layout (a conv output's channels-last layout is kept).
"""

from __future__ import annotations

from types import EllipsisType

import numpy as np

from .threads import SPLIT_MIN_ELEMENTS, in_parts

__all__ = ["relu", "relu_grad"]


def relu(x: np.ndarray, keep_mask: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``(max(x, 0), x <= 0)``; the mask is None unless ``keep_mask``."""
    if x.size < SPLIT_MIN_ELEMENTS:
        return np.maximum(x, 0), (x <= 0 if keep_mask else None)  # a Python 0 keeps x's dtype
    out = np.empty_like(x)
    mask = np.empty_like(x, dtype=bool) if keep_mask else None

    def part(b: slice | EllipsisType) -> None:
        np.maximum(x[b], 0, out=out[b])
        if mask is not None:
            np.less_equal(x[b], 0, out=mask[b])

    in_parts(part, len(x))
    return out, mask


def relu_grad(dout: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``np.where(mask, 0, dout)`` as a new array (dout is left as it was)."""
    if dout.size < SPLIT_MIN_ELEMENTS:
        dx = np.multiply(dout, ~mask)
        dx += 0  # -0.0 -> 0.0; a Python int keeps any dtype, integer dout too
        return dx
    dx = np.empty_like(dout)

    def part(b: slice | EllipsisType) -> None:
        np.multiply(dout[b], ~mask[b], out=dx[b])
        dx[b] += 0

    in_parts(part, len(dx))
    return dx

"""ReLU's fast paths: the maximum against an array of zeros, branch-free arithmetic for the
gradient, and large arrays in parts on the owned threads.

Plain expressions (checked in tests/kernels/): ``relu(x, keep_mask)`` is
``(np.maximum(x, 0), x <= 0)`` (the mask None when not kept), ``relu_in_place(x)`` is
``np.maximum(x, 0, out=x)``, and ``relu_grad(dout, mask)`` is ``np.where(mask, 0, dout)``, a
new array.

Why the zeros: NumPy 2.4 runs ``np.maximum(x, 0)`` with a scalar operand through a loop that is
not vectorised: 0.35 ms on a (100, 16, 28, 28) float32 conv output, where a copy takes 0.08;
against a row of zeros, element for element, it takes 0.10 ms, with the same bits (NaN stays
NaN, a zero keeps the sign ``np.maximum`` gives it). DeepConvNet's predict got 5 % faster on 1 thread
(benchmarks/results/2026-12-05-relu-chunks/relu_max_ways.txt, before_after-relu-skylakex.txt).

Why the gradient's arithmetic: ``np.where(mask, 0, dout)`` branches per element and mispredicts
on ReLU's half-random mask, 10x slower than arithmetic (10 ms vs 1 ms on a (100, 30, 24, 24) conv output). So the
gradient multiplies dout by the 0/1 mask ``~mask`` and adds 0, which turns the -0.0 of
``negative · 0`` into 0.0 (IEEE: -0 + 0 = +0) and changes no other value: for finite dout
the result equals the select, zeros all +0.0; an inf or NaN in dout at a blocked position
gives NaN instead of 0, which only happens once training has diverged. A convnet's
activations (``threads.worth_splitting``) run in batch parts on the owned threads,
written into arrays of x's memory layout (a conv output's channels-last layout is kept).

Why in place: in evaluation the ReLU after an Affine or a Convolution may overwrite that
layer's new output (``models.fusion.inference_forward`` decides when), which is still in cache
from the product that wrote it, where a new array of its size is not: writing one reads each of
its lines from memory first. 784-512-512-10 at batch 1000 (1000 x 512 float32, 2 MB an
output): a ReLU into a new array right after the product took 0.29 ms on 1 thread, 0.52 on 2,
where the same pass over an array in cache takes 0.08. Predicting the 10,000 test images (Zen 4
VM, SkylakeX kernels; in place / as layers, alternating in one process): 784-512-512-10 at
batch 1000 0.967 on 1 thread and 0.951 on 2, SimpleConvNet 0.916 at batch 100 on 1 thread and
0.884 at batch 1000 on 2; DeepConvNet 0.93-0.97 (benchmarks.before_after; both in
benchmarks/results/2026-12-06-relu-in-place/).
"""

from __future__ import annotations

from types import EllipsisType

import numpy as np

from .caches import zeros
from .threads import in_parts, worth_splitting

__all__ = ["max_zero", "relu", "relu_grad", "relu_in_place"]

#: Length of the row of zeros ``max_zero`` compares against: 64 KiB of float32, which stays in
#: the core's own cache while the rows of x stream past it.
ZERO_ROW = 1 << 14

#: Sizes below which ``relu`` calls ``np.maximum(x, 0)`` as it is: the zero row's views cost
#: ~1 us, what the scalar loop takes over ~4,000 values (one image through a 784-50-10 net:
#: 1.1 us plain, 2.2 with the views; at (100, 50) the two tie, at (100, 512) 17.5 / 7.3 us).
ZERO_ROW_MIN_SIZE = 4096


def _flat_in_memory_order(a: np.ndarray, order: tuple[int, ...] | None) -> np.ndarray | None:
    """A 1-D view of ``a``'s elements as they lie in memory, its axes taken in ``order``
    (None: as they are), or None when ``a`` is not one dense block in that order."""
    view = a if order is None else a.transpose(order)
    return view.reshape(-1) if view.flags.c_contiguous else None


def max_zero(x: np.ndarray, out: np.ndarray) -> None:
    """``np.maximum(x, 0, out=out)``, bit for bit, for a real or integer ``x`` and an ``out``
    of its shape laid out in memory like it (``np.empty_like(x)``, or ``x`` itself): the
    maximum of x's memory, row by row of ``ZERO_ROW`` values, against a cached row of zeros
    (the module docstring says why). Anything else (a strided view, layouts or shapes that
    differ, an ``out`` partly overlapping ``x``, other dtypes) takes NumPy's own loop."""
    order = None if x.flags.c_contiguous else tuple(np.argsort(x.strides, kind="stable")[::-1])
    flat_x, flat_out = _flat_in_memory_order(x, order), _flat_in_memory_order(out, order)
    if (flat_x is None or flat_out is None or x.dtype.kind not in "fiu" or out.shape != x.shape
            or (out is not x and np.may_share_memory(x, out))):
        np.maximum(x, 0, out=out)
        return
    zero = zeros(ZERO_ROW, x.dtype)
    body = flat_x.size // ZERO_ROW * ZERO_ROW
    if body:
        np.maximum(flat_x[:body].reshape(-1, ZERO_ROW), zero, out=flat_out[:body].reshape(-1, ZERO_ROW))
    np.maximum(flat_x[body:], zero[: flat_x.size - body], out=flat_out[body:])


def relu(x: np.ndarray, keep_mask: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """``(max(x, 0), x <= 0)``; the mask is None unless ``keep_mask``."""
    if x.size < ZERO_ROW_MIN_SIZE or x.dtype.kind not in "fiu":  # bool: np.maximum's own result type
        return np.maximum(x, 0), (x <= 0 if keep_mask else None)  # a Python 0 keeps x's dtype
    out = np.empty_like(x)
    if not worth_splitting(x.size):
        max_zero(x, out)
        return out, (x <= 0 if keep_mask else None)
    mask = np.empty_like(x, dtype=bool) if keep_mask else None

    def part(b: slice | EllipsisType) -> None:
        max_zero(x[b], out[b])
        if mask is not None:
            np.less_equal(x[b], 0, out=mask[b])

    in_parts(part, len(x))
    return out, mask


def relu_in_place(x: np.ndarray) -> np.ndarray:
    """``np.maximum(x, 0, out=x)``; returns ``x``. Its batch in parts on the owned threads when
    large (as ``relu``)."""
    if x.size < ZERO_ROW_MIN_SIZE or x.dtype.kind not in "fiu":
        np.maximum(x, 0, out=x)
    elif not worth_splitting(x.size):
        max_zero(x, x)
    else:
        def part(b: slice | EllipsisType) -> None:
            rows = x[b]
            max_zero(rows, rows)  # one view as both: max_zero takes it as in place

        in_parts(part, len(x))
    return x


def relu_grad(dout: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``np.where(mask, 0, dout)`` as a new array (dout is left as it was)."""
    if not worth_splitting(dout.size):
        dx = np.multiply(dout, ~mask)
        dx += 0  # -0.0 -> 0.0; a Python int keeps any dtype, integer dout too
        return dx
    dx = np.empty_like(dout)

    def part(b: slice | EllipsisType) -> None:
        np.multiply(dout[b], ~mask[b], out=dx[b])
        dx[b] += 0

    in_parts(part, len(dx))
    return dx

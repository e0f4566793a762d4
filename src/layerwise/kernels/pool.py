"""Pooling's fast paths: max and average pooling without copying windows.

Plain expressions (checked in tests/kernels/): with ``col = functional.im2col(x, ph, pw,
stride, pad).reshape(-1, ph·pw)`` (the book's Pooling, rows ordered (n, oh, ow, c)),
``max_pool`` gives ``out = col.max(axis=1)`` and ``arg_max = col.argmax(axis=1)`` laid out as
(N, C, OH, OW), with -inf instead of 0 as padding; ``max_pool_backward`` puts each dout at its
window's arg_max and adds overlaps (the book's col2im of a one-hot col); ``avg_pool`` is
``col.mean(axis=1)`` with zero padding counted, and ``avg_pool_backward`` spreads dout / (ph·pw)
over each window.
"""

from __future__ import annotations

from types import EllipsisType

import numpy as np

from ..checks import conv_output_shape
from .conv import add_windows, offset_slices, pad_hw
from .threads import SPLIT_MIN_ELEMENTS, in_parts

__all__ = ["avg_pool", "avg_pool_backward", "max_pool", "max_pool_backward"]


def max_pool(
    x: np.ndarray, ph: int, pw: int, stride: int, pad: int = 0, *, with_arg_max: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Max over each ph×pw window of ``x`` (N, C, H, W); returns ``(out, arg_max)``.

    ``arg_max`` (N, C, OH, OW) is the position of the max inside its window, counted row by
    row (0 .. ph·pw-1); on ties it is the FIRST such position, as the book's np.argmax over
    im2col rows chooses (and PyTorch). Padding is -inf, so a padded position never wins.

    Computed without copying the windows: a running max over the ph·pw strided views
    x[:, :, i::stride, j::stride], one per kernel offset, moving ``arg_max`` to offset k
    only where the value there is strictly greater (so the first max keeps it). The book's
    im2col + argmax over rows of length ph·pw measured ~5× slower, and the reshape-and-reduce
    ``x.reshape(N, C, OH, ph, OW, pw).max(axis=(3, 5))`` for tiling windows ~30× slower
    (NumPy reduces two tiny non-adjacent axes element by element). A window holding NaN
    outputs NaN (np.maximum propagates it); which of its positions gets the gradient is then
    unspecified. ``with_arg_max=False`` returns ``(out, None)``, the same ``out`` for a
    quarter of the work.
    """
    OH, OW = conv_output_shape(x.shape, ph, pw, stride, pad, "max_pool")
    xp = pad_hw(x, pad, -np.inf)
    offsets = [xp[(slice(None), slice(None), *offset_slices(i, j, OH, OW, stride))]
               for i, j in np.ndindex(ph, pw)]  # window position k's value, for every window
    out = np.empty(offsets[0].shape, dtype=x.dtype)
    arg_max = np.zeros(out.shape, dtype=np.min_scalar_type(ph * pw - 1)) if with_arg_max else None

    def pool(b: slice | EllipsisType) -> None:  # samples b (see threads.in_parts)
        np.copyto(out[b], offsets[0][b])
        if arg_max is not None:
            # Scratch made once: fresh temporaries per pass page-fault, and two threads
            # faulting at once wait on each other (max pooling on 2 threads: 1.24x -> 1.9x).
            greater, step = np.empty(out[b].shape, dtype=bool), np.empty(out[b].shape, dtype=arg_max.dtype)
        for k, part in enumerate(offsets[1:], start=1):
            if arg_max is not None:
                # arg_max = k where part > out, else unchanged, as arithmetic on unsigned
                # ints (wrap-around makes k - arg_max exact): np.where/np.copyto with a
                # random mask measured ~15x slower than these three passes.
                np.greater(part[b], out[b], out=greater)  # strictly: on a tie the first position keeps it
                np.subtract(k, arg_max[b], out=step, dtype=arg_max.dtype)
                step *= greater
                arg_max[b] += step
            np.maximum(out[b], part[b], out=out[b])

    in_parts(pool, x.shape[0], x.size >= SPLIT_MIN_ELEMENTS)
    return out, arg_max


def max_pool_backward(
    dout: np.ndarray, arg_max: np.ndarray, x_shape: tuple[int, ...],
    ph: int, pw: int, stride: int, pad: int = 0,
    *, channels_last: bool = False, tiled_fast_path: bool = True,
) -> np.ndarray:
    """Route each dout element to its window's ``arg_max`` position; overlapping windows add.

    ``channels_last=True`` lays dx out in memory as (N, H, W, C) (still indexed NCHW), the
    layout of a Convolution's output, so the layers below combine dx with their caches and
    Convolution reshapes it without a transpose copy.

    Fast path, when the windows tile the input (stride == ph == pw, pad == 0, the 2×2/2
    pooling of every book network): each input position lies in exactly one window, so each
    kernel offset WRITES its strided sub-grid of dx, with no zero fill, no accumulation and
    no padding to crop; ~2× faster than the general path, which adds into a zeroed, padded
    buffer. ``tiled_fast_path=False`` forces the general path (a test compares the two).
    Positions are selected by multiplying with a 0/1 mask, so an infinite dout (training
    has already diverged) would leave NaN beside its window's max.
    """
    N, C, H, W = x_shape
    OH, OW = arg_max.shape[2:]
    dout = np.asarray(dout)

    def buffer(fill: object, h: int, w: int) -> np.ndarray:
        if channels_last:
            return fill((N, h, w, C), dtype=dout.dtype).transpose(0, 3, 1, 2)
        return fill((N, C, h, w), dtype=dout.dtype)

    tiled = tiled_fast_path and pad == 0 and stride == ph == pw
    dx = buffer(np.empty, H, W) if tiled else buffer(np.zeros, H + 2 * pad, W + 2 * pad)

    def route(b: slice | EllipsisType) -> None:  # samples b (see threads.in_parts)
        # A mask product, not np.where: ~15× faster with a random mask.
        if tiled:
            for k, (i, j) in enumerate(np.ndindex(ph, pw)):
                np.multiply(dout[b], arg_max[b] == k, out=dx[b][:, :, i::ph, j::pw])
        else:
            add_windows(dx[b], lambda i, j: dout[b] * (arg_max[b] == i * pw + j), ph, pw, OH, OW, stride)

    in_parts(route, N, dx.size >= SPLIT_MIN_ELEMENTS)
    return dx if tiled else dx[:, :, pad : pad + H, pad : pad + W]


def avg_pool(x: np.ndarray, ph: int, pw: int, stride: int, pad: int = 0) -> np.ndarray:
    """Mean over each ph×pw window; zero padding counts in the average (divisor always ph·pw),
    PyTorch's ``count_include_pad=True`` default."""
    OH, OW = conv_output_shape(x.shape, ph, pw, stride, pad, "avg_pool")
    xp = pad_hw(x, pad)
    out = None
    for i in range(ph):
        for j in range(pw):
            part = xp[(slice(None), slice(None), *offset_slices(i, j, OH, OW, stride))]
            out = part.copy() if out is None else np.add(out, part, out=out)
    out *= 1.0 / (ph * pw)  # a Python float: float32 stays float32
    return out


def avg_pool_backward(
    dout: np.ndarray, x_shape: tuple[int, ...], ph: int, pw: int, stride: int, pad: int = 0
) -> np.ndarray:
    """Spread dout / (ph·pw) evenly over each window; overlapping windows add."""
    N, C, H, W = x_shape
    OH, OW = dout.shape[2:]
    g = np.asarray(dout) * (1.0 / (ph * pw))  # a Python float: float32 stays float32
    dx = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=g.dtype)
    add_windows(dx, lambda i, j: g, ph, pw, OH, OW, stride)
    return dx[:, :, pad : pad + H, pad : pad + W]

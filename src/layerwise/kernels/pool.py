"""Pooling's fast paths: max and average pooling from strided views of the windows (dense
rows for windows that tile a channels-last input).

Plain expressions (checked in tests/kernels/): with ``col = functional.im2col(x, ph, pw,
stride, pad).reshape(-1, ph·pw)`` (the book's Pooling, rows ordered (n, oh, ow, c)),
``max_pool`` gives ``out = col.max(axis=1)`` and ``arg_max = col.argmax(axis=1)`` laid out as
(N, C, OH, OW), with -inf instead of 0 as padding; ``max_pool_backward`` puts each dout at its
window's arg_max and adds overlaps (the book's col2im of a one-hot col); ``avg_pool`` is
``col.mean(axis=1)`` with zero padding counted, and ``avg_pool_backward`` spreads dout / (ph·pw)
over each window.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import EllipsisType

import numpy as np

from ..checks import conv_output_shape
from .conv import add_windows, offset_slices, pad_hw
from .threads import in_parts, worth_splitting

__all__ = ["avg_pool", "avg_pool_backward", "is_channels_last", "max_pool", "max_pool_backward", "window_pixels"]


def max_pool(
    x: np.ndarray, ph: int, pw: int, stride: int, pad: int = 0, *, with_arg_max: bool = True,
    tiled_fast_path: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Max over each ph×pw window of ``x`` (N, C, H, W); returns ``(out, arg_max)``.

    ``arg_max`` (N, C, OH, OW) is the position of the max inside its window, counted row by
    row (0 .. ph·pw-1); on ties it is the FIRST such position, as the book's np.argmax over
    im2col rows chooses (and PyTorch). Padding is -inf, so a padded position never wins.

    Computed without copying the windows, from the ph·pw strided views
    x[:, :, i::stride, j::stride], one per kernel offset k: ``out`` is their running max, and
    then ``arg_max`` the first k whose value equals it, in Horner form over "not equal" flags
    ``ne_k``: arg_max = ne_0·(1 + ne_1·(1 + ... (1 + ne_{K-2}))), which is 0 where offset 0
    holds the max, 1 where offset 1 is the first to, and so on (K-1 where none before the last
    does). The book's im2col + argmax over rows of length ph·pw measured ~5× slower, and the
    reshape-and-reduce ``x.reshape(N, C, OH, ph, OW, pw).max(axis=(3, 5))`` for tiling windows
    ~30× slower (NumPy reduces two tiny non-adjacent axes element by element); the running
    argmax this replaced (move arg_max to k where the value is strictly greater: four passes
    per offset) with NCHW results took 0.86 ms on DeepConvNet's first pooling, against 0.65 ms
    this way (0.52 / 0.15 on its last; 1 thread, batch 100: benchmarks/results/
    2026-12-05-conv-rows/max_pool_layouts.txt). A window holding NaN outputs NaN (np.maximum
    propagates it); which of its positions gets the gradient is then unspecified.
    ``with_arg_max=False`` returns ``(out, None)``, the same ``out`` for a quarter of the work.

    Fast path, for windows that tile a channels-last ``x`` (stride == ph == pw, pad == 0: a
    Convolution's output pooled 2×2/2, as in every book network): the same passes over dense
    rows, one per offset, copied first (``_tiled_offsets``). Why: an offset's strided view of
    channels-last memory is runs of C values, and NumPy pays per run on each of the ~10
    passes; copied once, pixel by pixel, every pass runs over one contiguous row. Forward
    with arg_max (without), 1 thread, batch 100, float32, ms on the 2-core Zen 4 VM (SkylakeX
    kernels), strided -> dense: C30 24×24 (SimpleConvNet) 1.05 -> 0.79 (0.52 -> 0.52), C16
    28×28 0.99 -> 0.56 (0.53 -> 0.36), C32 16×16 0.46 -> 0.29 (0.23 -> 0.18), C64 8×8
    0.21 -> 0.17 (0.10 -> 0.10) (benchmarks/results/2026-12-05-pool-rows/max_pool_rows-skylakex.txt).
    ``tiled_fast_path=False`` forces the strided views (a test compares the two).
    """
    OH, OW = conv_output_shape(x.shape, ph, pw, stride, pad, "max_pool")
    channels_last = is_channels_last(x)
    # out and arg_max in x's memory layout: a Convolution's output (after ReLU) is channels-last,
    # and every pass then reads and writes along the same axes (NCHW results from channels-last
    # views were transposing copies; measured in the docstring).
    if channels_last:
        out = np.empty((x.shape[0], OH, OW, x.shape[1]), dtype=x.dtype).transpose(0, 3, 1, 2)
    else:
        out = np.empty((*x.shape[:2], OH, OW), dtype=x.dtype)
    arg_max = np.empty_like(out, dtype=np.min_scalar_type(ph * pw - 1)) if with_arg_max else None  # out's layout
    split = worth_splitting(x.size)

    if tiled_fast_path and channels_last and pad == 0 and stride == ph == pw and x.dtype.kind in "biuf":
        x_cl, out_cl = x.transpose(0, 2, 3, 1), out.transpose(0, 2, 3, 1)  # (N, H, W, C) arrays
        arg_cl = None if arg_max is None else arg_max.transpose(0, 2, 3, 1)

        def pool_rows(b: slice | EllipsisType) -> None:  # samples b (see threads.in_parts)
            _max_and_arg_max(
                _tiled_offsets(x_cl[b], ph, pw), out_cl[b].reshape(-1),
                None if arg_cl is None else arg_cl[b].reshape(-1),
            )

        in_parts(pool_rows, x.shape[0], split)
        return out, arg_max

    xp = pad_hw(x, pad, -np.inf)
    offsets = [xp[(slice(None), slice(None), *offset_slices(i, j, OH, OW, stride))]
               for i, j in np.ndindex(ph, pw)]  # window position k's value, for every window

    def pool(b: slice | EllipsisType) -> None:  # samples b (see threads.in_parts)
        _max_and_arg_max([part[b] for part in offsets], out[b], None if arg_max is None else arg_max[b])

    in_parts(pool, x.shape[0], split)
    return out, arg_max


def _max_and_arg_max(offsets: Sequence[np.ndarray], out: np.ndarray, arg_max: np.ndarray | None) -> None:
    """``out`` = the running max of the offsets' values, and ``arg_max`` (if not None) the first
    offset k holding it, in the Horner form ``max_pool`` describes; all arrays one shape."""
    np.copyto(out, offsets[0])
    for part in offsets[1:]:
        np.maximum(out, part, out=out)
    if arg_max is None:
        return
    if len(offsets) == 1:  # 1x1 windows: the one position
        arg_max[...] = 0
        return
    # Scratch made once: fresh temporaries per pass page-fault, and two threads faulting
    # at once wait on each other (max pooling on 2 threads: 1.24x -> 1.9x).
    flag = np.empty_like(arg_max)
    np.not_equal(offsets[-2], out, out=arg_max)  # ne_{K-2}
    for part in reversed(offsets[:-2]):  # arg_max = ne_k · (1 + arg_max), k = K-3 .. 0
        arg_max += 1
        np.not_equal(part, out, out=flag)
        arg_max *= flag


def _tiled_offsets(x_cl: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """The values of every ph×pw window tiling ``x_cl`` (N, H, W, C), a C-contiguous
    channels-last array, as dense rows (ph·pw, N·OH·OW·C): row k = (i, j) holds
    x_cl[n, oh·ph + i, ow·pw + j, c] in (n, oh, ow, c) order, a channels-last ``out``'s. One
    copy, each pixel's C values moved as one ``np.void`` value (one memcpy, as
    ``kernels.conv`` moves window rows)."""
    windows = window_pixels(x_cl, ph, pw)
    rows = np.empty(windows.shape, dtype=windows.dtype)
    np.copyto(rows, windows)
    return rows.view(x_cl.dtype).reshape(ph * pw, -1)


def window_pixels(a_cl: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """The pixels of a C-contiguous channels-last ``a_cl`` (N, H, W, C) whose ph×pw windows
    tile it, as a (ph, pw, N·OH, OW) view: [i, j] holds each window's pixel (i, j) in (n, oh,
    ow) order, a pixel being one ``np.void`` of its C values (one memcpy). One ``np.copyto``
    from it gathers the windows' offsets into dense rows; one into it puts dense rows back."""
    N, H, W, C = a_cl.shape
    pixel = np.dtype((np.void, C * a_cl.itemsize))
    return a_cl.reshape(N * (H // ph), ph, W // pw, pw * C).view(pixel).transpose(1, 3, 0, 2)


def is_channels_last(a: np.ndarray) -> bool:
    """Whether a 4-D (N, C, H, W) array lies in memory as (N, H, W, C), one block (and not also
    as NCHW, as an array with one channel or one pixel does)."""
    return a.ndim == 4 and a.transpose(0, 2, 3, 1).flags.c_contiguous and not a.flags.c_contiguous


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
    if is_channels_last(arg_max) and not is_channels_last(dout):
        # dout in arg_max's layout first, one copy: the passes below mixing the two layouts took
        # 1.44 against 0.15 ms on DeepConvNet's last pooling, whose dout comes from an Affine
        # (benchmarks/results/2026-12-05-conv-rows/max_pool_layouts.txt).
        dout_nchw, dout = dout, np.empty_like(arg_max, dtype=dout.dtype)
        np.copyto(dout, dout_nchw)

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

    in_parts(route, N, worth_splitting(dx.size))
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

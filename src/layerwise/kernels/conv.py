"""Convolution's fast paths: im2col with channels-last columns, the products a few images at
a time, and the input gradient.

Plain expressions (the book's, in ``layerwise.functional``; checked in tests/kernels/):
``im2col(x, FH, FW, stride, pad)`` is ``functional.im2col`` with each row's columns in
(fh, fw, c) order instead of (c, fh, fw) (the same when C == 1);
``im2col_dot(x, col_W, b, ...)`` is ``im2col(x, ...) @ col_W + b``, and so is
``conv_forward``, by im2col_dot or by ``winograd`` where that is faster on this machine;
``im2col_weight_grad(d, x, ...)`` is ``d.T @ im2col(x, ...)``, and so is ``conv_weight_grad``
(likewise by either way); and
``conv_input_grad(d, W, ...)`` is ``functional.col2im(d @ W.reshape(FN, -1), ...)``, computed
one of two ways by shape. The last three work through the batch in cache-sized chunks.

Images are NCHW. The only Python loops run over the FH×FW kernel offsets (9 or 25
iterations for the usual kernels) and over the chunks of a batch; each iteration moves one
strided view of a whole chunk of images, never a single position.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from types import EllipsisType

import numpy as np

from ..checks import conv_output_shape
from ..errors import ShapeError
from . import cache_sizes, tuning, winograd
from .blas_limits import blas_threads
from .blocks import inner_dot, rows_dot
from .threads import (
    chunk_threads,
    in_chunks,
    in_parts,
    parts_at_once,
    side_by_side,
    sum_in_chunks,
    worth_splitting,
)

__all__ = [
    "add_to_rows", "add_windows", "by_correlation", "conv_forward", "conv_input_grad", "conv_weight_grad", "im2col",
    "im2col_dot", "im2col_weight_grad", "offset_slices", "pad_hw", "use_winograd",
]


def pad_hw(x: np.ndarray, pad: int, value: float = 0.0) -> np.ndarray:
    """``x`` (N, C, H, W) with ``pad`` rows/columns of ``value`` around H and W (no copy if 0)."""
    if pad == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=value)


def offset_slices(i: int, j: int, OH: int, OW: int, stride: int) -> tuple[slice, slice]:
    """Rows and columns that kernel offset (i, j) touches, one per output position."""
    return slice(i, i + stride * (OH - 1) + 1, stride), slice(j, j + stride * (OW - 1) + 1, stride)


def add_windows(
    target: np.ndarray, part: Callable[[int, int], np.ndarray], FH: int, FW: int,
    OH: int, OW: int, stride: int, hw_axes: tuple[int, int] = (2, 3),
) -> np.ndarray:
    """``target[..., rows(i), cols(j), ...] += part(i, j)`` for every kernel offset (i, j):
    each window's values added back where they came from (overlapping windows sum). The one
    scatter loop of col2im, the convolution's input gradient and the poolings' backward.
    ``hw_axes`` are target's height and width axes (1, 2 for a channels-last buffer)."""
    index: list[slice] = [slice(None)] * target.ndim
    for i in range(FH):
        for j in range(FW):
            index[hw_axes[0]], index[hw_axes[1]] = offset_slices(i, j, OH, OW, stride)
            target[tuple(index)] += part(i, j)
    return target


def _channels_last_windows(
    x: np.ndarray, FH: int, FW: int, stride: int, pad: int, OH: int, OW: int
) -> np.ndarray:
    """Every FH×FW window of ``x`` (N, C, H, W) as a read-only (N, OH, OW, FH) view of one
    zero-padded, channels-last copy of ``x`` (no copy at all when pad is 0 and ``x`` is already
    channels-last in memory, as a Convolution's output after ReLU is), each element one window
    row: the FW·C values of FW neighbouring pixels, contiguous there, as one ``np.void`` value.

    It is ``np.lib.stride_tricks.sliding_window_view(img, (FH, FW), axis=(1, 2))``, strided,
    transposed to (N, OH, OW, FH, FW, C) and its last two axes taken as one value. Why: NumPy
    copies a float array run by run, paying per run, and a window row is only FW·C values long
    (48 for DeepConvNet's 16-channel layers); as one value each row is one memcpy. im2col of a
    chunk of DeepConvNet's second layer took 0.118 ms as floats, 0.093 ms as window rows (32
    channels: 0.083 / 0.074; benchmarks/results/2026-12-05-conv-rows/window_rows.txt). Made
    directly, not by sliding_window_view, whose checks cost 6 us a call against 0.3 us (a
    DeepConvNet step makes ~80 of these views)."""
    N, C, H, W = x.shape
    if pad == 0:
        img = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    else:
        img = np.zeros((N, H + 2 * pad, W + 2 * pad, C), dtype=x.dtype)
        img[:, pad : pad + H, pad : pad + W, :] = x.transpose(0, 2, 3, 1)
    n, h, w, _ = img.strides
    window_row = np.dtype((np.void, FW * C * img.itemsize))
    windows = np.ndarray((N, OH, OW, FH), window_row, img, 0, (n, h * stride, w * stride, h))
    windows.flags.writeable = False
    return windows


def im2col(x: np.ndarray, FH: int, FW: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Every FH×FW window of ``x`` (N, C, H, W) as a row of ``col`` (N·OH·OW, FH·FW·C), rows
    ordered (n, oh, ow), columns (fh, fw, c); pair it with ``W.transpose(0, 2, 3, 1)``.

    Why this column order: each window row is then FW·C contiguous values of the
    channels-last input and the whole col is one copy of the window view, 3-4× faster for
    C >= 16 than the book's order, whose contiguous runs are one value long (NumPy's copy
    pays per run), and faster again with each window row copied as one value (see
    ``_channels_last_windows``). Large copies run in batch parts on the owned threads. A
    one-channel input (a network's first layer) is filled column by column instead (see below).
    """
    N, C = x.shape[:2]
    OH, OW = conv_output_shape(x.shape, FH, FW, stride, pad, "im2col")
    if C == 1:
        return _im2col_one_channel(x, FH, FW, stride, pad, OH, OW)
    windows = _channels_last_windows(x, FH, FW, stride, pad, OH, OW)
    col = np.empty(windows.shape, dtype=windows.dtype)
    in_parts(lambda b: np.copyto(col[b], windows[b]), N, worth_splitting(N * OH * OW * FH * FW * C))
    return col.view(x.dtype).reshape(N * OH * OW, FH * FW * C)


#: Rows below which ``add_to_rows`` adds row by row: tiling the row costs a few microseconds.
WIDE_ADD_MIN_ELEMENTS = 1 << 14


def add_to_rows(out: np.ndarray, row: np.ndarray) -> None:
    """``out += row`` for a C-contiguous 2-D ``out`` (a convolution's rows and its bias), the
    same additions, with ``row`` tiled along a wider view of ``out``.

    Why: NumPy runs a broadcast add as one inner loop per row, FN values long; DeepConvNet's
    first layers have FN = 16, and the second layer's 7,056-row chunks took 44 us row by row
    against 13 us as rows of 1,024 values (1 thread, SkylakeX: 0.4 ms of each forward)."""
    rows, width = out.shape
    per = max(1, 1024 // max(1, width))  # rows of out in one wide row
    body = rows // per * per
    if per == 1 or out.size < WIDE_ADD_MIN_ELEMENTS or not out.flags.c_contiguous:
        out += row
        return
    wide = out[:body].reshape(body // per, per * width)
    wide += np.tile(row, per)
    out[body:] += row


def images_per_chunk(bytes_per_image: int, n: int) -> int:
    """How many images a convolution works through at a time when each makes
    ``bytes_per_image`` of temporaries (its share of im2col's col): as many as fit in
    ``cache_sizes.conv_chunk_bytes()``, at least one, at most ``n``."""
    return max(1, min(n, cache_sizes.conv_chunk_bytes() // max(1, bytes_per_image)))


def im2col_dot(
    x: np.ndarray, col_W: np.ndarray, b: np.ndarray, FH: int, FW: int, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """``im2col(x, FH, FW, stride, pad) @ col_W + b``, the convolution's forward as rows
    (N·OH·OW, FN) ordered (n, oh, ow), made a few images at a time (``images_per_chunk``).

    Why chunks: col is FH·FW times the input. DeepConvNet's second layer makes a 45 MB col
    at batch 100, more than the 32 MB last-level cache here, so im2col wrote it to memory
    and the product read it back. Made in cache-sized chunks (4 MiB) and multiplied at once,
    that layer's forward and backward took 14.0 ms instead of 22.7 (1 thread, SkylakeX
    kernels), and DeepConvNet's training step 56 ms instead of 77 (benchmarks/README.md,
    "Convolutions a few images at a time"). Chunks share out the owned threads, too.
    """
    OH, OW = conv_output_shape(x.shape, FH, FW, stride, pad, "im2col_dot")
    N, C = x.shape[:2]
    if col_W.ndim != 2 or col_W.shape[0] != FH * FW * C or b.shape != (col_W.shape[1],):
        raise ShapeError(
            f"im2col_dot: col_W has shape {col_W.shape} and b {b.shape}, expected ({FH * FW * C}, FN) "
            f"and (FN,) for x {x.shape} and a {FH}x{FW} kernel"
        )
    rows = OH * OW
    out = np.empty((N * rows, col_W.shape[1]), dtype=np.result_type(x, col_W))
    add = b.reshape(-1)

    def chunk(images: slice) -> None:
        part = out[images.start * rows : images.stop * rows]
        rows_dot(im2col(x[images], FH, FW, stride, pad), col_W, out=part)
        add_to_rows(part, add)

    in_chunks(chunk, N, images_per_chunk(rows * FH * FW * C * x.itemsize, N))
    return out


#: Convolutions with fewer multiply-adds an image than this always compute by im2col: the
#: one-time measurement that picks the way (a few ms) would outweigh what Winograd saves.
#: DeepConvNet's third convolution (16 -> 32 channels, 14×14: 0.9M) is above it: by Winograd,
#: with the transforms as products, its forward took 0.76 of im2col's time (32 images) and the network's
#: predict on 2,000 images 0.97 (1 thread, Zen 4 VM, 5 alternating processes each way: 0.89-1.01).
WINOGRAD_MIN_WORK = 1 << 19
#: Nor do calls on fewer images than this: Winograd's fixed costs (the filter transform, a
#: dozen passes) lose there, whatever the machine's products (im2col / Winograd time for one
#: image 0.80-0.89, two 0.95-1.11, eight 1.04-1.37: DeepConvNet's 16-, 32- and 64-channel
#: layers, Zen 4, 1 thread). The measurement runs on ``WINOGRAD_SAMPLE_IMAGES``, whatever
#: the batch of the call that asks first.
WINOGRAD_MIN_IMAGES = 4
WINOGRAD_SAMPLE_IMAGES = 32


def conv_forward(
    x: np.ndarray, col_W: np.ndarray, b: np.ndarray, FH: int, FW: int, stride: int = 1, pad: int = 0,
    keep: dict[tuple, np.ndarray] | None = None,
) -> np.ndarray:
    """``im2col(x, FH, FW, stride, pad) @ col_W + b``, the convolution's forward as rows
    (N·OH·OW, FN): ``im2col_dot``, or for a stride-1 3×3 convolution that this machine runs
    faster that way, ``winograd.winograd_conv`` (``use_winograd`` decides). Given ``keep`` (a
    training forward), Winograd's transformed input tiles go there for ``conv_weight_grad``
    while they come to at most ``cache_sizes.kept_bytes`` and the weight gradient computes the same
    way (``use_winograd`` decides each); without it (evaluation) Winograd reuses the filters'
    transform of the same weights (``winograd.kept_filter_transform``)."""
    conv_output_shape(x.shape, FH, FW, stride, pad, "im2col_dot")  # a bad x reported as im2col_dot would
    C = x.shape[1]
    FN = col_W.shape[1] if col_W.ndim == 2 else 0
    W_shape = (FN, C, FH, FW)
    way = None
    if col_W.shape == (FH * FW * C, FN) and b.shape == (FN,):
        way = use_winograd(x, W_shape, stride, pad, col_W.dtype)
    if way:
        evaluation = keep is None  # a training forward's weights change every step: its filters made anew
        if keep is not None and (winograd.tiles_bytes(x.shape, pad, way[1], x.itemsize) > cache_sizes.kept_bytes()
                                 or use_winograd(x, W_shape, stride, pad, col_W.dtype, "weight gradient") != way):
            keep = None  # too large, or the weight gradient goes another way and would not use them
        W = col_W.T.reshape(FN, FH, FW, C).transpose(0, 3, 1, 2)
        return winograd.winograd_conv(x, W, pad, *way, keep=keep, bias=b, reuse_filters=evaluation)
    return im2col_dot(x, col_W, b, FH, FW, stride, pad)  # which also reports a bad shape


def use_winograd(
    x: np.ndarray, W_shape: tuple[int, ...], stride: int, pad: int, dtype: np.dtype, what: str = "forward"
) -> tuple[str, int] | None:
    """Whether the convolution of ``x`` with weights of ``W_shape`` computes ``what`` (its
    ``"forward"``, or its ``"weight gradient"``) by Winograd, as the transforms and the output
    block to use (one of ``winograd.TRANSFORMS``, one of ``winograd.BLOCKS``), or None for
    im2col: where ``winograd.applies``, with at least
    ``WINOGRAD_MIN_WORK`` multiply-adds an image and ``WINOGRAD_MIN_IMAGES`` images, and where
    ``tuning.conv_way`` finds it faster on this machine (measured once, the ways in turn, and
    kept)."""
    N, C, H, W = x.shape
    FN = W_shape[0]
    dtype = np.result_type(x, dtype)
    if N < WINOGRAD_MIN_IMAGES or not winograd.applies(W_shape, stride, pad, dtype):
        return None
    OH, OW = H + 2 * pad - 2, W + 2 * pad - 2
    if OH < 1 or OW < 1 or OH * OW * C * FN * 9 < WINOGRAD_MIN_WORK:
        return None
    # Keyed by how the call runs: BLAS's threads, the threads its chunks spread across (the
    # "blas" plan runs the products on all threads, "owned" the chunks) and the parts of a
    # split running beside it (a training's "split" plan, predict on several threads), where
    # the ways are timed side by side: the ways compare differently in each.
    key = f"C{C} FN{FN} {H}x{W} pad {pad} {dtype.name}, BLAS threads {blas_threads()}, chunks on {chunk_threads()}"
    if parts_at_once() > 1:
        key = f"{key}, {parts_at_once()} parts at once"
    if what != "forward":
        key = f"{key}, {what}"
    way = tuning.conv_way(key, lambda: _time_ways((C, H, W), W_shape, pad, dtype, what))
    return _WAY_ARGUMENTS[way]


#: The transforms and output block each of ``tuning.CONV_WAYS`` computes with (None: im2col).
_WAY_ARGUMENTS: dict[str, tuple[str, int] | None] = {
    "im2col": None, "winograd": ("products", 2), "winograd by sums": ("sums", 2), "winograd 4x4": ("products", 4),
}


def _time_ways(
    image_shape: tuple[int, ...], W_shape: tuple[int, ...], pad: int, dtype: np.dtype, what: str
) -> dict[str, float]:
    """Seconds each way takes to compute ``what`` for ``WINOGRAD_SAMPLE_IMAGES`` random images
    of ``image_shape`` (C, H, W), channels-last as a network's activations are, with random
    weights (or dout) of ``W_shape``: the fastest of 7 calls, the ways taking turns. Inside a
    split's parts each call runs that many times at once, side by side, as the parts will
    (``threads.side_by_side``): there the threads share the GIL between NumPy's calls, and
    Winograd makes more of them (before its transforms were products, it lost there what it
    won alone: DeepConvNet's 2-thread predict 1.05x as long as by im2col, the split plan's
    training 1.09-1.11x; benchmarks/results/2026-12-05-winograd/before_after-*.txt)."""
    rng = np.random.default_rng(0)
    C, H, Wd = image_shape
    x = rng.standard_normal((WINOGRAD_SAMPLE_IMAGES, H, Wd, C)).astype(dtype).transpose(0, 3, 1, 2)
    W = rng.standard_normal(W_shape).astype(dtype)
    col_W = W.transpose(0, 2, 3, 1).reshape(W_shape[0], -1).T
    ways: dict[str, Callable[[], object]]
    if what == "forward":
        ways = {"im2col": lambda: im2col_dot(x, col_W, np.zeros(W_shape[0], dtype), 3, 3, 1, pad)}
        by_winograd: Callable[..., object] = functools.partial(winograd.winograd_conv, x, W, pad)
    else:
        OH, OW = x.shape[2] + 2 * pad - 2, x.shape[3] + 2 * pad - 2
        d = rng.standard_normal((len(x) * OH * OW, W_shape[0])).astype(dtype)
        ways = {"im2col": lambda: im2col_weight_grad(d, x, 3, 3, 1, pad)}
        by_winograd = functools.partial(winograd.winograd_weight_grad, d, x, pad)
    for way, arguments in _WAY_ARGUMENTS.items():
        if arguments is not None:
            ways[way] = functools.partial(by_winograd, *arguments)
    copies = parts_at_once()
    times: dict[str, list[float]] = {way: [] for way in ways}
    for _ in range(9):  # the first two rounds only warm up
        for way, run in ways.items():
            if copies > 1:
                times[way].append(side_by_side(run, copies))
                continue
            start = time.perf_counter()
            run()
            times[way].append(time.perf_counter() - start)
    # The fastest call of each: on two threads, BLAS's idle workers and the other thread's
    # work slowed single calls by up to 4x, and medians of 5 picked the slower way.
    return {way: min(spent[2:]) for way, spent in times.items()}


def conv_weight_grad(
    d: np.ndarray, x: np.ndarray, FH: int, FW: int, stride: int = 1, pad: int = 0,
    kept: dict[tuple, np.ndarray] | None = None,
) -> np.ndarray:
    """``d.T @ im2col(x, FH, FW, stride, pad)``, the convolution's weight gradient (FN,
    FH·FW·C), columns (fh, fw, c): ``im2col_weight_grad``, or for a stride-1 3×3 convolution
    that this machine runs faster that way, ``winograd.winograd_weight_grad`` (with the tiles
    ``conv_forward`` kept for this ``x``)."""
    conv_output_shape(x.shape, FH, FW, stride, pad, "im2col_weight_grad")  # a bad x reported as there
    FN = d.shape[1] if d.ndim == 2 else 0
    rows = (x.shape[2] + 2 * pad - FH + 1) * (x.shape[3] + 2 * pad - FW + 1)
    way = None
    if d.shape == (x.shape[0] * rows, FN):
        way = use_winograd(x, (FN, x.shape[1], FH, FW), stride, pad, np.result_type(d, x), "weight gradient")
    if way:
        dW = winograd.winograd_weight_grad(d, x, pad, *way, kept=kept)  # (FN, C, 3, 3)
        return dW.transpose(0, 2, 3, 1).reshape(FN, -1)
    return im2col_weight_grad(d, x, FH, FW, stride, pad)  # which also reports a bad d


def im2col_weight_grad(
    d: np.ndarray, x: np.ndarray, FH: int, FW: int, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """``d.T @ im2col(x, FH, FW, stride, pad)``, the convolution's weight gradient (FN,
    FH·FW·C) from ``d`` = dout as rows (N·OH·OW, FN): col made again a few images at a time
    (it was not kept: see ``im2col_dot``), each chunk's product added in chunk order, so the
    sum is the same whichever threads computed the chunks."""
    OH, OW = conv_output_shape(x.shape, FH, FW, stride, pad, "im2col_weight_grad")
    N, C = x.shape[:2]
    rows = OH * OW
    if d.ndim != 2 or d.shape[0] != N * rows:
        raise ShapeError(f"im2col_weight_grad: d has shape {d.shape}, expected ({N * rows}, FN) for x {x.shape}")
    def chunk(images: slice) -> np.ndarray:
        d_rows = d[images.start * rows : images.stop * rows]
        # colᵀ·d, transposed at the end: the same sums, 10-14% faster for DeepConvNet's narrow
        # layers with SkylakeX kernels (dᵀ·col with FN = 16: 131 GFLOP/s, colᵀ·d: 149).
        return inner_dot(im2col(x[images], FH, FW, stride, pad), d_rows)

    total = sum_in_chunks(chunk, N, images_per_chunk(rows * FH * FW * C * x.itemsize, N))
    if total is None:  # no images: no windows to sum
        return np.zeros((d.shape[1], FH * FW * C), dtype=np.result_type(d, x))
    return total.T


def _im2col_one_channel(x: np.ndarray, FH: int, FW: int, stride: int, pad: int, OH: int, OW: int) -> np.ndarray:
    """im2col of a one-channel input, where both column orders agree: each column of col is
    one kernel offset's strided view of the images, so col is filled column by column, as a
    column-major array, in runs of OW values. The window view would copy it in runs of FW
    values (5 for the book's filters): 1.5 ms for 100 images against ~0.5 ms. BLAS takes the
    column-major col as it is."""
    N = x.shape[0]
    img = pad_hw(x, pad)[:, 0]
    col_t = np.empty((FH, FW, N, OH, OW), dtype=x.dtype)  # col transposed, as its memory lies

    def fill(b: slice | EllipsisType) -> None:  # samples b (see threads.in_parts)
        for i, j in np.ndindex(FH, FW):
            np.copyto(col_t[i, j, b], img[(b, *offset_slices(i, j, OH, OW, stride))])

    in_parts(fill, N, worth_splitting(col_t.size))
    return col_t.reshape(FH * FW, N * OH * OW).T


def conv_input_grad(
    d: np.ndarray, W: np.ndarray, x_shape: tuple[int, ...], stride: int = 1, pad: int = 0
) -> np.ndarray:
    """The input gradient of a convolution, from ``d`` = dout as rows (N·OH·OW, FN) ordered
    (n, oh, ow) and the weights W (FN, C, FH, FW): ``col2im(d @ W.reshape(FN, -1), x_shape,
    FH, FW, stride, pad)``. Returns an (N, C, H, W) view of a channels-last buffer.

    Two ways, the same sums in a different order (equal to float rounding, checked in
    tests/kernels/test_conv.py), chosen by shape alone so that a run's numbers never depend on
    a timing:

    - by correlation (:func:`_input_grad_by_correlation`), for stride 1, square kernels with
      pad <= FH - 1, and FN <= 2·C: one im2col of dout and one product with K = FH·FW·FN;
    - per kernel offset (:func:`_input_grad_per_offset`) otherwise: FH·FW products with K = FN,
      each scattered back.

    Measured on the 2-core AMD VM (1 thread, batch 100, 3×3 kernels, pad 1 unless said), per
    offset / by correlation in ms, SkylakeX kernels (Haswell's in brackets), with im2col
    copying window rows whole (benchmarks/results/2026-12-05-conv-rows/input_grad_ways-*.txt):
    C16 FN16 28×28 5.26 / 3.03 (6.54 / 4.51), C32 FN32 14×14 pad 2 4.14 / 2.06, C64 FN64 8×8
    2.95 / 2.18; with FN = 2·C still by correlation: C16 FN32 14×14 1.74 / 1.41 (2.40 / 2.14),
    C32 FN64 8×8 1.57 / 1.33 (2.43 / 2.20); at FN = 4·C the two tie (C8 FN32 1.44 / 1.40,
    C16 FN64 2.68 / 2.72); beyond, the per-offset way's product with K = FN is the better
    trade (C4 FN32 1.09 / 1.18, C3 FN32 28×28 5.13 / 6.49, C1 FN16 1.11 / 1.45).
    (Before im2col copied window rows whole, FN = 2·C went per offset.)
    """
    N = x_shape[0]
    FN, _, FH, FW = W.shape
    OH, OW = conv_output_shape(x_shape, FH, FW, stride, pad, "conv_input_grad")
    if d.shape != (N * OH * OW, FN):
        raise ShapeError(
            f"conv_input_grad: d has shape {d.shape}, expected {(N * OH * OW, FN)} for "
            f"x_shape={tuple(x_shape)}, W.shape={W.shape}, stride {stride}, pad {pad}"
        )
    if by_correlation(W.shape, stride, pad):
        return _input_grad_by_correlation(d, W, x_shape, pad, OH, OW)
    return _input_grad_per_offset(d, W, x_shape, stride, pad, OH, OW)


def by_correlation(W_shape: tuple[int, ...], stride: int, pad: int) -> bool:
    """Whether :func:`conv_input_grad` takes the correlation way for these weights (see there)."""
    FN, C, FH, FW = W_shape
    return stride == 1 and FH == FW and pad <= FH - 1 and FN <= 2 * C


def _input_grad_by_correlation(
    d: np.ndarray, W: np.ndarray, x_shape: tuple[int, ...], pad: int, OH: int, OW: int
) -> np.ndarray:
    """For stride 1: dx is dout, padded by FH - 1 - pad, correlated with W turned 180° and
    its two channel axes swapped, dx[n, c, h, w] = Σ_{f,i,j} dout[n, f, h + pad - i, w + pad - j]
    · W[f, c, i, j]. So it is a forward convolution: an im2col of dout (channels-last, as ``d``
    already is) and one product with K = FH·FW·FN, and no scatter at all; a few images at a
    time, like ``im2col_dot``."""
    N, C, H, Wd = x_shape
    FN, _, FH, FW = W.shape
    dout = d.reshape(N, OH, OW, FN).transpose(0, 3, 1, 2)  # an NCHW view of d's channels-last rows
    turned_W = W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, FN, FH, FW): the filters of this convolution
    way = use_winograd(dout, turned_W.shape, 1, FH - 1 - pad, W.dtype)
    if way:
        dx = winograd.winograd_conv(dout, turned_W, FH - 1 - pad, *way)
        return dx.reshape(N, H, Wd, C).transpose(0, 3, 1, 2)
    turned = W[:, :, ::-1, ::-1].transpose(2, 3, 0, 1).reshape(FH * FW * FN, C)  # rows (fh, fw, f)
    dx = np.empty((N, H, Wd, C), dtype=np.result_type(d, W))

    def chunk(images: slice) -> None:
        col = im2col(dout[images], FH, FW, 1, FH - 1 - pad)  # (n·H·W, FH·FW·FN), columns (fh, fw, f)
        rows_dot(col, turned, out=dx[images].reshape(-1, C))

    in_chunks(chunk, N, images_per_chunk(H * Wd * FH * FW * FN * d.itemsize, N))
    return dx.transpose(0, 3, 1, 2)


def _input_grad_per_offset(
    d: np.ndarray, W: np.ndarray, x_shape: tuple[int, ...], stride: int, pad: int, OH: int, OW: int
) -> np.ndarray:
    """Per kernel offset k = (i, j): d @ W[:, :, i, j] is the (N·OH·OW, C) gradient of the
    input pixels that offset touched. One batched matmul makes all FH·FW of them, and each is
    added to its strided slice of a channels-last image in runs of OW·C values (col2im's runs
    are one value long): ~2× faster than col2im for C >= 16. A few images at a time, like
    ``im2col_dot``."""
    N, C, H, Wd = x_shape
    FN, _, FH, FW = W.shape
    rows = OH * OW
    per_offset = W.transpose(2, 3, 0, 1).reshape(FH * FW, FN, C)
    img = np.zeros((N, H + 2 * pad, Wd + 2 * pad, C), dtype=np.result_type(d, W))

    def chunk(images: slice) -> None:
        part = d[images.start * rows : images.stop * rows]
        dcol = np.matmul(part, per_offset).reshape(FH, FW, -1, OH, OW, C)
        add_windows(img[images], lambda i, j: dcol[i, j], FH, FW, OH, OW, stride, hw_axes=(1, 2))

    in_chunks(chunk, N, images_per_chunk(FH * FW * rows * C * d.itemsize, N))
    return img[:, pad : pad + H, pad : pad + Wd, :].transpose(0, 3, 1, 2)

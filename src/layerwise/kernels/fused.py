"""A Convolution, the ReLU after it and the max pooling after that, computed together a few
images at a time, in training: the kernel of ``models.fusion``.

Plain expressions (the three layers one after another; checked in tests/kernels/test_fused.py):
with ``y = im2col(x) @ col_W + b`` (``kernels.conv``),

- ``conv_relu_pool(x, col_W, b, ...)`` is ``(out, mask, arg_max)`` with ``mask = y <= 0``
  and ``out, arg_max = max_pool(max(y, 0), pool, pool, pool)`` (``kernels.pool``), every
  array in the layers' channels-last layouts;
- ``conv_relu_pool_backward(dout, x, W, mask, arg_max, ...)`` is ``(dW, db, dx)`` of
  ``d = relu_grad(max_pool_backward(dout, arg_max, ...), mask)`` as rows (N·OH·OW, FN):
  ``dW = dᵀ·im2col(x)``, ``db = Σ_rows d``, ``dx = conv_input_grad(d, W, ...)`` (None unless
  asked for);
- for a convolution's output ``y`` computed apart (by Winograd), ``relu_pool(y, pool)`` is
  ``(out, mask, arg_max, passed)`` as above, ``passed = out > 0``, in y's layout, and
  ``relu_pool_backward(dout, passed, arg_max, ...)`` is ``relu_grad(max_pool_backward(dout,
  arg_max, ...), mask)``.

Equal to float rounding: the bias is a row of the weights, met by a column of ones in col,
so it is added inside the product, and db is summed inside the weight gradient's product;
a zero of d may be -0.0 where the layers' is +0.0 (every sum over it is the same). A window
holding NaN (training has diverged) takes arg_max 0 and passes no gradient here, where the
layers route it to the window's last position.

Why: the three layers each write and read the convolution's whole output, 6.9 MB for
SimpleConvNet's batch of 100, twice forward (y, max(y, 0)) and twice backward (the pooling's
dx, the ReLU's), max pooling copies it once more into dense rows (``max_pool``'s fast path),
and the bias and db take a pass each. Here each chunk's rows of y are made in the order
pooling reads them: the rows of col are ordered (i, j, n, ph, pw) for output position
(ph·pool + i, pw·pool + j), so a window's values lie in pool² dense blocks of the chunk's
product, the ReLU runs on the pooled maxima (a quarter of the values), and backward writes
each block's gradient densely, from the windows the ReLU passed, without the mask. Nothing
of the output's size leaves the core's cache but the ReLU's mask (the Relu layer's cache),
and col is kept for the backward while it fits the last-level cache
(``cache_sizes.kept_bytes``). SimpleConvNet's training step (1 thread, batch 100, Zen 4 VM,
SkylakeX kernels) takes 0.73 of the three layers' time, the run's forward 0.73 and its
backward 0.51 (benchmarks/results/2026-12-05-fusion/run_parts-skylakex.txt; the Trainer's
steps before and after, 1 / 2 threads: 0.79 / 0.84, before_after-skylakex.txt).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..checks import conv_output_shape
from ..errors import ShapeError
from .activations import max_zero
from .blocks import inner_dot, rows_dot
from .cache_sizes import conv_chunk_bytes, core_cache_bytes
from .conv import _channels_last_windows, conv_input_grad, pad_hw
from .pool import _max_and_arg_max, max_pool, max_pool_backward, window_pixels
from .threads import chunk_threads, in_chunks, in_parts, sum_in_chunks, worth_splitting

__all__ = [
    "Forward", "ReluPool", "applies", "conv_relu_pool", "conv_relu_pool_backward", "pooled_order_col", "relu_pool",
    "relu_pool_backward",
]


def applies(x_shape: tuple[int, ...], W_shape: tuple[int, ...], stride: int, pad: int, pool: int) -> bool:
    """Whether the pooling's ``pool``×``pool`` windows (stride ``pool``, no padding) tile the
    convolution's whole output, as this module needs: every output position in one window."""
    if len(x_shape) != 4 or len(W_shape) != 4 or x_shape[1] != W_shape[1] or pool < 1:
        return False
    OH = (x_shape[2] + 2 * pad - W_shape[2]) // stride + 1
    OW = (x_shape[3] + 2 * pad - W_shape[3]) // stride + 1
    return OH >= pool and OW >= pool and OH % pool == 0 and OW % pool == 0


def pooled_order_col(x: np.ndarray, FH: int, FW: int, stride: int, pad: int, pool: int) -> np.ndarray:
    """``im2col(x, FH, FW, stride, pad)`` (``kernels.conv``: columns (fh, fw, c)) with one
    more column of ones, its rows in pooling order: (i, j, n, ph, pw) for output position
    (ph·pool + i, pw·pool + j), i and j in range(pool). (pool²·N·PH·PW, FH·FW·C + 1)."""
    N, C = x.shape[:2]
    OH, OW = conv_output_shape(x.shape, FH, FW, stride, pad, "pooled_order_col")
    PH, PW = OH // pool, OW // pool
    K = FH * FW * C
    if C == 1:
        return _one_channel_col(x, FH, FW, stride, pad, pool, PH, PW)
    col = np.empty((pool, pool, N, PH, PW, K + 1), dtype=x.dtype)
    col[..., K] = 1
    windows = _channels_last_windows(x, FH, FW, stride, pad, OH, OW)  # (N, OH, OW, FH) window rows
    # The first K values of each row of col, as FH window rows of FW·C values (one memcpy each).
    item = col.itemsize
    rows = np.ndarray((pool, pool, N, PH, PW, FH), windows.dtype, col, 0,
                      (*col.strides[:5], FW * C * item))
    for i in range(pool):
        for j in range(pool):
            np.copyto(rows[i, j], windows[:, i : i + pool * PH : pool, j : j + pool * PW : pool])
    return col.reshape(-1, K + 1)


def _one_channel_col(x: np.ndarray, FH: int, FW: int, stride: int, pad: int, pool: int, PH: int, PW: int) -> np.ndarray:
    """``pooled_order_col`` of a one-channel input, filled as a column-major array, as
    ``kernels.conv``'s one-channel im2col is (its docstring says why), from the shifted grids
    ``Q[A, B] = img[:, A::step, B::step]`` (PH×PW values from each start A, B; step =
    stride·pool): col's column (fh, fw) at pooling position (i, j) is ``Q[fh + stride·i,
    fw + stride·j]``, so all of col is one strided view of Q, copied at once in runs of PW
    values. Q is (FH + stride·(pool - 1))·(FW + ...)/step² times the image (9/4 for the book's
    5×5 filters): for SimpleConvNet's 50 images 0.225 ms, against 0.486 as 100 copies from
    the image's polyphase parts, 0.374 as one view of the image (runs of one value), and
    0.230 for ``kernels.conv.im2col`` in the layers' order
    (benchmarks/results/2026-12-05-fusion/col_ways-skylakex.txt)."""
    N = x.shape[0]
    img = pad_hw(x, pad)[:, 0]
    step = stride * pool
    A, B = FH + stride * (pool - 1), FW + stride * (pool - 1)
    s_n, s_h, s_w = img.strides
    Q = np.empty((A, B, N, PH, PW), dtype=x.dtype)
    np.copyto(Q, np.lib.stride_tricks.as_strided(img, Q.shape, (s_h, s_w, s_n, step * s_h, step * s_w)))
    K = FH * FW
    col_t = np.empty((K + 1, pool, pool, N, PH, PW), dtype=x.dtype)  # col transposed, as it lies
    col_t[K] = 1
    q_a, q_b, *q_rest = Q.strides
    windows = np.lib.stride_tricks.as_strided(
        Q, (FH, FW, pool, pool, N, PH, PW), (q_a, q_b, stride * q_a, stride * q_b, *q_rest), writeable=False
    )
    np.copyto(col_t[:K].reshape(FH, FW, pool, pool, N, PH, PW), windows)
    return col_t.reshape(K + 1, -1).T


def _pixel(nbytes: int) -> np.dtype:
    """One value of ``nbytes`` bytes: a pixel's channels, moved by one memcpy."""
    return np.dtype((np.void, nbytes))


def _images_per_chunk(col_bytes_per_image: int, n: int) -> int:
    """Images a chunk of the run takes: on one thread as many as make a col the size of the
    core's own cache (``cache_sizes.core_cache_bytes``, its level 2: 1 MiB here), so that a chunk's
    product, mask and pooling work on values still there; when the chunks are spread over
    several threads, a convolution's chunk (``cache_sizes.conv_chunk_bytes``: 4 MiB here), so
    that each thread takes few, long ones. At least one, at most n. SimpleConvNet's step, ms,
    with chunks of 512 KiB, 1, 2, 4 and 8 MiB of col: 14.06, 14.02, 14.60, 14.69, 16.51 on
    1 thread, 11.41, 9.41, 10.19, 9.20, 8.85 on 2 owned threads (median of 7 alternating
    rounds of 40 steps: benchmarks/results/2026-12-05-fusion/chunk_sizes-skylakex.txt)."""
    budget = core_cache_bytes() if chunk_threads() == 1 else conv_chunk_bytes()
    return max(1, min(n, budget // max(1, col_bytes_per_image)))


def _weights_with_bias(col_W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """col_W (K, FN) with b as a last row: the product with a ones column adds the bias."""
    K, FN = col_W.shape
    weights = np.empty((K + 1, FN), dtype=np.result_type(col_W, b))
    weights[:K] = col_W
    weights[K] = b
    return weights


class Forward(NamedTuple):
    """What ``conv_relu_pool`` gives: the three layers' output and caches, and what its
    backward takes besides them."""

    out: np.ndarray  #: the Pooling's output (N, FN, PH, PW)
    mask: np.ndarray  #: the Relu's mask (N, FN, OH, OW)
    arg_max: np.ndarray  #: the Pooling's arg_max (N, FN, PH, PW)
    passed: np.ndarray  #: out > 0: the windows whose max the ReLU let through, (N, PH, PW, FN)
    cols: dict[int, np.ndarray] | None  #: each chunk's col by its first image, when kept


def conv_relu_pool(
    x: np.ndarray, col_W: np.ndarray, b: np.ndarray, FH: int, FW: int, stride: int, pad: int, pool: int,
    keep_cols: bool = False,
) -> Forward:
    """The Convolution, ReLU and tiling max Pooling forward of ``x`` (N, C, H, W): out,
    mask and arg_max as the layers make them (each an NCHW view of a channels-last array), and
    ``passed``; with ``keep_cols``, each chunk's col too, for the backward (module docstring)."""
    N, C = x.shape[:2]
    OH, OW = conv_output_shape(x.shape, FH, FW, stride, pad, "conv_relu_pool")
    FN = col_W.shape[1]
    if col_W.shape != (FH * FW * C, FN) or b.shape != (FN,) or OH % pool or OW % pool:
        raise ShapeError(
            f"conv_relu_pool: col_W {col_W.shape}, b {b.shape}, x {x.shape}: expected ({FH * FW * C}, FN) and "
            f"(FN,), and an output ({OH}x{OW}) that {pool}x{pool} windows tile"
        )
    PH, PW = OH // pool, OW // pool
    weights = _weights_with_bias(col_W, b)
    dtype = np.result_type(x, weights)
    mask = np.empty((N, OH, OW, FN), dtype=bool)
    out = np.empty((N, PH, PW, FN), dtype=dtype)
    arg_max = np.empty((N, PH, PW, FN), dtype=np.min_scalar_type(pool * pool - 1))
    passed = np.empty((N, PH, PW, FN), dtype=bool)
    cols: dict[int, np.ndarray] | None = {} if keep_cols else None

    def chunk(images: slice) -> None:
        col = pooled_order_col(x[images], FH, FW, stride, pad, pool)
        if cols is not None:
            cols[images.start] = col
        y = rows_dot(col, weights)  # im2col·col_W + b
        flags = np.less_equal(y, 0)  # the ReLU's mask, in col's row order, put back in the layer's
        np.copyto(window_pixels(mask[images], pool, pool), flags.view(_pixel(FN)).reshape(pool, pool, -1, PW))
        # Pooled first, the ReLU after: max(max(y, 0) over a window) = max(max over the window, 0),
        # and where the window's max is positive it sits at the same positions. Where it is not,
        # the ReLU's zeros tie and the first position takes the window (arg_max 0).
        window_max, window_arg = out[images].reshape(-1), arg_max[images].reshape(-1)
        _max_and_arg_max(y.reshape(pool * pool, -1), window_max, window_arg)
        max_zero(window_max, window_max)
        window_passed = passed[images].reshape(-1)
        np.greater(window_max, 0, out=window_passed)
        window_arg *= window_passed

    in_chunks(chunk, N, _images_per_chunk(OH * OW * (FH * FW * C + 1) * x.itemsize, N))
    return Forward(out.transpose(0, 3, 1, 2), mask.transpose(0, 3, 1, 2), arg_max.transpose(0, 3, 1, 2), passed, cols)


def conv_relu_pool_backward(
    dout: np.ndarray, x: np.ndarray, W: np.ndarray, passed: np.ndarray, arg_max: np.ndarray,
    stride: int, pad: int, pool: int, input_grad: bool = True, cols: dict[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The three layers' backward from the pooled output's gradient ``dout`` (N, FN, PH, PW),
    the convolution's input ``x`` and weights ``W`` (FN, C, FH, FW), the Pooling's
    ``arg_max`` and ``passed`` (and the kept ``cols``, else col is made again) that
    ``conv_relu_pool`` gave: ``(dW, db, dx)``, dW (FN, FH·FW·C) with columns (fh, fw, c)
    as ``kernels.conv.conv_weight_grad`` gives it, dx None unless ``input_grad``.

    The Relu's mask is not needed: the Pooling sends a window's gradient to its max alone,
    and the ReLU lets it through exactly where that max is positive (``passed``), for finite
    values. So d's blocks are dout·passed·(arg_max == k), k = 0 .. pool²-1."""
    N, C = x.shape[:2]
    FN, _, FH, FW = W.shape
    OH, OW = conv_output_shape(x.shape, FH, FW, stride, pad, "conv_relu_pool_backward")
    PH, PW = OH // pool, OW // pool
    K = FH * FW * C
    dtype = np.result_type(dout, x, W)
    g = np.empty((N, PH, PW, FN), dtype=dtype)  # dout where the ReLU passed it, channels-last as arg_max
    np.copyto(g, dout.transpose(0, 2, 3, 1))  # copied, then multiplied: 0.26 ms against 0.33 reading dout strided
    g *= passed
    arg_cl = np.ascontiguousarray(arg_max.transpose(0, 2, 3, 1))  # no copy: the Pooling's is channels-last
    d_rows = np.empty((N, OH, OW, FN), dtype=dtype) if input_grad else None  # d as (n, oh, ow) rows

    def chunk(images: slice) -> np.ndarray:
        # The ReLU's dx, in col's row order: block k is g where the window's max sits at k.
        at_k = np.equal(arg_cl[images].reshape(1, -1), np.arange(pool * pool, dtype=arg_cl.dtype).reshape(-1, 1))
        d = np.multiply(g[images].reshape(1, -1), at_k)
        if d_rows is not None:
            rows_back = d.view(_pixel(FN * d.itemsize)).reshape(pool, pool, -1, PW)  # back in (n, oh, ow) order
            np.copyto(window_pixels(d_rows[images], pool, pool), rows_back)
        col = None if cols is None else cols.get(images.start)
        if col is None or col.shape[0] != d.size // FN:  # not kept (or other chunks): made again
            col = pooled_order_col(x[images], FH, FW, stride, pad, pool)
        return inner_dot(col, d.reshape(-1, FN))  # colᵀ·d: its last row, the ones column's, is Σ_rows d

    total = sum_in_chunks(chunk, N, _images_per_chunk(OH * OW * (K + 1) * x.itemsize, N))
    if total is None:  # no images
        total = np.zeros((K + 1, FN), dtype=dtype)
    dx = None
    if d_rows is not None:
        dx = conv_input_grad(d_rows.reshape(-1, FN), W, x.shape, stride, pad)
    return total[:K].T, total[K], dx


class ReluPool(NamedTuple):
    """What ``relu_pool`` gives: the two layers' output and caches, and ``passed``."""

    out: np.ndarray  #: the Pooling's output (N, C, PH, PW), in y's memory layout
    mask: np.ndarray  #: the Relu's mask, y <= 0
    arg_max: np.ndarray  #: the Pooling's arg_max
    passed: np.ndarray  #: out > 0: the windows whose max the ReLU let through


def relu_pool(y: np.ndarray, pool: int) -> ReluPool:
    """The ReLU and the tiling max pooling after it, training forward, of a convolution's output
    ``y`` (N, C, OH, OW) that ``conv_relu_pool`` does not compute (one by Winograd): ``out,
    arg_max = max_pool(max(y, 0), pool, pool, pool)`` and ``mask = y <= 0``, each in y's
    memory layout, and ``passed``. Pooled first and the ReLU after, on the maxima, as
    ``conv_relu_pool`` does (its comment says why that is the same): the ReLU's output, an
    array of y's size, is never made, and its backward is a product with ``passed``, a
    quarter of y's size (``relu_pool_backward``). Forward and backward of DeepConvNet's three
    pairs took 0.78-0.79 of the layers' time with SkylakeX kernels, 0.75-0.78 with Haswell's
    (100 images, 1 thread, Zen 4 VM; benchmarks/results/2026-12-06-kept-tiles/relu_pool-*.txt)."""
    mask = np.empty_like(y, dtype=bool)
    in_parts(lambda b: np.less_equal(y[b], 0, out=mask[b]), len(y), worth_splitting(y.size))
    out, arg_max = max_pool(y, pool, pool, pool)
    max_zero(out, out)
    passed = np.greater(out, 0)
    arg_max *= passed
    return ReluPool(out, mask, arg_max, passed)


def relu_pool_backward(
    dout: np.ndarray, passed: np.ndarray, arg_max: np.ndarray, y_shape: tuple[int, ...], pool: int,
    channels_last: bool = False,
) -> np.ndarray:
    """The ReLU's dx from the pooled output's gradient ``dout``, with ``relu_pool``'s
    ``passed`` and ``arg_max``: ``relu_grad(max_pool_backward(dout, arg_max, ...), mask)``,
    computed as ``max_pool_backward(dout·passed, arg_max, ...)`` (a window's max alone gets its
    gradient, and the ReLU lets it through exactly where that max is positive), laid out
    channels-last when ``channels_last`` (y's layout) as ``max_pool_backward`` does."""
    g = np.empty_like(passed, dtype=dout.dtype)  # passed's layout
    np.copyto(g, dout)  # copied, then multiplied: dout may come in NCHW order (after an Affine)
    g *= passed
    return max_pool_backward(g, arg_max, y_shape, pool, pool, pool, channels_last=channels_last)

"""Winograd's transforms for DeepConvNet's 3x3 convolutions, float32, BLAS on 1 thread: as
sums and differences of slices (the way before, copied below from kernels/winograd.py at
1add79c) against products with Bᵀ, Aᵀ and A (``kernels.winograd`` now), on one chunk of
images (as many as ``tuning.core_cache_bytes`` gives), and the whole forward of 50 images;
alone, and with a second Python thread making the same calls at once (as the parts of a
2-thread predict or of a "split" training step). us a call, the median of 101 calls.

    python benchmarks/results/2026-12-05-winograd-blas/transform_ways.py

Output: transform_ways-skylakex.txt.
"""

import sys
import threading
from functools import partial
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from layerwise.kernels import tuning, winograd
from layerwise.kernels.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds

REPS = 101


def side_by_side(fn) -> float:
    """Median seconds of REPS calls of ``fn`` while another thread makes the same calls."""
    stop = threading.Event()

    def other() -> None:
        while not stop.is_set():
            fn()

    helper = threading.Thread(target=other)
    helper.start()
    try:
        return median_seconds(fn, REPS, warmup=3)
    finally:
        stop.set()
        helper.join()


def old_winograd_conv(x, W, pad):
    """kernels.winograd.winograd_conv at 1add79c, with the transforms below."""
    N, C, H, Wd = x.shape
    FN = W.shape[0]
    OH, OW = H + 2 * pad - 2, Wd + 2 * pad - 2
    TH, TW = -(-OH // 2), -(-OW // 2)
    U = winograd.filter_transform(W)
    out = np.empty((N * OH * OW, FN), dtype=np.result_type(x, W))
    rows = OH * OW
    x_cl = x.transpose(0, 2, 3, 1)
    per = max(1, min(N, tuning.core_cache_bytes() // (16 * TH * TW * C * out.itemsize)))
    for start in range(0, N, per):
        images = slice(start, min(N, start + per))
        V = _input_transform(np.ascontiguousarray(x_cl[images]), pad, TH, TW)
        M = np.matmul(V, U)
        _output_transform(M, out[images.start * rows : images.stop * rows], TH, TW, OH, OW)
    return out


def _input_transform(x_cl: np.ndarray, pad: int, TH: int, TW: int) -> np.ndarray:
    """V = Bᵀ d B of every 4×4 tile d (stride 2) of the zero-padded channels-last images
    ``x_cl`` (n, H, W, C), as (16, n·TH·TW, C). Bᵀ is applied along the columns first and then
    along the rows, each as four sums or differences of whole slices: the padded image is
    first split into its even and odd columns (each pixel's C values moved as one np.void,
    one memcpy), so that every pass runs along whole rows instead of runs of C values."""
    n, H, Wd, C = x_cl.shape
    pixel = np.dtype((np.void, C * x_cl.itemsize))
    # split[p][:, q, k] = the padded image's pixel (row q, column 2k + p)
    split = np.zeros((2, n, 2 * TH + 2, TW + 1, C), dtype=x_cl.dtype)
    for parity in (0, 1):
        first = (parity - pad) % 2  # the first input column that lands on this parity
        count = len(range(first, Wd, 2))
        start = (first + pad) // 2
        np.copyto(split[parity, :, pad : pad + H, start : start + count].view(pixel)[..., 0],
                  x_cl.view(pixel)[:, :, first::2, 0])
    even, odd = split[0], split[1]
    c0, c1, c2, c3 = even[:, :, :TW], odd[:, :, :TW], even[:, :, 1:], odd[:, :, 1:]  # the tiles' columns
    across = np.empty((4, n, 2 * TH + 2, TW, C), dtype=x_cl.dtype)  # d B, for every row
    np.subtract(c0, c2, out=across[0])
    np.add(c1, c2, out=across[1])
    np.subtract(c2, c1, out=across[2])
    np.subtract(c1, c3, out=across[3])
    r0, r1, r2, r3 = (across[:, :, k : k + 2 * TH : 2] for k in range(4))  # the tiles' rows
    V = np.empty((4, 4, n, TH, TW, C), dtype=x_cl.dtype)  # Bᵀ d B
    np.subtract(r0, r2, out=V[0])
    np.add(r1, r2, out=V[1])
    np.subtract(r2, r1, out=V[2])
    np.subtract(r1, r3, out=V[3])
    return V.reshape(16, n * TH * TW, C)


def _output_transform(M: np.ndarray, out_rows: np.ndarray, TH: int, TW: int, OH: int, OW: int) -> None:
    """Y = Aᵀ M A of every tile's 4×4 products M (16, tiles, FN), each tile's 2×2 block of
    outputs written to its place in ``out_rows`` (n·OH·OW, FN); blocks that overhang an odd
    OH or OW are cropped."""
    FN = M.shape[2]
    n = M.shape[1] // (TH * TW)
    m = M.reshape(4, 4, -1)
    rows = np.empty((2, 4, m.shape[2]), dtype=M.dtype)  # Aᵀ M
    np.add(m[0], m[1], out=rows[0])
    rows[0] += m[2]
    np.subtract(m[1], m[2], out=rows[1])
    rows[1] -= m[3]
    Y = np.empty((2, 2, n, TH, TW, FN), dtype=M.dtype)  # Aᵀ M A, block position (a, b) first
    flat = Y.reshape(2, 2, -1)
    np.add(rows[:, 0], rows[:, 1], out=flat[:, 0])
    flat[:, 0] += rows[:, 2]
    np.subtract(rows[:, 1], rows[:, 2], out=flat[:, 1])
    flat[:, 1] -= rows[:, 3]
    pixel = np.dtype((np.void, FN * M.itemsize))  # one output position's FN values, moved whole
    blocks = Y.view(pixel)[..., 0].transpose(2, 3, 0, 4, 1)  # (n, TH, a, TW, b)
    if (OH, OW) == (2 * TH, 2 * TW):
        np.copyto(out_rows.reshape(n, TH, 2, TW, 2 * FN).view(pixel).reshape(n, TH, 2, TW, 2), blocks)
        return
    full = np.empty((n, TH, 2, TW, 2), dtype=pixel)
    np.copyto(full, blocks)
    np.copyto(out_rows.reshape(n, OH, OW, FN).view(pixel)[..., 0], full.reshape(n, 2 * TH, 2 * TW)[:, :OH, :OW])


keep_freed_memory()  # as predict and the Trainer do
rng = np.random.default_rng(0)
print("convolution (C -> FN, H x W, pad)  step                  before us   after us   after/before"
      "   | beside another thread: before us   after us   after/before")
with threadpool_limits(1):
    for C, FN, H, pad in ((16, 16, 28, 1), (16, 32, 14, 1), (32, 32, 14, 2), (32, 64, 8, 1), (64, 64, 8, 1)):
        x = rng.standard_normal((50, H, H, C)).astype(np.float32).transpose(0, 3, 1, 2)  # channels-last
        W = (rng.standard_normal((FN, C, 3, 3)) * 0.1).astype(np.float32)
        OH = H + 2 * pad - 2
        T = -(-OH // 2)
        n = max(1, tuning.core_cache_bytes() // (16 * T * T * C * 4))
        x_cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)[:n])
        M = rng.standard_normal((16, n * T * T, FN)).astype(np.float32)
        out = np.empty((n * OH * OH, FN), np.float32)
        np.testing.assert_allclose(winograd._input_transform(x_cl, pad, T, T), _input_transform(x_cl, pad, T, T),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(winograd.winograd_conv(x, W, pad), old_winograd_conv(x, W, pad),
                                   rtol=1e-4, atol=1e-4)
        steps = {
            f"input, {n} images": (partial(_input_transform, x_cl, pad, T, T),
                                   partial(winograd._input_transform, x_cl, pad, T, T)),
            f"output, {n} images": (partial(_output_transform, M, out, T, T, OH, OH),
                                    partial(winograd._output_transform, M, out, T, T, OH, OH)),
            "forward, 50 images": (partial(old_winograd_conv, x, W, pad), partial(winograd.winograd_conv, x, W, pad)),
        }
        for step, (before, after) in steps.items():
            b, a = median_seconds(before, REPS, warmup=3), median_seconds(after, REPS, warmup=3)
            bb, ab = side_by_side(before), side_by_side(after)
            print(f"{C:>2} -> {FN:<2} {H:>2}x{H:<2} pad {pad}              {step:20s} {b * 1e6:9.1f} {a * 1e6:9.1f}"
                  f"   {a / b:12.2f}   | {bb * 1e6:31.1f} {ab * 1e6:9.1f}   {ab / bb:12.2f}", flush=True)

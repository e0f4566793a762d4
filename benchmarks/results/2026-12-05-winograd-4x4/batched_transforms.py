"""Winograd's transforms as one product over the whole chunk (the way before 7715db9, kept
here) against t batched products of a t-th of it each (``kernels.winograd`` since): the
forward and the weight gradient of DeepConvNet's 3×3 convolutions by F(2×2, 3×3) and
F(4×4, 3×3), 100 images, float32, BLAS on 1 thread, ms (median of 9), and the largest
difference between the two ways' results. A first part times the bare product: Bᵀ (6×6)
times 6 × 47,040 floats (a chunk of conv2 by F(4×4)) at once, and as 6 products of 6 × 7,840.

    python benchmarks/results/2026-12-05-winograd-4x4/batched_transforms.py

Output: batched_transforms-skylakex.txt (OPENBLAS_CORETYPE=Haswell: batched_transforms-haswell.txt).
"""

import sys
from functools import partial
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from layerwise.kernels import winograd
from layerwise.kernels.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds

SHAPES = [("conv2", 16, 16, 28, 1), ("conv3", 16, 32, 14, 1), ("conv4", 32, 32, 14, 2),
          ("conv5", 32, 64, 8, 1), ("conv6", 64, 64, 8, 1)]


def one_product(B_t: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Bᵀ·D over the first axis and then over the second of D (t, t, Y), each one product over
    the whole of D, as the transforms did before."""
    t = B_t.shape[1]
    across = np.matmul(B_t, D.reshape(t, -1))  # (a, j·Y)
    return np.matmul(B_t, across.reshape(B_t.shape[0], t, -1))  # (a, b, Y)


def input_transform_before(x_cl: np.ndarray, pad: int, TH: int, TW: int, block: int = 2) -> np.ndarray:
    """``winograd._input_transform`` with one product a direction."""
    n, H, Wd, C = x_cl.shape
    t = block + 2
    padded = np.zeros((n, block * TH + 2, block * TW + 2, C), dtype=x_cl.dtype)
    padded[:, pad : pad + H, pad : pad + Wd] = x_cl
    pixel = np.dtype((np.void, C * x_cl.itemsize))
    pixels = padded.view(pixel)[..., 0]
    image, row, col = pixels.strides
    tiles = np.ndarray((t, t, n, TH, TW), pixel, pixels, 0, (row, col, image, block * row, block * col))
    D = np.empty(tiles.shape, dtype=pixel)
    np.copyto(D, tiles)
    V = one_product(winograd._matrix("B_T", x_cl.dtype, block), D.view(x_cl.dtype).reshape(t, t, -1))
    return V.reshape(t * t, n * TH * TW, C)


def output_transform_before(M: np.ndarray, out_rows: np.ndarray, TH: int, TW: int, OH: int, OW: int) -> None:
    """``winograd._output_transform`` with one product a direction."""
    t = round(M.shape[0] ** 0.5)
    n = M.shape[1] // (TH * TW)
    Y = one_product(winograd._matrix("A_T", M.dtype, t - 2), M.reshape(t, t, -1))
    winograd._write_blocks(Y.reshape(t - 2, t - 2, n, TH, TW, M.shape[2]), out_rows, OH, OW)


def adjoint_before(d_rows: np.ndarray, TH: int, TW: int, OH: int, OW: int, block: int = 2) -> np.ndarray:
    """``winograd._output_transform_adjoint`` with one product a direction."""
    blocks = winograd._read_blocks(d_rows, TH, TW, OH, OW, block)
    E = one_product(winograd._matrix("A", d_rows.dtype, block), blocks.reshape(block, block, -1))
    return E.reshape((block + 2) ** 2, -1, d_rows.shape[1])


def main() -> None:
    keep_freed_memory()
    rng = np.random.default_rng(0)
    B_t = winograd._matrix("B_T", np.float32, 4)
    D = rng.standard_normal((6, 6, 7840)).astype(np.float32)
    with threadpool_limits(1):
        whole = median_seconds(partial(np.matmul, B_t, D.reshape(6, -1)), 101, 5)
        batched = median_seconds(partial(np.matmul, B_t, D.transpose(1, 0, 2)), 101, 5)
    print(f"Bᵀ (6×6) times 6 × 47,040 floats: one product {whole * 1e6:.1f} us, 6 batched products "
          f"{batched * 1e6:.1f} us\n")
    print("100 images, float32, BLAS on 1 thread: ms (median of 9), one product a direction -> batched\n")
    print("| convolution | F(2×2) forward | weight gradient | F(4×4) forward | weight gradient | largest difference |")
    print("|---|--:|--:|--:|--:|--:|")
    after = (winograd._input_transform, winograd._output_transform, winograd._output_transform_adjoint)
    before = (input_transform_before, output_transform_before, adjoint_before)
    for what, C, FN, side, pad in SHAPES:
        x = rng.standard_normal((100, side, side, C)).astype(np.float32).transpose(0, 3, 1, 2)  # channels-last
        W = rng.standard_normal((FN, C, 3, 3)).astype(np.float32)
        OH = side + 2 * pad - 2
        d = rng.standard_normal((100 * OH * OH, FN)).astype(np.float32)
        cells, largest = [], 0.0
        for block in (2, 4):
            calls = (partial(winograd.winograd_conv, x, W, pad, "products", block),
                     partial(winograd.winograd_weight_grad, d, x, pad, "products", block))
            for call in calls:
                ms, results = [], []
                for transforms in (before, after):
                    (winograd._input_transform, winograd._output_transform,
                     winograd._output_transform_adjoint) = transforms
                    results.append(call())
                    with threadpool_limits(1):
                        ms.append(median_seconds(call, 9, 2) * 1e3)
                largest = max(largest, float(np.abs(results[1] - results[0]).max()))
                cells.append(f"{ms[0]:.2f} -> {ms[1]:.2f} ({ms[1] / ms[0]:.2f})")
        (winograd._input_transform, winograd._output_transform, winograd._output_transform_adjoint) = after
        print(f"| {what} C{C} FN{FN} {side}x{side} pad {pad} | " + " | ".join(cells) + f" | {largest:.1e} |")


if __name__ == "__main__":
    main()

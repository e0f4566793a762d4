"""Winograd's transforms as one product over the whole chunk (the way before 7715db9, kept
here as ``one_product``, put in place of ``kernels.winograd._both_sides``) against t batched
products of a t-th of it each (``_both_sides`` since): the
forward and the weight gradient of DeepConvNet's 3×3 convolutions by F(2×2, 3×3) and
F(4×4, 3×3), 100 images, float32, BLAS on 1 thread, ms (median of 21), and the largest
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


def one_product(P: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``winograd._both_sides`` as the transforms computed it before: P X Pᵀ over the first two
    axes of X (k, k, Y), each direction one product over the whole of X."""
    k = X.shape[0]
    across = np.matmul(P, X.reshape(k, -1))  # (a, j·Y)
    return np.matmul(P, across.reshape(P.shape[0], k, -1))  # (a, b, Y)


def main() -> None:
    keep_freed_memory()
    rng = np.random.default_rng(0)
    B_t = winograd._matrix("B_T", np.float32, 4)
    D = rng.standard_normal((6, 6, 7840)).astype(np.float32)
    with threadpool_limits(1):
        whole = median_seconds(partial(np.matmul, B_t, D.reshape(6, -1)), 101, 5)
        six = median_seconds(partial(np.matmul, B_t, D.transpose(1, 0, 2)), 101, 5)
    print(f"Bᵀ (6×6) times 6 × 47,040 floats: one product {whole * 1e6:.1f} us, 6 batched products "
          f"{six * 1e6:.1f} us\n")
    print("100 images, float32, BLAS on 1 thread: ms (median of 21), one product a direction -> batched\n")
    print("| convolution | F(2×2) forward | weight gradient | F(4×4) forward | weight gradient | largest difference |")
    print("|---|--:|--:|--:|--:|--:|")
    batched = winograd._both_sides
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
                for both_sides in (one_product, batched):
                    winograd._both_sides = both_sides
                    results.append(call())
                    with threadpool_limits(1):
                        ms.append(median_seconds(call, 21, 2) * 1e3)
                largest = max(largest, float(np.abs(results[1] - results[0]).max()))
                cells.append(f"{ms[0]:.2f} -> {ms[1]:.2f} ({ms[1] / ms[0]:.2f})")
        winograd._both_sides = batched
        print(f"| {what} C{C} FN{FN} {side}x{side} pad {pad} | " + " | ".join(cells) + f" | {largest:.1e} |")


if __name__ == "__main__":
    main()

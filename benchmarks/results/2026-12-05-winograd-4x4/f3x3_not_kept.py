"""Tried and not kept: Winograd's F(3×3, 3×3) for the layers whose 14 output rows leave
F(4×4)'s last tiles half cropped. ``kernels.winograd`` computes F(m×m, 3×3) for any m whose
matrices ``BLOCKS`` holds, so this script adds m = 3 (5×5 tiles, 15 outputs computed for 14)
from four interpolation points and ∞, built the way F(4×4)'s were (Aᵀ the points' powers, G
their powers over Π(p - q), Bᵀ solved so that the identity is exact), and times the forward
on 100 images, float32, BLAS on 1 thread (ms, median of 9), against F(2×2) and F(4×4), with
the float32 result's largest error over the largest exact value.

    python benchmarks/results/2026-12-05-winograd-4x4/f3x3_not_kept.py

Output: f3x3_not_kept-skylakex.txt.
"""

import sys
from functools import partial
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from layerwise.kernels import conv, winograd
from layerwise.kernels.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds

SHAPES = [("conv3", 16, 32, 14, 1), ("conv3 dx", 32, 16, 14, 1), ("conv4 dx", 32, 32, 16, 0), ("conv2", 16, 16, 28, 1)]
POINTS = [(0, 1, -1, 0.5), (0, 1, -1, 2), (0, 1, -1, -0.5)]


def matrices(points: tuple[float, ...], m: int, r: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Bᵀ, G, Aᵀ) of F(m, r) from the finite ``points`` (m + r - 2 of them) and ∞."""
    n = m + r - 1
    p = np.array(points, float)
    A_t, G = np.zeros((m, n)), np.zeros((n, r))
    for j, pj in enumerate(p):
        A_t[:, j] = pj ** np.arange(m)
        G[j] = pj ** np.arange(r) / np.prod([pj - q for q in p if q != pj])
    A_t[m - 1, n - 1] = G[n - 1, r - 1] = 1
    # Bᵀ from Σ_j Aᵀ[i, j] G[j, k] Bᵀ[j, l] = [l == i + k] for every output i, tap k, input l.
    rows, rhs = [], []
    for i in range(m):
        for k in range(r):
            for col in range(n):
                row = np.zeros((n, n))
                row[:, col] = A_t[i] * G[:, k]
                rows.append(row.ravel())
                rhs.append(float(col == i + k))
    B_t = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0].reshape(n, n)
    return B_t, G, A_t


def main() -> None:
    keep_freed_memory()
    print("100 images, float32, BLAS on 1 thread: forward ms (median of 9) and float32 error / max |exact|.\n")
    print("| points of F(3×3) | convolution | F(2×2) ms | F(3×3) ms | F(4×4) ms | F(3×3) / F(2×2) "
          "| error F(2×2) | F(3×3) | F(4×4) |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for points in POINTS:
        winograd.BLOCKS[3] = matrices(points, 3)
        winograd._matrices.cache_clear()
        winograd._kron_G.cache_clear()
        rng = np.random.default_rng(0)
        for what, C, FN, side, pad in SHAPES:
            x = rng.standard_normal((100, side, side, C)).transpose(0, 3, 1, 2)  # channels-last
            W = rng.standard_normal((FN, C, 3, 3)) / np.sqrt(9 * C)
            exact = conv.im2col_dot(x, W.transpose(0, 2, 3, 1).reshape(FN, -1).T, np.zeros(FN), 3, 3, 1, pad)
            x32, W32 = x.astype(np.float32), W.astype(np.float32)
            ms, error = {}, {}
            for block in (2, 3, 4):
                forward = partial(winograd.winograd_conv, x32, W32, pad, "products", block)
                error[block] = np.abs(forward() - exact).max() / np.abs(exact).max()
                with threadpool_limits(1):
                    ms[block] = median_seconds(forward, 9, warmup=2) * 1e3
            print(f"| {', '.join(map(str, points))} | {what} C{C} FN{FN} {side}x{side} pad {pad} | {ms[2]:.2f} | "
                  f"{ms[3]:.2f} | {ms[4]:.2f} | {ms[3] / ms[2]:.2f} | {error[2]:.1e} | {error[3]:.1e} "
                  f"| {error[4]:.1e} |")


if __name__ == "__main__":
    main()

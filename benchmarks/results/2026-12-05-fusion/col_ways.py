"""Three ways to make SimpleConvNet's col (50 images, 5×5 filters, one channel) in the row
order the fused run needs (``kernels.fused.pooled_order_col``: rows (i, j, n, ph, pw) for
pooling position (i, j) of 2×2 windows, a column of ones), and ``kernels.conv.im2col`` in the
layers' order for comparison; ms, median of 15 rounds of 20 calls, 1 thread:

- shifted grids (kept): Q[A, B] = img[:, A::2, B::2] for A, B in range(6), then all of col as
  one strided view of Q, copied at once;
- polyphase parts: img[:, a::2, b::2] for a, b in {0, 1}, then 100 copies (25 offsets x 4
  pooling positions) of 12-value runs;
- one strided view of the image itself, copied at once (runs of one value, stride 2).

    python benchmarks/results/2026-12-05-fusion/col_ways.py

Output: col_ways-skylakex.txt.
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from layerwise.kernels import fused
from layerwise.kernels.conv import im2col

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.worker import _blas

N, F, PH = 50, 5, 12


def polyphase(img: np.ndarray) -> np.ndarray:
    phases = np.empty((2, 2, N, 14, 14), dtype=img.dtype)
    for a in range(2):
        for b in range(2):
            phases[a, b] = img[:, a::2, b::2]
    col_t = np.empty((F * F + 1, 2, 2, N, PH, PH), dtype=img.dtype)
    col_t[F * F] = 1
    for fh in range(F):
        for i in range(2):
            for fw in range(F):
                for j in range(2):
                    row, column = fh + i, fw + j
                    top, left = row // 2, column // 2
                    source = phases[row % 2, column % 2]
                    np.copyto(col_t[fh * F + fw, i, j], source[:, top : top + PH, left : left + PH])
    return col_t.reshape(F * F + 1, -1).T


def one_view(img: np.ndarray) -> np.ndarray:
    s_n, s_h, s_w = img.strides
    col_t = np.empty((F * F + 1, 2, 2, N, PH, PH), dtype=img.dtype)
    col_t[F * F] = 1
    view = np.lib.stride_tricks.as_strided(img, (F, F, 2, 2, N, PH, PH), (s_h, s_w, s_h, s_w, s_n, 2 * s_h, 2 * s_w))
    np.copyto(col_t[: F * F].reshape(F, F, 2, 2, N, PH, PH), view)
    return col_t.reshape(F * F + 1, -1).T


def main() -> None:
    x = np.random.default_rng(0).random((N, 1, 28, 28), dtype=np.float32)
    img = x[:, 0]
    kept = fused.pooled_order_col(x, F, F, 1, 0, 2)
    assert np.array_equal(kept, polyphase(img)) and np.array_equal(kept, one_view(img))
    ways = {
        "shifted grids (kept)": lambda: fused.pooled_order_col(x, F, F, 1, 0, 2),
        "polyphase parts, 100 copies": lambda: polyphase(img),
        "one strided view of the image": lambda: one_view(img),
        "kernels.conv.im2col (the layers' order)": lambda: im2col(x, F, F),
    }
    spent: dict[str, list[float]] = {way: [] for way in ways}
    with threadpool_limits(1, user_api="blas"):
        for way in ways.values():
            way()
        for _ in range(15):
            for way, run in ways.items():
                start = time.perf_counter()
                for _ in range(20):
                    run()
                spent[way].append((time.perf_counter() - start) / 20)
    print(f"SimpleConvNet's col for {N} images, float32, OpenBLAS {_blas().get('architecture')} kernels")
    print("| way | ms |")
    print("|---|---|")
    for way, times in spent.items():
        print(f"| {way} | {statistics.median(times) * 1e3:.3f} |")


if __name__ == "__main__":
    main()

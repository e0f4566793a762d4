"""DeepConvNet's forward products as layerwise makes them, col·W (rows of col times the
filters), against the transposed product Wᵀ·colᵀ, 1 thread, float32, median of 500 calls, in
GFLOP/s; the large-GEMM peak is in the runner's header (103 on the Zen 4 VM).

    python benchmarks/results/2026-12-05-zen4/product_layouts.py

Output: product_layouts-skylakex.txt.
"""

import sys
from pathlib import Path

import numpy as np

import layerwise as lw

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds

lw.set_num_threads(1)

rng = np.random.default_rng(0)
for M, K, N in [(7056, 144, 16), (7056, 144, 32), (4900, 288, 32), (5000, 288, 64), (3200, 576, 64)]:
    col, w = rng.random((M, K), dtype=np.float32), rng.random((K, N), dtype=np.float32)
    out, out_t, w_t = np.empty((M, N), np.float32), np.empty((N, M), np.float32), np.ascontiguousarray(w.T)
    gflop = 2 * M * K * N / 1e9
    rows = gflop / median_seconds(lambda: np.dot(col, w, out=out), 500, warmup=20)  # noqa: B023 (timed at once)
    transposed = gflop / median_seconds(lambda: np.dot(w_t, col.T, out=out_t), 500, warmup=20)  # noqa: B023
    print(f"({M}x{K})·({K}x{N}): col·W {rows:.0f} GFLOP/s, Wᵀ·colᵀ {transposed:.0f} GFLOP/s")

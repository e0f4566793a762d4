"""DeepConvNet's forward products as layerwise makes them, col·W (rows of col times the
filters), against the transposed product Wᵀ·colᵀ, 1 thread, float32, best of 5 x 200 calls, in
GFLOP/s; the large-GEMM peak is in the runner's header (103 on the Zen 4 VM).

    python benchmarks/results/2026-12-05-zen4/product_layouts.py

Output: product_layouts-skylakex.txt.
"""

import time

import numpy as np

import layerwise as lw

lw.set_num_threads(1)


def best(f, n: int = 200) -> float:
    f()
    fastest = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            f()
        fastest = min(fastest, (time.perf_counter() - start) / n)
    return fastest


rng = np.random.default_rng(0)
for M, K, N in [(7056, 144, 16), (7056, 144, 32), (4900, 288, 32), (5000, 288, 64), (3200, 576, 64)]:
    col, w = rng.random((M, K), dtype=np.float32), rng.random((K, N), dtype=np.float32)
    out, out_t, w_t = np.empty((M, N), np.float32), np.empty((N, M), np.float32), np.ascontiguousarray(w.T)
    gflop = 2 * M * K * N / 1e9
    rows = gflop / best(lambda: np.dot(col, w, out=out))  # noqa: B023 (timed at once)
    transposed = gflop / best(lambda: np.dot(w_t, col.T, out=out_t))  # noqa: B023
    print(f"({M}x{K})·({K}x{N}): col·W {rows:.0f} GFLOP/s, Wᵀ·colᵀ {transposed:.0f} GFLOP/s")

"""GFLOP/s of the products DeepConvNet's convolutions make, by shape, on one thread: col·W
(the forward, and dx by correlation) and colᵀ·d (dW), with K = FH·FW·C columns and FN
filters, for chunks of M rows already in cache (a chunk of 1-18 images); a large square
product for the peak. Median of 40 calls.

    env -u OPENBLAS_CORETYPE python benchmarks/results/2026-12-05-relu-chunks/narrow_products.py

Output: narrow_products-skylakex.txt (and -haswell with the shell's OPENBLAS_CORETYPE=Haswell).
"""

import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds

rng = np.random.default_rng(0)
with threadpool_limits(1):
    square = rng.standard_normal((2048, 2048), dtype=np.float32)
    print(f"2048² · 2048²: {2 * 2048**3 / median_seconds(lambda: square @ square, 10) / 1e9:.0f} GFLOP/s")
    print("K, FN: GFLOP/s of col·W / colᵀ·d at M rows")
    for K, FN in [(144, 16), (144, 32), (288, 32), (288, 64), (576, 64)]:
        W = rng.standard_normal((K, FN), dtype=np.float32)
        cells = []
        for M in (784, 1568, 3136, 7056):
            col = rng.standard_normal((M, K), dtype=np.float32)
            out = np.empty((M, FN), np.float32)
            col_t = np.ascontiguousarray(col.T)
            forward = median_seconds(lambda col=col, out=out, W=W: np.dot(col, W, out=out), 40, warmup=3)
            weight_grad = median_seconds(lambda col_t=col_t, out=out: np.dot(col_t, out), 40, warmup=3)
            flops = 2 * M * K * FN
            cells.append(f"M {M}: {flops / forward / 1e9:.0f} / {flops / weight_grad / 1e9:.0f}")
        print(f"K {K:3d}, FN {FN:2d}: " + ", ".join(cells))

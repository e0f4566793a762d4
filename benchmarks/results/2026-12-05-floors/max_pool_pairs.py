"""Max pooling 2x2/2 of channels-last activations: ``kernels.pool.max_pool`` (the four offset
views, runs of C values) against the same max and arg_max taken column pair then row pair
(the row pass in long runs), 1 thread, batch 100, float32, best of 5 x 30 calls.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/results/2026-12-05-floors/max_pool_pairs.py

Output: max_pool_pairs-skylakex.txt.
"""

import time

import numpy as np

from layerwise.kernels.pool import max_pool


def best_ms(f, n=30):
    f()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            f()
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e3


def by_pairs(x):
    """Columns first (the first max in row-major window order on ties), then rows."""
    N, C, H, W = x.shape
    OH, OW = H // 2, W // 2
    pairs = x.transpose(0, 2, 3, 1).reshape(N, H, OW, 2 * C)  # each column pair as one row of 2C
    left, right = pairs[..., :C], pairs[..., C:]
    col_max = np.maximum(left, right)
    col_arg = np.greater(right, left).view(np.uint8)
    rows = col_max.reshape(N, OH, 2 * OW * C)
    top, bottom = rows[:, :, : OW * C], rows[:, :, OW * C :]
    out = np.maximum(top, bottom)
    row_arg = np.greater(bottom, top).view(np.uint8)
    arg_rows = col_arg.reshape(N, OH, 2 * OW * C)
    arg = np.where(row_arg.view(bool), arg_rows[:, :, OW * C :], arg_rows[:, :, : OW * C])
    arg += 2 * row_arg
    return out.reshape(N, OH, OW, C).transpose(0, 3, 1, 2), arg.reshape(N, OH, OW, C).transpose(0, 3, 1, 2)


rng = np.random.default_rng(0)
for C, H in [(16, 28), (32, 14), (64, 8)]:
    x = rng.standard_normal((100, H, H, C), dtype=np.float32).round(1).transpose(0, 3, 1, 2)  # ties too
    out, arg = max_pool(x, 2, 2, 2)
    out2, arg2 = by_pairs(x)
    assert np.array_equal(out, out2) and np.array_equal(arg, arg2)
    print(f"C {C}, {H}x{H}: max_pool {best_ms(lambda x=x: max_pool(x, 2, 2, 2)):.3f} ms, "
          f"by pairs {best_ms(lambda x=x: by_pairs(x)):.3f} ms")

"""F(4×4, 3×3)'s chunk size: DeepConvNet's conv2, conv4, conv5 and conv6 on 100 images,
float32, BLAS on 1 thread, with ``tuning.core_cache_bytes`` (the budget a chunk's transformed
tiles V fill) at a quarter, half, once and twice the core's cache. ms, forward / weight
gradient, median of 9.

    python benchmarks/results/2026-12-05-winograd-4x4/f4x4_chunks.py

Output: f4x4_chunks-skylakex.txt (OPENBLAS_CORETYPE=Haswell: f4x4_chunks-haswell.txt).
"""

import sys
from functools import partial
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from layerwise.kernels import tuning, winograd
from layerwise.kernels.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds

SHAPES = [("conv2", 16, 16, 28, 1), ("conv4", 32, 32, 14, 2), ("conv5", 32, 64, 8, 1), ("conv6", 64, 64, 8, 1)]
FRACTIONS = (0.25, 0.5, 1, 2)


def main() -> None:
    keep_freed_memory()
    rng = np.random.default_rng(0)
    cache = tuning.core_cache_bytes()
    print(f"core cache {cache} bytes; ms forward / weight gradient, 100 images, 1 thread\n")
    print("| convolution | " + " | ".join(f"{f}× cache" for f in FRACTIONS) + " |")
    print("|---|" + "--:|" * len(FRACTIONS))
    for what, C, FN, side, pad in SHAPES:
        x = rng.standard_normal((100, side, side, C)).astype(np.float32).transpose(0, 3, 1, 2)
        W = rng.standard_normal((FN, C, 3, 3)).astype(np.float32)
        OH = side + 2 * pad - 2
        d = rng.standard_normal((100 * OH * OH, FN)).astype(np.float32)
        cells = []
        for fraction in FRACTIONS:
            tuning.core_cache_bytes = partial(int, cache * fraction)
            with threadpool_limits(1):
                forward = median_seconds(partial(winograd.winograd_conv, x, W, pad, "products", 4), 9, 2)
                weight_grad = median_seconds(partial(winograd.winograd_weight_grad, d, x, pad, "products", 4), 9, 2)
            cells.append(f"{forward * 1e3:.2f} / {weight_grad * 1e3:.2f}")
        print(f"| {what} C{C} FN{FN} {side}x{side} pad {pad} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

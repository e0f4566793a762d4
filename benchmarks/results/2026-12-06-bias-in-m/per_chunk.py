"""What a Winograd forward spends besides its transforms and products, per call, for the five
layers of DeepConvNet it computes (F(4×4, 3×3), 50 images, float32, 1 thread): the bias added to
the output rows (before 2026-12-06) against added to the products M at the tile's position
(1, 1), and the filters' transform made anew against found kept (``kept_filter_transform``).

    python benchmarks/results/2026-12-06-bias-in-m/per_chunk.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from layerwise.kernels import conv, winograd
from layerwise.kernels.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.timing import median_seconds

#: DeepConvNet's Winograd layers: (C, FN, H, pad).
LAYERS = [(16, 16, 28, 1), (16, 32, 14, 1), (32, 32, 14, 2), (32, 64, 8, 1), (64, 64, 8, 1)]
IMAGES, BLOCK, REPS = 50, 4, 200


def main() -> None:
    keep_freed_memory()
    rng = np.random.default_rng(0)
    print(f"us a call, {IMAGES} images, F({BLOCK}x{BLOCK}), float32, OpenBLAS threads "
          f"{os.environ['OPENBLAS_NUM_THREADS']}")
    print()
    print("| layer | bias on the output rows | bias on M's position (1, 1) | filter transform made | found kept |")
    print("|---|--:|--:|--:|--:|")
    totals = np.zeros(4)
    for C, FN, H, pad in LAYERS:
        OH = H + 2 * pad - 2
        tiles = IMAGES * (-(-OH // BLOCK)) ** 2
        rows = np.zeros((IMAGES * OH * OH, FN), np.float32)
        M = np.zeros(((BLOCK + 2) ** 2, tiles, FN), np.float32)
        b = rng.standard_normal(FN).astype(np.float32)
        W = rng.standard_normal((FN, C, 3, 3)).astype(np.float32)
        t = 2 + BLOCK  # the transformed tile's side: position (1, 1) is row t + 1 of M

        def on_m(M=M, b=b, t=t):
            M[t + 1] += b

        winograd.kept_filter_transform(W, BLOCK)
        us = np.array([
            median_seconds(lambda rows=rows, b=b: conv.add_to_rows(rows, b), REPS),
            median_seconds(on_m, REPS),
            median_seconds(lambda W=W: winograd.filter_transform(W, BLOCK), REPS),
            median_seconds(lambda W=W: winograd.kept_filter_transform(W, BLOCK), REPS),
        ]) * 1e6
        totals += us
        print(f"| C{C}->{FN} {H}x{H} pad {pad} | " + " | ".join(f"{v:.1f}" for v in us) + " |")
    print("| all five | " + " | ".join(f"{v:.0f}" for v in totals) + " |")


if __name__ == "__main__":
    main()

"""The Winograd weight gradient of DeepConvNet's five 3×3 layers on 100 images, 1 thread, F(4×4):
its input tiles V transformed again (as before) against V kept from the forward, and kept but
evicted from the caches first (64 MiB written between the forward and the gradient, as the
other layers' work of a training step does). ms, median of 11 alternating rounds.

    python benchmarks/results/2026-12-06-kept-tiles/kept_tiles.py
    OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512 python benchmarks/results/2026-12-06-kept-tiles/kept_tiles.py

Output: kept_tiles-skylakex.txt, kept_tiles-haswell.txt.
"""

import functools
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from layerwise.kernels import winograd
from layerwise.kernels.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.worker import _blas

#: DeepConvNet's Winograd layers: (C, FN, H, pad).
LAYERS = [(16, 16, 28, 1), (16, 32, 14, 1), (32, 32, 14, 2), (32, 64, 8, 1), (64, 64, 8, 1)]
BLOCK = 4


def main() -> None:
    keep_freed_memory()  # as the Trainer runs
    rng = np.random.default_rng(0)
    other_work = np.zeros(64 * 2**20 // 4, np.float32)
    print(f"OpenBLAS {_blas()}; F({BLOCK}x{BLOCK}, 3x3), 100 images, 1 thread; ms, median of 11 alternating rounds")
    print()
    print("| layer | V kept, MiB | V made again | V kept | kept / again | V kept, evicted first | evicted / again |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    total_saved = 0.0
    with threadpool_limits(1, user_api="blas"):
        for C, FN, H, pad in LAYERS:
            x = rng.standard_normal((100, H, H, C), dtype=np.float32).transpose(0, 3, 1, 2)
            W = rng.standard_normal((FN, C, 3, 3), dtype=np.float32)
            OH = H + 2 * pad - 2
            d = rng.standard_normal((100 * OH * OH, FN), dtype=np.float32)
            kept: dict = {}
            winograd.winograd_conv(x, W, pad, "products", BLOCK, keep=kept)
            grad = functools.partial(winograd.winograd_weight_grad, d, x, pad, "products", BLOCK)
            ways = {"again": grad, "kept": functools.partial(grad, kept=kept),
                    "evicted": functools.partial(grad, kept=kept)}
            times: dict[str, list[float]] = {way: [] for way in ways}
            for _ in range(12):  # the first round warms up
                for way, run in ways.items():
                    if way == "evicted":
                        other_work += 1.0
                    start = time.perf_counter()
                    run()
                    times[way].append(time.perf_counter() - start)
            again, kept_s, evicted = (statistics.median(times[way][1:]) * 1e3 for way in ways)
            total_saved += again - evicted
            mib = sum(V.nbytes for V in kept.values()) / 2**20
            print(f"| C{C}->{FN} {H}x{H} pad {pad} | {mib:.1f} | {again:.2f} | {kept_s:.2f} | {kept_s / again:.2f} | "
                  f"{evicted:.2f} | {evicted / again:.2f} |")
    print()
    print(f"Saved a training step, V evicted first: {total_saved:.1f} ms")


if __name__ == "__main__":
    main()

"""DeepConvNet's three ReLU + 2×2 max pooling pairs, training forward and backward on 100
images, 1 thread: as the layers' kernels one after another (``relu``, ``max_pool``,
``max_pool_backward``, ``relu_grad``) against ``kernels.fused.relu_pool`` and
``relu_pool_backward``. ms, median of 15 alternating rounds.

    python benchmarks/results/2026-12-06-kept-tiles/relu_pool.py
    OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512 python benchmarks/results/2026-12-06-kept-tiles/relu_pool.py

Output: relu_pool-skylakex.txt, relu_pool-haswell.txt.
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from layerwise.kernels import fused
from layerwise.kernels.activations import relu, relu_grad
from layerwise.kernels.memory import keep_freed_memory
from layerwise.kernels.pool import max_pool, max_pool_backward

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.worker import _blas

#: The convolution outputs DeepConvNet pools: (channels, side).
OUTPUTS = [(16, 28), (32, 16), (64, 8)]


def main() -> None:
    keep_freed_memory()  # as the Trainer runs
    rng = np.random.default_rng(0)
    print(f"OpenBLAS {_blas()}; 100 images, 1 thread; ms, median of 15 alternating rounds")
    print()
    print("| convolution output | layers | together | together / layers |")
    print("|---|--:|--:|--:|")
    saved = 0.0
    with threadpool_limits(1, user_api="blas"):
        for C, H in OUTPUTS:
            y = rng.standard_normal((100, H, H, C), dtype=np.float32).transpose(0, 3, 1, 2)  # channels-last
            dout = rng.standard_normal((100, H // 2, H // 2, C), dtype=np.float32).transpose(0, 3, 1, 2)

            def layers(y=y, dout=dout) -> np.ndarray:
                h, mask = relu(y)
                _, arg_max = max_pool(h, 2, 2, 2)
                return relu_grad(max_pool_backward(dout, arg_max, y.shape, 2, 2, 2, channels_last=True), mask)

            def together(y=y, dout=dout) -> np.ndarray:
                made = fused.relu_pool(y, 2)
                return fused.relu_pool_backward(dout, made.passed, made.arg_max, y.shape, 2, True)

            np.testing.assert_array_equal(together(), layers())
            times: dict[str, list[float]] = {"layers": [], "together": []}
            for _ in range(16):  # the first round warms up
                for way, run in (("layers", layers), ("together", together)):
                    start = time.perf_counter()
                    run()
                    times[way].append(time.perf_counter() - start)
            a, b = (statistics.median(times[way][1:]) * 1e3 for way in ("layers", "together"))
            saved += a - b
            print(f"| C{C} {H}x{H} | {a:.2f} | {b:.2f} | {b / a:.2f} |")
    print()
    print(f"Saved a training step: {saved:.2f} ms")


if __name__ == "__main__":
    main()

"""Does NumPy's BLAS give the same bits on 1 and on 2 threads? Products of layerwise's shapes.

    python benchmarks/results/2026-12-04-under-load/blas_threads_bits.py
    OPENBLAS_CORETYPE=Haswell python benchmarks/results/2026-12-04-under-load/blas_threads_bits.py

16 shapes x float32/float64 x 3 memory layouts; prints the products whose results differ.
"""

import numpy as np
from threadpoolctl import threadpool_limits

SHAPES = [(100, 784, 50), (100, 50, 10), (128, 784, 512), (128, 512, 512), (128, 512, 10), (784, 100, 50),
          (50, 100, 10), (512, 128, 512), (100, 10, 50), (100, 50, 784), (128, 512, 784), (5760, 75, 30),
          (30, 5760, 25), (1000, 784, 50), (1, 784, 50), (57600, 25, 30)]


def main() -> None:
    rng = np.random.default_rng(0)
    differ = total = 0
    for dtype in (np.float32, np.float64):
        for m, k, n in SHAPES:
            a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
            for x, y in ((a, b), (np.ascontiguousarray(a.T).T, b), (a, np.asfortranarray(b))):
                with threadpool_limits(1):
                    one = x @ y
                with threadpool_limits(2):
                    two = x @ y
                total += 1
                if not np.array_equal(one, two):
                    differ += 1
                    print(f"differs: {np.dtype(dtype).name} ({m} x {k}) @ ({k} x {n})")
    print(f"{differ} of {total} products differ between 1 and 2 BLAS threads")


if __name__ == "__main__":
    main()

"""The finiteness check of evaluation-mode predict on batches of 784 float32 pixels:
NumPy's sum of everything (the check before), ``np.isfinite(x).all()``, the samples' sums as
a BLAS product with a vector of ones (fastest, but it wakes OpenBLAS's threads: see
``kernels.inference.all_finite``), and the sum over the first axis, then of that row
(``all_finite``). Median of repeated calls; BLAS threads as the shell sets them.

    python benchmarks/results/2026-12-05-relu-chunks/all_finite_ways.py

Output: all_finite_ways.txt.
"""

import sys
from pathlib import Path

import numpy as np

from layerwise.kernels.inference import all_finite

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds

for rows in (1, 100, 1000, 10000):
    x = np.random.default_rng(0).random((rows, 784), dtype=np.float32)
    reps = max(21, 20000 // rows)

    def us(fn, reps=reps) -> str:
        return f"{median_seconds(fn, reps, warmup=5) * 1e6:8.1f} us"

    plain = us(lambda x=x: np.add.reduce(x, axis=None))
    flags = us(lambda x=x: np.isfinite(x).all())
    blas = us(lambda x=x: np.add.reduce(np.dot(x, np.ones(784, np.float32))))
    ours = us(lambda x=x: all_finite(x))
    print(f"({rows:5d}, 784): np.add.reduce {plain}, np.isfinite(x).all() {flags}, BLAS row sums {blas}, "
          f"all_finite {ours}")

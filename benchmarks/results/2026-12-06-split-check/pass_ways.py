"""The pass ``kernels.split_sizes`` times to decide when a pass is split across 2 owned
threads: ``np.maximum(x, 0)`` with its scalar (NumPy 2.4's loop for it is not vectorised, see
``kernels.activations``), as before, against ``max_zero`` (the row of zeros), the loop
layerwise's ReLU runs. us whole / split at each size (the best of 3 medians, as the module
measures), the size each way finds, and BLAS's speed-up on 2 threads before and after.

    python benchmarks/results/2026-12-06-split-check/pass_ways.py

Output: pass_ways-skylakex.txt.
"""

import sys
from pathlib import Path

import numpy as np

from layerwise.kernels import measuring, split_sizes, threads
from layerwise.kernels.activations import max_zero

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.worker import _blas


def main() -> None:
    rng = np.random.default_rng(0)

    def scalar(n: int):
        x = rng.standard_normal(n).astype(np.float32)
        out = np.empty_like(x)
        return (lambda: np.maximum(x, 0, out=out),
                lambda: threads.in_parts(lambda b: np.maximum(x[b], 0, out=out[b]), n))

    def zero_row(n: int):
        x = rng.standard_normal(n).astype(np.float32)
        out = np.empty_like(x)
        return lambda: max_zero(x, out), lambda: threads.in_parts(lambda b: max_zero(x[b], out[b]), n)

    print(f"float32 pass, 2 owned threads, OpenBLAS {_blas().get('architecture')}")
    print(f"BLAS on 2 threads before: {measuring.blas_speedup(2):.2f}x one thread\n")
    print("| values | np.maximum(x, 0): whole / split us | max_zero: whole / split us |")
    print("|--:|--:|--:|")
    with threads.owned_threads():
        found = {}
        results = {}
        for name, make in (("scalar", scalar), ("zero row", zero_row)):
            whole, split = split_sizes._compare(split_sizes._PASS_SIZES, make, lambda n: n)
            results[name] = (whole, split)
            found[name] = split_sizes.smallest_that_pays(whole, split)
    for n in split_sizes._PASS_SIZES:
        cells = [f"{results[k][0][n] * 1e6:.1f} / {results[k][1][n] * 1e6:.1f}" for k in ("scalar", "zero row")]
        print(f"| {n:,} | {cells[0]} | {cells[1]} |")
    never = split_sizes.NEVER
    print("\nsplit from: " + ", ".join(f"{k} {'never' if v == never else f'{v:,}'}" for k, v in found.items()))
    print(f"BLAS on 2 threads after: {measuring.blas_speedup(2):.2f}x one thread")


if __name__ == "__main__":
    main()

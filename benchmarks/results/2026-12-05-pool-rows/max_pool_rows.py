"""Max pooling 2x2/2 of channels-last activations (the book networks' poolings), the strided
offset views (``tiled_fast_path=False``) against the dense rows copied first (the default),
forward with and without arg_max, 1 thread, batch 100, float32, the best of 3 rounds of the
median of 30 calls, alternating the two ways round by round.

    python benchmarks/results/2026-12-05-pool-rows/max_pool_rows.py

Output: max_pool_rows-skylakex.txt.
"""

import sys
from pathlib import Path

import numpy as np

import layerwise as lw
from layerwise.kernels.pool import max_pool

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds

lw.set_num_threads(1)
rng = np.random.default_rng(0)
print("shape (N, C, H, W)   arg_max   strided views ms   dense rows ms   ratio")
for shape in ((100, 30, 24, 24), (100, 16, 28, 28), (100, 32, 16, 16), (100, 64, 8, 8)):
    N, C, H, W = shape
    x = rng.standard_normal((N, H, W, C)).astype(np.float32).transpose(0, 3, 1, 2)  # as after a conv
    for with_arg_max in (True, False):
        ms = {True: [], False: []}
        for _ in range(3):
            for tiled in (False, True):
                def call(x=x, with_arg_max=with_arg_max, tiled=tiled) -> None:
                    max_pool(x, 2, 2, 2, with_arg_max=with_arg_max, tiled_fast_path=tiled)

                seconds = median_seconds(call, 30)
                ms[tiled].append(seconds * 1e3)
        strided, dense = min(ms[False]), min(ms[True])
        print(f"{shape!s:20} {with_arg_max!s:7}   {strided:16.3f}   {dense:13.3f}   {strided / dense:5.2f}")

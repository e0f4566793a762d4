"""DeepConvNet's 3x3 convolutions at batch 100, float32, 1 thread: the forward by im2col
(``kernels.conv.im2col_dot``) against Winograd F(2x2, 3x3) (``kernels.winograd``), in the
chunks each takes by default, the best of 3 rounds of the median of 10 calls, the ways
alternating round by round. The last three rows are the
input gradients by correlation that Winograd computes too (dout convolved with the turned
filters).

    python benchmarks/results/2026-12-05-winograd/winograd_ways.py

Output: winograd_ways-skylakex.txt.
"""

import sys
from pathlib import Path

import numpy as np

import layerwise as lw
from layerwise.kernels import winograd
from layerwise.kernels.conv import im2col_dot

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds

lw.set_num_threads(1)
rng = np.random.default_rng(0)
print("convolution (C -> FN, H x W, pad)   im2col ms   Winograd ms   im2col/Winograd")
for C, FN, H, pad in ((16, 16, 28, 1), (16, 32, 14, 1), (32, 32, 14, 2), (32, 64, 8, 1), (64, 64, 8, 1),
                      (32, 32, 16, 0), (64, 32, 8, 1), (32, 16, 14, 1)):
    x = rng.standard_normal((100, H, H, C)).astype(np.float32).transpose(0, 3, 1, 2)  # channels-last
    W = (rng.standard_normal((FN, C, 3, 3)) * 0.1).astype(np.float32)
    col_W = W.transpose(0, 2, 3, 1).reshape(FN, -1).T
    b = np.zeros(FN, np.float32)

    def by_im2col(x=x, col_W=col_W, b=b, pad=pad) -> None:
        im2col_dot(x, col_W, b, 3, 3, 1, pad)

    def by_winograd(x=x, W=W, pad=pad) -> None:
        winograd.winograd_conv(x, W, pad)

    ms = {"im2col": [], "winograd": []}
    for _ in range(3):
        for name, run in (("im2col", by_im2col), ("winograd", by_winograd)):
            ms[name].append(median_seconds(run, 10) * 1e3)
    a, w = min(ms["im2col"]), min(ms["winograd"])
    print(f"{C:>3} -> {FN:<3} {H:>2}x{H:<2} pad {pad}              {a:9.2f}   {w:11.2f}   {a / w:15.2f}")

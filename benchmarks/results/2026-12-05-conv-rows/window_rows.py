"""im2col of one chunk of DeepConvNet's convolutions: the window view copied value by value (as
before 2026-12-05, later) against ``kernels.conv.im2col``, which copies each window row (FW
pixels' channels, contiguous in the channels-last input) as one ``np.void`` value.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/results/2026-12-05-conv-rows/window_rows.py

Median of 55 calls, 1 thread (a copy: no BLAS). Output: window_rows.txt.
"""

import sys
from pathlib import Path

import numpy as np

from layerwise.kernels.conv import im2col

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds


def med(f):
    """Milliseconds a call takes: the median of 55 after 5 warm-up calls."""
    return median_seconds(f, reps=55, warmup=5) * 1e3


def im2col_by_values(x, FH, FW, pad):
    """The previous way: a (N, OH, OW, FH, FW, C) float view of the padded channels-last copy."""
    N, C, H, W = x.shape
    img = np.zeros((N, H + 2 * pad, W + 2 * pad, C), dtype=x.dtype)
    img[:, pad : pad + H, pad : pad + W, :] = x.transpose(0, 2, 3, 1)
    OH, OW = H + 2 * pad - FH + 1, W + 2 * pad - FW + 1
    n, h, w, c = img.strides
    windows = np.ndarray((N, OH, OW, FH, FW, C), img.dtype, img, 0, (n, h, w, h, w, c))
    col = np.empty(windows.shape, dtype=x.dtype)
    np.copyto(col, windows)
    return col.reshape(N * OH * OW, FH * FW * C)


def measure(C, H, n, rng):
    x = rng.standard_normal((n, H, H, C), dtype=np.float32).transpose(0, 3, 1, 2)  # channels-last, as after ReLU
    assert np.array_equal(im2col(x, 3, 3, 1, 1), im2col_by_values(x, 3, 3, 1))
    old, new = med(lambda: im2col_by_values(x, 3, 3, 1)), med(lambda: im2col(x, 3, 3, 1, 1))
    print(f"C{C} {H}x{H} n{n}: {old:.3f} / {new:.3f}  ({new / old:.2f})")


rng = np.random.default_rng(0)
print("channels, size, images (a chunk of DeepConvNet's layer): by values / as window rows, ms")
for C, H, n in [(16, 28, 9), (32, 14, 18), (64, 7, 37), (16, 14, 37), (32, 7, 74)]:
    measure(C, H, n, rng)

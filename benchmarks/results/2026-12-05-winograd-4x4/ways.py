"""DeepConvNet's 3x3 convolutions by each way ``kernels.conv`` can take: im2col, Winograd's
F(2×2, 3×3) with its transforms as products and as sums, and F(4×4, 3×3) with products. For
each, the time of the forward and of the weight gradient on 100 images (float32, BLAS on 1
thread, ms, the median of 9 calls), and how far the float32 result is from the exact sums
(the largest |error| over the largest |exact value|, exact: the same computed by im2col in
float64), for the six layers' forwards and the input gradients computed as forwards (dout
correlated with the turned filters: ``kernels.conv._input_grad_by_correlation``).

    python benchmarks/results/2026-12-05-winograd-4x4/ways.py

Output: ways-skylakex.txt (OPENBLAS_CORETYPE=Haswell: ways-haswell.txt).
"""

import sys
from functools import partial
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from layerwise.kernels import conv, winograd
from layerwise.kernels.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds

IMAGES = 100
#: (what, channels in, filters, image side, pad): the six forwards, then the input gradients'
#: convolutions of the layers that compute dx (dout's channels in, the layer's C as filters).
SHAPES = [
    ("conv2", 16, 16, 28, 1), ("conv3", 16, 32, 14, 1), ("conv4", 32, 32, 14, 2),
    ("conv5", 32, 64, 8, 1), ("conv6", 64, 64, 8, 1),
    ("conv2 dx", 16, 16, 28, 1), ("conv3 dx", 32, 16, 14, 1), ("conv4 dx", 32, 32, 16, 0),
    ("conv5 dx", 64, 32, 8, 1), ("conv6 dx", 64, 64, 8, 1),
]


def main() -> None:
    keep_freed_memory()
    rng = np.random.default_rng(0)
    ways = dict(conv._WAY_ARGUMENTS)
    print(f"{IMAGES} images, float32, BLAS on 1 thread; ms (median of 9) and float32 error / max |exact|.\n")
    print("| convolution | " + " | ".join(f"{way} fwd ms | dW ms | error" for way in ways) + " | 4x4 / 2x2 fwd |")
    print("|---|" + "--:|--:|--:|" * len(ways) + "--:|")
    for what, C, FN, side, pad in SHAPES:
        x = rng.standard_normal((IMAGES, side, side, C)).transpose(0, 3, 1, 2)  # channels-last
        W = rng.standard_normal((FN, C, 3, 3)) / np.sqrt(9 * C)
        OH = side + 2 * pad - 2
        d = rng.standard_normal((IMAGES * OH * OH, FN))
        col_W = W.transpose(0, 2, 3, 1).reshape(FN, -1).T
        exact = conv.im2col_dot(x, col_W, np.zeros(FN), 3, 3, 1, pad)
        x32, W32, d32 = x.astype(np.float32), W.astype(np.float32), d.astype(np.float32)
        col_W32 = np.ascontiguousarray(col_W, np.float32)
        cells, fwd = [], {}
        for way, arguments in ways.items():
            if arguments is None:
                forward = partial(conv.im2col_dot, x32, col_W32, np.zeros(FN, np.float32), 3, 3, 1, pad)
                weight_grad = partial(conv.im2col_weight_grad, d32, x32, 3, 3, 1, pad)
            else:
                forward = partial(winograd.winograd_conv, x32, W32, pad, *arguments)
                weight_grad = partial(winograd.winograd_weight_grad, d32, x32, pad, *arguments)
            with threadpool_limits(1):
                fwd[way] = median_seconds(forward, 9, warmup=2) * 1e3
                dW = median_seconds(weight_grad, 9, warmup=2) * 1e3
            error = np.abs(forward().astype(np.float64) - exact).max() / np.abs(exact).max()
            cells.append(f"{fwd[way]:.2f} | {dW:.2f} | {error:.1e}")
        print(f"| {what} C{C} FN{FN} {side}x{side} pad {pad} | " + " | ".join(cells)
              + f" | {fwd['winograd 4x4'] / fwd['winograd']:.2f} |")


if __name__ == "__main__":
    main()

"""Winograd's transforms for DeepConvNet's 3x3 convolutions, float32, BLAS on 1 thread: as
sums and differences of slices (the way before, 1add79c's, kept in kernels/winograd.py as
the sums way) against products with Bᵀ, Aᵀ and A (``kernels.winograd`` now), on one chunk of
images (as many as ``tuning.core_cache_bytes`` gives), and the whole forward of 50 images;
alone, and with a second Python thread making the same calls at once (as the parts of a
2-thread predict or of a "split" training step). us a call, the median of 101 calls.

    python benchmarks/results/2026-12-05-winograd-blas/transform_ways.py

Output: transform_ways-skylakex.txt.
"""

import sys
import threading
from functools import partial
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from layerwise.kernels import tuning, winograd
from layerwise.kernels.memory import keep_freed_memory
from layerwise.kernels.winograd import _input_transform_by_sums, _output_transform_by_sums

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds

REPS = 101


def side_by_side(fn) -> float:
    """Median seconds of REPS calls of ``fn`` while another thread makes the same calls."""
    stop = threading.Event()

    def other() -> None:
        while not stop.is_set():
            fn()

    helper = threading.Thread(target=other)
    helper.start()
    try:
        return median_seconds(fn, REPS, warmup=3)
    finally:
        stop.set()
        helper.join()


def old_winograd_conv(x, W, pad):
    """kernels.winograd.winograd_conv at 1add79c: its transforms are the sums way now."""
    return winograd.winograd_conv(x, W, pad, "sums")


keep_freed_memory()  # as predict and the Trainer do
rng = np.random.default_rng(0)
print("convolution (C -> FN, H x W, pad)  step                  before us   after us   after/before"
      "   | beside another thread: before us   after us   after/before")
with threadpool_limits(1):
    for C, FN, H, pad in ((16, 16, 28, 1), (16, 32, 14, 1), (32, 32, 14, 2), (32, 64, 8, 1), (64, 64, 8, 1)):
        x = rng.standard_normal((50, H, H, C)).astype(np.float32).transpose(0, 3, 1, 2)  # channels-last
        W = (rng.standard_normal((FN, C, 3, 3)) * 0.1).astype(np.float32)
        OH = H + 2 * pad - 2
        T = -(-OH // 2)
        n = max(1, tuning.core_cache_bytes() // (16 * T * T * C * 4))
        x_cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)[:n])
        M = rng.standard_normal((16, n * T * T, FN)).astype(np.float32)
        out = np.empty((n * OH * OH, FN), np.float32)
        np.testing.assert_allclose(winograd._input_transform(x_cl, pad, T, T),
                                   _input_transform_by_sums(x_cl, pad, T, T), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(winograd.winograd_conv(x, W, pad), old_winograd_conv(x, W, pad),
                                   rtol=1e-4, atol=1e-4)
        steps = {
            f"input, {n} images": (partial(_input_transform_by_sums, x_cl, pad, T, T),
                                   partial(winograd._input_transform, x_cl, pad, T, T)),
            f"output, {n} images": (partial(_output_transform_by_sums, M, out, T, T, OH, OH),
                                    partial(winograd._output_transform, M, out, T, T, OH, OH)),
            "forward, 50 images": (partial(old_winograd_conv, x, W, pad), partial(winograd.winograd_conv, x, W, pad)),
        }
        for step, (before, after) in steps.items():
            b, a = median_seconds(before, REPS, warmup=3), median_seconds(after, REPS, warmup=3)
            bb, ab = side_by_side(before), side_by_side(after)
            print(f"{C:>2} -> {FN:<2} {H:>2}x{H:<2} pad {pad}              {step:20s} {b * 1e6:9.1f} {a * 1e6:9.1f}"
                  f"   {a / b:12.2f}   | {bb * 1e6:31.1f} {ab * 1e6:9.1f}   {ab / bb:12.2f}", flush=True)

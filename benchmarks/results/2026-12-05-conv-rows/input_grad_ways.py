"""The two ways of a convolution's input gradient (``kernels.conv.conv_input_grad``), by
correlation and per kernel offset, on DeepConvNet's layers and on layers with more filters per
channel, batch 100, 1 thread, median of 25 calls; ``by_correlation``'s choice beside them.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/results/2026-12-05-conv-rows/input_grad_ways.py
    OPENBLAS_CORETYPE=Haswell python benchmarks/results/2026-12-05-conv-rows/input_grad_ways.py

Outputs: input_grad_ways-skylakex.txt, input_grad_ways-haswell.txt.
"""

import sys
from pathlib import Path

import numpy as np

import layerwise as lw
from layerwise.kernels import conv
from layerwise.kernels.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds


def med(f):
    """Milliseconds a call takes: the median of 25 after 5 warm-up calls."""
    return median_seconds(f, reps=25, warmup=5) * 1e3


def measure(C, FN, H, pad, rng):
    OH = H + 2 * pad - 2
    W = rng.standard_normal((FN, C, 3, 3)).astype(np.float32)
    d = rng.standard_normal((100 * OH * OH, FN)).astype(np.float32)
    x_shape = (100, C, H, H)
    a = med(lambda: conv._input_grad_by_correlation(d, W, x_shape, pad, OH, OH))
    b = med(lambda: conv._input_grad_per_offset(d, W, x_shape, 1, pad, OH, OH))
    rule = "correlation" if conv.by_correlation(W.shape, 1, pad) else "per offset"
    print(f"C{C} FN{FN} {H}x{H} pad {pad}: per offset {b:.2f} / by correlation {a:.2f} ms  (the rule: {rule})")


keep_freed_memory()
lw.set_num_threads(1)
rng = np.random.default_rng(0)
for C, FN, H, pad in [(16, 16, 28, 1), (16, 32, 14, 1), (32, 32, 14, 2), (32, 64, 8, 1), (64, 64, 8, 1),
                      (1, 16, 28, 1), (3, 32, 28, 1), (4, 32, 14, 1), (8, 32, 14, 1), (8, 64, 14, 1), (16, 64, 14, 1)]:
    measure(C, FN, H, pad, rng)

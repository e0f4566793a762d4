"""Max pooling (2×2, stride 2) on DeepConvNet's three pooled activations, channels-last as a
Convolution + ReLU leaves them: the previous kernel (NCHW out and arg_max, running argmax with
four passes per offset) against ``kernels.pool.max_pool`` (out and arg_max in x's layout,
arg_max in Horner form); and the backward with a C-ordered dout (as after an Affine) mixed
with a channels-last arg_max, against the same dout copied into arg_max's layout first.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/results/2026-12-05-conv-rows/max_pool_layouts.py

Batch 100, 1 thread, median of 35 calls. Output: max_pool_layouts.txt.
"""

import sys
from pathlib import Path

import numpy as np

from layerwise.kernels.pool import max_pool, max_pool_backward

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds


def med(f):
    """Milliseconds a call takes: the median of 35 after 5 warm-up calls."""
    return median_seconds(f, reps=35, warmup=5) * 1e3


def previous_max_pool(x):
    """The kernel before: NCHW results, arg_max moved to k where the value is strictly greater."""
    offsets = [x[:, :, i::2, j::2] for i, j in np.ndindex(2, 2)]
    out = np.empty(offsets[0].shape, dtype=x.dtype)
    arg_max = np.zeros(out.shape, dtype=np.uint8)
    np.copyto(out, offsets[0])
    greater, step = np.empty(out.shape, dtype=bool), np.empty(out.shape, dtype=np.uint8)
    for k, part in enumerate(offsets[1:], start=1):
        np.greater(part, out, out=greater)
        np.subtract(k, arg_max, out=step, dtype=np.uint8)
        step *= greater
        arg_max += step
        np.maximum(out, part, out=out)
    return out, arg_max


def measure(shape, rng):
    N, C, H, W = shape
    x = np.maximum(rng.standard_normal((N, H, W, C), dtype=np.float32), 0).transpose(0, 3, 1, 2)
    (o1, a1), (o2, a2) = previous_max_pool(x), max_pool(x, 2, 2, 2)
    assert np.array_equal(o1, o2) and np.array_equal(a1, a2)
    old, new = med(lambda: previous_max_pool(x)), med(lambda: max_pool(x, 2, 2, 2))
    print(f"forward {shape}: {old:.3f} / {new:.3f}  ({new / old:.2f})")
    dout = rng.standard_normal(o2.shape, dtype=np.float32)  # C-ordered, as from an Affine
    dout_cl = np.ascontiguousarray(dout.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)

    def mixed():  # what the kernel did before: the two layouts in every pass
        dx = np.empty((N, H, W, C), dtype=dout.dtype).transpose(0, 3, 1, 2)
        for k, (i, j) in enumerate(np.ndindex(2, 2)):
            np.multiply(dout, a2 == k, out=dx[:, :, i::2, j::2])
        return dx

    assert np.array_equal(mixed(), max_pool_backward(dout, a2, x.shape, 2, 2, 2, channels_last=True))
    old = med(mixed)
    new = med(lambda: max_pool_backward(dout, a2, x.shape, 2, 2, 2, channels_last=True))
    same = med(lambda: max_pool_backward(dout_cl, a2, x.shape, 2, 2, 2, channels_last=True))
    print(f"backward, C-ordered dout: mixed layouts {old:.3f} / copied first {new:.3f}  "
          f"(dout already channels-last: {same:.3f})")


rng = np.random.default_rng(0)
print("input (N, C, H, W): previous / now, ms")
for shape in [(100, 16, 28, 28), (100, 32, 16, 16), (100, 64, 8, 8)]:
    measure(shape, rng)

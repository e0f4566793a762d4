"""ReLU's backward on a (100, 16, 28, 28) channels-last activation, the way
``kernels.activations.relu_grad`` computes it (dout times the inverted mask, plus 0) against
others tried (np.where, a masked copyto, a kept inverted mask, the sign bits); the forward's
two passes for scale. None was faster, so relu_grad stayed. 1 thread, median of 55 calls.

    python benchmarks/results/2026-12-05-conv-rows/relu_backward_ways.py

Output: relu_backward_ways.txt.
"""

import sys
from pathlib import Path

import numpy as np

from layerwise.kernels.activations import relu, relu_grad

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds


def med(f):
    """Milliseconds a call takes: the median of 55 after 5 warm-up calls."""
    return median_seconds(f, reps=55, warmup=5) * 1e3


rng = np.random.default_rng(0)
x = rng.standard_normal((100, 28, 28, 16), dtype=np.float32).transpose(0, 3, 1, 2)
dout = rng.standard_normal((100, 28, 28, 16), dtype=np.float32).transpose(0, 3, 1, 2)
mask = x <= 0
keep = np.empty_like(mask)
bits = np.empty(mask.shape, np.uint32)


def where():
    return np.where(mask, np.float32(0), dout)


def copyto_where():
    dx = dout.copy()
    np.copyto(dx, 0, where=mask)
    return dx


def kept_inverted_mask():
    np.logical_not(mask, out=keep)
    dx = np.multiply(dout, keep)
    dx += 0
    return dx


def sign_bits():
    dx = np.empty_like(dout)
    np.subtract(mask, 1, out=bits, dtype=np.uint32, casting="unsafe")  # mask 1 -> 0, 0 -> all ones
    np.bitwise_and(dout.view(np.uint32), bits, out=dx.view(np.uint32))
    return dx


expected = np.where(mask, np.float32(0), dout)
for name, f in [("relu_grad", lambda: relu_grad(dout, mask)), ("np.where", where), ("copyto where=", copyto_where),
                ("kept inverted mask", kept_inverted_mask), ("sign bits", sign_bits)]:
    result = f()
    assert np.array_equal(result, expected) and not np.signbit(result[mask]).any(), name
    print(f"backward, {name}: {med(f):.3f} ms")
print(f"forward (relu with its mask): {med(lambda: relu(x)):.3f} ms")

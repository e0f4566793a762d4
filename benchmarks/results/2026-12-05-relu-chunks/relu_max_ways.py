"""ReLU's forward maximum on a (100, 16, 28, 28) float32 conv output (channels-last, 1.25 M
values): ``np.maximum`` against the scalar 0 (NumPy's loop for a scalar operand), against a
zero array as large as x, against a row of zeros of a few lengths (x's memory seen as rows),
and ``kernels.activations.max_zero``; a copy and ``x <= 0`` for scale. 1 thread, median of
200 calls.

    env -u OPENBLAS_CORETYPE python benchmarks/results/2026-12-05-relu-chunks/relu_max_ways.py

Output: relu_max_ways.txt.
"""

import sys
from pathlib import Path

import numpy as np

from layerwise.kernels.activations import max_zero

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.timing
from benchmarks.timing import median_seconds

rng = np.random.default_rng(0)
memory = rng.standard_normal((100, 28, 28, 16), dtype=np.float32)
x = memory.transpose(0, 3, 1, 2)  # as a Convolution returns it
out = np.empty_like(x)
flat, flat_out = memory.reshape(-1), out.transpose(0, 2, 3, 1).reshape(-1)


def ms(fn) -> str:
    return f"{median_seconds(fn, 200, warmup=5) * 1e3:.3f} ms"


print("np.maximum(x, 0)                 ", ms(lambda: np.maximum(x, 0, out=out)))
print("np.maximum(flat, 0)              ", ms(lambda: np.maximum(flat, 0, out=flat_out)))
print("np.maximum(flat, np.float32(0))  ", ms(lambda: np.maximum(flat, np.float32(0), out=flat_out)))
print("np.clip(flat, 0, None)           ", ms(lambda: np.clip(flat, 0, None, out=flat_out)))
zeros = np.zeros_like(flat)
print("np.maximum(flat, zeros like x)   ", ms(lambda: np.maximum(flat, zeros, out=flat_out)))
for length in (1024, 4096, 16384, 65536):
    row, body = np.zeros(length, np.float32), flat.size // length * length
    rows, rows_out = flat[:body].reshape(-1, length), flat_out[:body].reshape(-1, length)
    print(f"np.maximum(rows, zero row {length:5d}) ",
          ms(lambda rows=rows, row=row, rows_out=rows_out: np.maximum(rows, row, out=rows_out)))
print("max_zero(x, out)                 ", ms(lambda: max_zero(x, out)))
print("copy                             ", ms(lambda: np.copyto(flat_out, flat)))
print("x <= 0                           ", ms(lambda: np.less_equal(flat, 0)))

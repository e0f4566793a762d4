"""The measurements behind the "split" plan (models.batch_parts), DeepConvNet at batch 100 on
random images, float32, Adam:

1. one half of the batch alone on one thread, the two halves at once on two threads (each on
   its own replica, BLAS on one thread), and the whole batch on one thread: ms a step;
2. the split plan's step at several convolution chunk sizes (kernels.tuning.conv_chunk_bytes);
3. a partial im2col, K = 3·C (one kernel row's taps per product, three products added), against
   the whole im2col and one product, per chunk of images, 1 thread: the idea measured and not
   kept.

Each figure is a median over alternating rounds. Run from the repository:
``python benchmarks/results/2026-12-05-batch-parts/batch_parts_measurements.py`` (prefix
``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`` on a VM that sets them).
"""

import functools
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits

import layerwise as lw
from layerwise.kernels import conv, tuning
from layerwise.kernels.conv import im2col
from layerwise.models.batch_parts import _replica, gradient
from layerwise.optim import Adam

lw.set_num_threads(2)
net = lw.DeepConvNet(seed=0, dropout_mode="inverted", final_dropout=False, dtype=np.float32)
rng = np.random.default_rng(0)
x, t = rng.random((100, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 100)


def ms(fn, steps: int = 8) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - start) / steps * 1e3


# 1. Halves alone and at once
twin = _replica(net, {})
rounds: dict[str, list[float]] = {"one half, 1 thread": [], "two halves at once, 2 threads": [],
                                  "whole batch, 1 thread": []}
with threadpool_limits(1, user_api="blas"):
    for _ in range(5):
        rounds["one half, 1 thread"].append(ms(lambda: net.gradient(x[:50], t[:50])))

        def both() -> None:
            runs = [threading.Thread(target=m.gradient, args=(x[s], t[s]))
                    for m, s in ((net, slice(0, 50)), (twin, slice(50, 100)))]
            for run in runs:
                run.start()
            for run in runs:
                run.join()

        rounds["two halves at once, 2 threads"].append(ms(both))
        rounds["whole batch, 1 thread"].append(ms(lambda: net.gradient(x, t)))
print("1. DeepConvNet gradient, ms a step:", ", ".join(f"{k} {np.median(v):.1f}" for k, v in rounds.items()))

# 2. The split plan's step by convolution chunk size
optimizer = Adam(lr=1e-3)
sizes = (1, 2, 4, 8)
by_size: dict[int, list[float]] = {s: [] for s in sizes}
real_chunk = tuning.conv_chunk_bytes
with tuning.enter_plan("split", 2):
    for round_ in range(5):
        for mib in sizes if round_ % 2 else sizes[::-1]:
            conv.tuning.conv_chunk_bytes = lambda mib=mib: mib * 2**20
            by_size[mib].append(ms(lambda: optimizer.update(net.params, gradient(net, x, t))))
conv.tuning.conv_chunk_bytes = real_chunk
print("2. split plan, Adam step, ms by convolution chunk:",
      ", ".join(f"{s} MiB {np.median(v):.1f}" for s, v in by_size.items()))

# 3. Partial im2col (K = 3C) against the whole im2col, one chunk (as kernels.conv sizes it)
def whole(images: np.ndarray, col_W: np.ndarray, pad: int) -> np.ndarray:
    return im2col(images, 3, 3, 1, pad) @ col_W


def partial_im2col(images: np.ndarray, per_row: list[np.ndarray], pad: int) -> np.ndarray:
    """The rows (n, h, ow) of the padded image, each with one kernel row's 3 taps (3·C
    values); the output over all padded rows h is the sum of 3 products of row slabs shifted
    by one image row (rows past an image's last output are discarded)."""
    n, C, H, _ = images.shape
    OW, Hp = H + 2 * pad - 2, H + 2 * pad
    img = np.zeros((n, Hp, Hp, C), np.float32)
    img[:, pad:pad + H, pad:pad + H, :] = images.transpose(0, 2, 3, 1)
    windows = np.lib.stride_tricks.sliding_window_view(img, 3, axis=2)  # (n, Hp, OW, C, 3)
    rows = np.empty((n, Hp, OW, 3, C), np.float32)
    np.copyto(rows, windows.transpose(0, 1, 2, 4, 3))
    flat = rows.reshape(n * Hp * OW, 3 * C)
    length = n * Hp * OW - 2 * OW
    out = flat[:length] @ per_row[0]
    scratch = np.empty_like(out)
    for i in (1, 2):
        np.matmul(flat[i * OW: i * OW + length], per_row[i], out=scratch)
        out += scratch
    return out


print("3. one chunk's forward product, 1 thread, ms: whole im2col / partial (K = 3C)")
with threadpool_limits(1, user_api="blas"):
    for n, C, H, FN, pad in [(9, 16, 28, 16, 1), (14, 32, 14, 32, 2), (37, 64, 7, 64, 1), (37, 16, 14, 32, 1)]:
        images = rng.random((n, C, H, H), dtype=np.float32)
        images = np.ascontiguousarray(images.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # a conv output's layout
        W = rng.random((FN, C, 3, 3), dtype=np.float32)
        col_W = W.transpose(0, 2, 3, 1).reshape(FN, -1).T.copy()
        per_row = [np.ascontiguousarray(W[:, :, i, :].transpose(2, 1, 0).reshape(3 * C, FN)) for i in range(3)]
        times: dict[str, list[float]] = {"whole": [], "partial": []}
        for _ in range(5):
            times["whole"].append(ms(functools.partial(whole, images, col_W, pad), 20))
            times["partial"].append(ms(functools.partial(partial_im2col, images, per_row, pad), 20))
        print(f"   {n} images, C {C} -> FN {FN}, {H}x{H}, pad {pad}: "
              f"{np.median(times['whole']):.3f} / {np.median(times['partial']):.3f}")

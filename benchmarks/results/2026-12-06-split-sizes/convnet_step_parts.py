"""Where SimpleConvNet's training step goes beyond its products, 1 thread, batch 100: each
layer's forward and backward and Adam as the step runs them (ms a step over 40 steps after 5),
the fused Convolution-ReLU-Pooling forward's parts on one chunk (us, scaled to the batch), and
two ways tried against them: the chunk's rows in the layers' order (no mask scatter, pooling
from strided rows) and Adam's update in cache-sized slices.

    python benchmarks/results/2026-12-06-split-sizes/convnet_step_parts.py

Output: convnet_step_parts-skylakex.txt.
"""

import collections
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import layerwise as lw
from layerwise.kernels import fused
from layerwise.kernels.activations import max_zero
from layerwise.kernels.blocks import rows_dot
from layerwise.kernels.conv import im2col
from layerwise.kernels.memory import keep_freed_memory
from layerwise.kernels.pool import _max_and_arg_max, window_pixels
from layerwise.models import fusion
from layerwise.optim.rules import Adam

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.nets import NETS, gemm_floor, step_gemms
from benchmarks.worker import _blas


def us(fn, reps: int = 300) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps * 1e6


def step_parts() -> None:
    model = NETS["convnet"].build(0)
    (x_train, t_train), _ = lw.load_fashion_mnist(flatten=False, download=False, progress=False)
    xs = [x_train[i * 100:(i + 1) * 100].astype(np.float32) for i in range(40)]
    ts = [t_train[i * 100:(i + 1) * 100] for i in range(40)]
    optimizer = lw.Adam(lr=1e-3)
    layers = list(model)
    run = fusion.training_steps(layers[:3])
    spent: dict[str, float] = collections.defaultdict(float)

    def timed(label, fn, *args):
        start = time.perf_counter()
        result = fn(*args)
        spent[label] += time.perf_counter() - start
        return result

    for rep in range(45):
        if rep == 5:
            spent.clear()
        h = xs[rep % 40]
        for layer in [*run, *layers[3:]]:
            h = timed(f"{type(layer).__name__} forward", layer.forward, h, True)
        timed("loss forward", model.loss_layer.forward, h, ts[rep % 40])
        d = timed("loss backward", model.loss_layer.backward, 1.0)
        for layer in reversed([*run, *layers[3:]]):
            d = timed(f"{type(layer).__name__} backward", layer.backward, d)
        grads = {name: layer.grads[key] for name, (layer, key) in model._param_slots.items()}
        timed("Adam", optimizer.update, model.params, grads)
    floor = gemm_floor(step_gemms(model, 100, (1, 28, 28)), 1, 40)
    print("| part (Affine and Relu: first and second summed) | ms a step |")
    print("|---|--:|")
    for label, seconds in spent.items():
        print(f"| {label} | {seconds / 40 * 1e3:.2f} |")
    print(f"| the step | {sum(spent.values()) / 40 * 1e3:.2f} |")
    print(f"| its products alone (the runner's GEMM floor) | {floor * 1e3:.2f} |")


def forward_parts() -> None:
    rng = np.random.default_rng(0)
    N, FN, pool, PH, PW, OH, OW = 100, 30, 2, 12, 12, 24, 24
    x = rng.random((N, 1, 28, 28), dtype=np.float32)
    W = rng.standard_normal((FN, 1, 5, 5)).astype(np.float32) * 0.1
    weights = fused._weights_with_bias(W.transpose(0, 2, 3, 1).reshape(FN, -1).T, np.zeros(FN, np.float32))
    n = fused._images_per_chunk(OH * OW * 26 * 4, N)
    mask = np.empty((N, OH, OW, FN), dtype=bool)
    out = np.empty((N, PH, PW, FN), np.float32)
    arg_max = np.empty((N, PH, PW, FN), np.uint8)
    passed = np.empty((N, PH, PW, FN), bool)
    images = slice(0, n)
    col = fused.pooled_order_col(x[images], 5, 5, 1, 0, pool)
    y = rows_dot(col, weights)
    window_max, window_arg = out[images].reshape(-1), arg_max[images].reshape(-1)
    window_passed = passed[images].reshape(-1)

    def scatter_mask():
        flags = np.less_equal(y, 0)
        np.copyto(window_pixels(mask[images], pool, pool), flags.view(fused._pixel(FN)).reshape(pool, pool, -1, PW))

    parts = {
        "col, in pooling order": lambda: fused.pooled_order_col(x[images], 5, 5, 1, 0, pool),
        "the product (col · weights with the bias row)": lambda: rows_dot(col, weights),
        "the Relu's mask: y <= 0, put in the layer's order": scatter_mask,
        "the windows' max and arg_max": lambda: _max_and_arg_max(y.reshape(pool * pool, -1), window_max, window_arg),
        "max(., 0), passed, arg_max · passed": lambda: (max_zero(window_max, window_max),
                                                     np.greater(window_max, 0, out=window_passed),
                                                     np.multiply(window_arg, window_passed, out=window_arg)),
    }
    print(f"\nThe fused forward's parts on one chunk of {n} images, us, and scaled to the batch of {N} (ms):\n")
    print("| part | us a chunk | ms a batch |")
    print("|---|--:|--:|")
    for label, fn in parts.items():
        t = us(fn)
        print(f"| {label} | {t:.1f} | {t * N / n / 1e3:.3f} |")

    col_layer = im2col(x[images], 5, 5, 1, 0)
    y_layer = col_layer @ weights[:25]

    def layer_order():
        np.less_equal(y_layer, 0, out=mask[images].reshape(-1, FN))
        v = y_layer.reshape(n, PH, pool, PW, pool, FN)
        _max_and_arg_max([v[:, :, i, :, j, :] for i in range(pool) for j in range(pool)], out[images], arg_max[images])

    def pooled_order():
        scatter_mask()
        _max_and_arg_max(y.reshape(pool * pool, -1), window_max, window_arg)

    print("\nTried: the rows in the layers' order, us a chunk (mask and max/arg_max), against pooling order:\n")
    print(f"layers' order {us(layer_order):.1f}, pooling order {us(pooled_order):.1f}")


def adam_slices() -> None:
    rng = np.random.default_rng(0)
    n = 432_000
    p, g = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    m, v, s = np.zeros(n, np.float32), np.zeros(n, np.float32), np.empty(n, np.float32)
    sweep = np.ones(8_000_000, np.float32)  # 32 MB: the caches emptied as a step's other work would
    opt = Adam(lr=1e-3)
    opt.step = 5
    opt._begin_step()

    def run(size: int) -> None:
        for lo in range(0, n, size or n):
            part = slice(lo, lo + (size or n))
            opt._apply(p[part], g[part], {"m": m[part], "v": v[part]}, s[part])

    print("\nTried: Adam on SimpleConvNet's 432,000 weights whole and in slices, ms (median of 30; cold: after a"
          " 32 MB sweep):\n")
    print("| slice | warm | cold |")
    print("|--:|--:|--:|")
    for size in (0, 8192, 16384, 32768, 65536):
        times = {}
        for cold in (False, True):
            got = []
            for _ in range(30):
                if cold:
                    sweep += 1
                start = time.perf_counter()
                run(size)
                got.append(time.perf_counter() - start)
            times[cold] = np.median(got) * 1e3
        print(f"| {size or 'whole'} | {times[False]:.3f} | {times[True]:.3f} |")


def main() -> None:
    keep_freed_memory()
    print(f"SimpleConvNet, batch 100, float32, 1 thread, OpenBLAS {_blas().get('architecture')}\n")
    with threadpool_limits(1, user_api="blas"):
        step_parts()
        forward_parts()
        adam_slices()


if __name__ == "__main__":
    main()

"""SimpleConvNet's training step, 1 thread, batch 100: how long its products take inside the
step (each timed where the step calls it, its operands as the step leaves them in cache)
against the runner's GEMM floor (the same products replayed alone, best of its ways), and the
step's other parts. ms a step, over 200 steps after 5.

    python benchmarks/results/2026-12-06-where-left/convnet_step_products.py

Output: convnet_step_products-skylakex.txt.
"""

import collections
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import layerwise as lw
from layerwise.kernels import fused
from layerwise.kernels.memory import keep_freed_memory
from layerwise.layers import affine
from layerwise.models import fusion

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.nets import NETS, gemm_floor, step_gemms
from benchmarks.worker import _blas

STEPS = 200
spent: dict[str, float] = collections.defaultdict(float)


def timed_as(label: str, fn):
    def timed(*args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        spent[label] += time.perf_counter() - start
        return result
    return timed


def main() -> None:
    keep_freed_memory()
    matmul = affine.matmul

    def affine_matmul(a, b, add=None, min_macs=None):
        start = time.perf_counter()
        result = matmul(a, b, add=add, min_macs=min_macs)
        spent[f"product: Affine {a.shape} x {b.shape}"] += time.perf_counter() - start
        return result

    affine.matmul = affine_matmul
    fused.rows_dot = timed_as("product: convolution forward, col x weights", fused.rows_dot)
    fused.inner_dot = timed_as("product: convolution dW, col^T x d", fused.inner_dot)
    fused.pooled_order_col = timed_as("col, in pooling order", fused.pooled_order_col)
    fused._max_and_arg_max = timed_as("pooling's max and arg_max", fused._max_and_arg_max)

    model = NETS["convnet"].build(0)
    (x_train, t_train), _ = lw.load_fashion_mnist(flatten=False, download=False, progress=False)
    xs = [x_train[i * 100:(i + 1) * 100].astype(np.float32) for i in range(40)]
    ts = [t_train[i * 100:(i + 1) * 100] for i in range(40)]
    optimizer = lw.Adam(lr=1e-3)
    layers = list(model)
    run = [*fusion.training_steps(layers[:3]), *layers[3:]]
    with threadpool_limits(1, user_api="blas"):
        for rep in range(STEPS + 5):
            if rep == 5:
                spent.clear()
            start = time.perf_counter()
            h = xs[rep % 40]
            for i, layer in enumerate(run):
                h = timed_as(f"layer {i} {type(layer).__name__} forward", layer.forward)(h, True)
            timed_as("loss", model.loss_layer.forward)(h, ts[rep % 40])
            d = timed_as("loss", model.loss_layer.backward)(1.0)
            for i, layer in reversed(list(enumerate(run))):
                d = timed_as(f"layer {i} {type(layer).__name__} backward", layer.backward)(d)
            grads = {name: layer.grads[key] for name, (layer, key) in model._param_slots.items()}
            timed_as("Adam", optimizer.update)(model.params, grads)
            spent["the step"] += time.perf_counter() - start
        floor = gemm_floor(step_gemms(model, 100, (1, 28, 28)), 1, 40)
    print(f"SimpleConvNet, batch 100, float32, 1 thread, OpenBLAS {_blas().get('architecture')}; "
          f"ms a step over {STEPS} steps\n")
    print("| part | ms a step |")
    print("|---|--:|")
    for label in sorted(spent, key=lambda k: (not k.startswith("product"), k)):
        print(f"| {label} | {spent[label] / STEPS * 1e3:.3f} |")
    products = sum(v for k, v in spent.items() if k.startswith("product")) / STEPS * 1e3
    print(f"| the products, in the step | {products:.3f} |")
    print(f"| the products alone (the runner's GEMM floor) | {floor * 1e3:.3f} |")
    step = spent["the step"] / STEPS * 1e3
    print(f"\nthe step / the floor: {step / (floor * 1e3):.2f}; the step less its products: {step - products:.2f} ms; "
          f"a step at 1.7x the floor: {1.7 * floor * 1e3:.2f} ms")


if __name__ == "__main__":
    main()

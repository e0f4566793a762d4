"""Where DeepConvNet's training step goes: each layer's forward and backward and the update,
ms a step over 30 steps of batch 100 (after 5 untimed), 1 thread, as ``model.gradient`` runs
them (a Convolution-ReLU-Pooling run's pair of ReLU and Pooling shows under the run's layers:
this script times the layers' own methods, so runs go as layers here), and one chunk of the
second convolution by Winograd's F(4×4), its parts in us (median of 200 calls).

    python benchmarks/results/2026-12-06-kept-tiles/step_profile.py
    OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512 python benchmarks/results/2026-12-06-kept-tiles/step_profile.py

Output: step_profile-skylakex.txt, step_profile-haswell.txt.
"""

import collections
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import layerwise as lw
from layerwise.kernels import winograd
from layerwise.kernels.memory import keep_freed_memory
from layerwise.optim import make_optimizer

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.nets import NETS
from benchmarks.timing import median_seconds
from benchmarks.worker import _blas

STEPS = 30


def timed(spent: dict[str, float], label: str, fn):
    def call(*args, **kwargs):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        spent[label] += time.perf_counter() - start
        return result
    return call


def step_profile() -> None:
    spec = NETS["deep-convnet"]
    (x, t), _ = lw.load_fashion_mnist(flatten=False, download=False, progress=False)
    x, t = x[:4000].astype(np.float32), t[:4000]
    model = spec.build(0)
    optimizer = make_optimizer(spec.optimizer, lr=spec.lr)
    spent: dict[str, float] = collections.defaultdict(float)
    for i, layer in enumerate(model):
        name = f"{i:2d} {type(layer).__name__}"
        layer.forward = timed(spent, f"{name} forward", layer.forward)
        layer.backward = timed(spent, f"{name} backward", layer.backward)
    for step in range(STEPS + 5):
        if step == 5:
            spent.clear()
            began = time.perf_counter()
        rows = slice(step * 100 % 4000, step * 100 % 4000 + 100)
        grads = model.gradient(x[rows], t[rows])
        start = time.perf_counter()
        optimizer.update(model.params, grads)
        spent["update"] += time.perf_counter() - start
    total = (time.perf_counter() - began) / STEPS * 1e3
    print("| part | ms a step |")
    print("|---|--:|")
    for label in sorted(spent):
        print(f"| {label} | {spent[label] / STEPS * 1e3:.2f} |")
    convolutions = sum(v for k, v in spent.items() if "Convolution" in k) / STEPS * 1e3
    print(f"| all six convolutions | {convolutions:.1f} |")
    print(f"| the step | {total:.1f} |")


def chunk_parts() -> None:
    C, FN, H, pad, block = 16, 16, 28, 1, 4
    rng = np.random.default_rng(0)
    TH = TW = -(-H // block)
    t = block + 2
    n = winograd._images_per_chunk(t * t * TH * TW * C * 4, 100)
    x_cl = rng.standard_normal((n, H, H, C), dtype=np.float32)
    U = winograd.filter_transform(rng.standard_normal((FN, C, 3, 3), dtype=np.float32), block)
    V = winograd._input_transform(x_cl, pad, TH, TW, block)
    M = np.matmul(V, U)
    out = np.empty((n * H * H, FN), np.float32)
    parts = {
        "input transform V = Bᵀ d B": lambda: winograd._input_transform(x_cl, pad, TH, TW, block),
        "the 36 products V·U": lambda: np.matmul(V, U),
        "output transform Aᵀ M A": lambda: winograd._output_transform(M, out, TH, TW, H, H),
    }
    print()
    print(f"Conv2's forward by F(4×4), one chunk of {n} images ({V.shape[1]} tiles), us:")
    print()
    print("| part | us |")
    print("|---|--:|")
    for label, run in parts.items():
        print(f"| {label} | {median_seconds(run, 200, warmup=5) * 1e6:.0f} |")


def main() -> None:
    keep_freed_memory()  # as the Trainer runs
    print(f"OpenBLAS {_blas()}; DeepConvNet, batch 100, 1 thread")
    print()
    with threadpool_limits(1, user_api="blas"):
        step_profile()
        chunk_parts()


if __name__ == "__main__":
    main()

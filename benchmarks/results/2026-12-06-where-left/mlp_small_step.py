"""784-50-10 with SGD, batch 100, 1 thread: a Trainer epoch's step, its products timed where the
step calls them, a batch's gather from the shuffled training set alone, and the first layer's
product shapes alone in NumPy (OpenBLAS) and in PyTorch. us.

    python benchmarks/results/2026-12-06-where-left/mlp_small_step.py

Output: mlp_small_step-skylakex.txt.
"""

import collections
import sys
import time
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from layerwise.layers import affine

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.nets import NETS
from benchmarks.timing import median_seconds
from benchmarks.worker import _blas, _layerwise_trainer, _load

spent: dict[str, float] = collections.defaultdict(float)


def main() -> None:
    torch.set_num_threads(1)
    matmul = affine.matmul

    def affine_matmul(a, b, add=None, min_macs=None):
        start = time.perf_counter()
        result = matmul(a, b, add=add, min_macs=min_macs)
        spent[f"{a.shape} x {b.shape}"] += time.perf_counter() - start
        return result

    affine.matmul = affine_matmul
    spec = NETS["mlp-small"]
    x, t, _, _ = _load(spec.flatten, spec.train_images)
    steps = len(x) // spec.batch_size
    with threadpool_limits(1, user_api="blas"):
        trainer = _layerwise_trainer(spec, spec.build(0), x, t, 0)
        epochs = []
        for _ in range(4):
            trainer.epochs = trainer.epoch + 1
            spent.clear()
            start = time.perf_counter()
            trainer.fit()
            epochs.append(((time.perf_counter() - start) / steps * 1e6, dict(spent)))
        step, products = sorted(epochs, key=lambda e: e[0])[len(epochs) // 2]
        rng = np.random.default_rng(0)
        order = rng.permutation(len(x))
        batch = np.empty((spec.batch_size, x.shape[1]), x.dtype)
        k = iter(range(10**9))

        def gather():
            i = next(k) % steps
            x.take(order[i * 100:(i + 1) * 100], axis=0, out=batch, mode="clip")

        gathered = median_seconds(gather, 300) * 1e6
        a = rng.random((100, 784), dtype=np.float32)
        w = rng.standard_normal((784, 50)).astype(np.float32)
        d = rng.standard_normal((100, 50)).astype(np.float32)
        ta, tw, td = torch.from_numpy(a), torch.from_numpy(w), torch.from_numpy(d)
        alone = {
            "x·W (100, 784) x (784, 50)": (median_seconds(lambda: np.dot(a, w), 300),
                                            median_seconds(lambda: ta @ tw, 300)),
            "xᵀ·dout (784, 100) x (100, 50)": (median_seconds(lambda: np.dot(a.T, d), 300),
                                               median_seconds(lambda: ta.T @ td, 300)),
        }
    print(f"784-50-10, SGD, batch 100, 1 thread, OpenBLAS {_blas().get('architecture')}; us\n")
    print(f"a step (the median of 4 epochs): {step:.0f}")
    print("| product, in the step | us a step |")
    print("|---|--:|")
    for label, seconds in products.items():
        print(f"| {label} | {seconds / steps * 1e6:.1f} |")
    total = sum(products.values()) / steps * 1e6
    print(f"| all | {total:.1f} |")
    print(f"\nthe step less its products: {step - total:.0f}; a batch's gather alone: {gathered:.1f}\n")
    print("| product, alone | NumPy | PyTorch |")
    print("|---|--:|--:|")
    for label, (np_s, pt_s) in alone.items():
        print(f"| {label} | {np_s * 1e6:.1f} | {pt_s * 1e6:.1f} |")


if __name__ == "__main__":
    main()

"""Training steps with work split across 2 owned threads at the earlier constant sizes (a pass
from 2^17 values, every update from 2^17 values, a product from 2^24 multiply-adds) and at this
machine's measured sizes (``kernels.split_sizes``), taking turns in one process: ms a step,
median of 7 rounds of STEPS steps, and the ratio measured / constant per round.

    python benchmarks/results/2026-12-06-split-sizes/split_sizes_ab.py

Output: split_sizes_ab-skylakex.txt.
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ["LAYERWISE_CACHE_DIR"] = tempfile.mkdtemp(prefix="split-sizes-ab-")

import numpy as np

import layerwise as lw
from layerwise.kernels import blas_limits, split_sizes, threads, updates
from layerwise.kernels.memory import keep_freed_memory
from layerwise.kernels.tuning import enter_plan
from layerwise.models.batch_parts import gradient
from layerwise.optim import make_optimizer

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.nets import NETS
from benchmarks.worker import _blas

RUNS = (("mlp-wide", "owned", 40), ("convnet", "owned", 20), ("convnet", "split", 20), ("deep-convnet", "owned", 5))
ROUNDS = 7


def main() -> None:
    keep_freed_memory()
    blas_limits.set_blas_threads(2)
    (x_all, t_all), _ = lw.load_fashion_mnist(flatten=False, download=False, progress=False)
    x_all = x_all.astype(np.float32)
    print(f"OpenBLAS {_blas().get('architecture')}; ms a training step on 2 threads, median of {ROUNDS} rounds")
    print("| network | plan | constant sizes | measured sizes | measured / constant per round, median (min-max) |")
    print("|---|---|--:|--:|--:|")
    sizes = {}
    for net, plan, steps in RUNS:
        spec = NETS[net]
        x = x_all.reshape(len(x_all), -1) if spec.flatten else x_all
        model, optimizer = spec.build(0), make_optimizer(spec.optimizer, lr=spec.lr)
        size = spec.batch_size
        batches = [(x[i * size:(i + 1) * size], t_all[i * size:(i + 1) * size]) for i in range(steps)]
        with enter_plan(plan, 2):
            measured = split_sizes.adopt()
            optimizer.update(model.params, gradient(model, *batches[0]))  # the update's size measured
            kept_updates = dict(updates._update_sizes)
            sizes.update({k[0]: v for k, v in kept_updates.items()}, **measured)
            ways = {"constant": ((split_sizes.DEFAULTS["pass"], split_sizes.DEFAULTS["product"]),
                                 {k: split_sizes.DEFAULTS["pass"] for k in kept_updates}),
                    "measured": ((measured["pass"], measured["product"]), kept_updates)}

            times = {"constant": [], "measured": []}
            for round_ in range(ROUNDS):
                for way in (("constant", "measured") if round_ % 2 == 0 else ("measured", "constant")):
                    (elements, macs), update_sizes = ways[way]
                    threads.set_split_sizes(elements, macs)
                    updates._update_sizes.clear()
                    updates._update_sizes.update(update_sizes)
                    optimizer.update(model.params, gradient(model, *batches[0]))  # settle
                    start = time.perf_counter()
                    for xb, tb in batches:
                        optimizer.update(model.params, gradient(model, xb, tb))
                    times[way].append((time.perf_counter() - start) / steps)
        ratios = [m / c for m, c in zip(times["measured"], times["constant"], strict=True)]
        print(f"| {net} | {plan} | {1e3 * statistics.median(times['constant']):.2f} | "
              f"{1e3 * statistics.median(times['measured']):.2f} | {statistics.median(ratios):.3f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}) |", flush=True)
    print("\nThe measured sizes: " + ", ".join(f"{k} {v:,}" for k, v in sizes.items()))


if __name__ == "__main__":
    main()

"""784-512-512-10 with Adam, batch 128, BLAS on 2 threads (the "blas" plan the Trainer keeps
for it here): a step's time and its update's, with the update on one thread as now, and split
across 2 threads layerwise owns for the update alone (``owned_threads`` around
``Optimizer.update``; BLAS's threads are idle then, but spin on the cores for a while after
each product: ``kernels.threads``' comment). Alternating rounds of 100 steps, ms.

    python benchmarks/results/2026-12-06-where-left/mlp_wide_update.py

Output: mlp_wide_update-skylakex.txt.
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from layerwise.kernels.threads import owned_threads
from layerwise.optim import make_optimizer

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.nets import NETS
from benchmarks.worker import _blas, _load


def main() -> None:
    spec = NETS["mlp-wide"]
    x, t, _, _ = _load(spec.flatten, spec.train_images)
    model = spec.build(0)
    optimizer = make_optimizer("adam", lr=1e-3)
    rng = np.random.default_rng(0)
    batches = [rng.permutation(len(x))[:128] for _ in range(50)]

    def step(i: int, split: bool) -> float:
        grads = model.gradient(x[batches[i % 50]], t[batches[i % 50]])
        start = time.perf_counter()
        if split:
            with owned_threads():
                optimizer.update(model.params, grads)
        else:
            optimizer.update(model.params, grads)
        return time.perf_counter() - start

    results: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    with threadpool_limits(2, user_api="blas"):
        for i in range(20):
            step(i, False)
            step(i, True)
        for _ in range(5):
            for split in (False, True):
                start = time.perf_counter()
                updates = [step(i, split) for i in range(100)]
                results[split].append(((time.perf_counter() - start) / 100 * 1e3, statistics.median(updates) * 1e3))
    print(f"784-512-512-10, Adam, batch 128, BLAS on 2 threads, OpenBLAS {_blas().get('architecture')}; "
          "ms, 5 alternating rounds of 100 steps\n")
    print("| update | step, each round | update (median), each round |")
    print("|---|---|---|")
    for split, label in ((False, "one thread (now)"), (True, "split across 2 owned threads")):
        steps = " / ".join(f"{s:.2f}" for s, _ in results[split])
        updates = " / ".join(f"{u:.2f}" for _, u in results[split])
        print(f"| {label} | {steps} | {updates} |")


if __name__ == "__main__":
    main()

"""Where SimpleConvNet's 2-thread step goes, Adam, batch 100: a part of 50 images alone on one
thread, the whole batch on one thread, and the gradient and the whole step (with Adam's update)
under the "split" plan (two parts on two Python threads) and the "processes" plan (the second
part in a worker process); ms a step, the median of rounds of 100 steps, the plans alternating.
And what two Python threads cost each other here: a float32 pass split in two (the handoff)
and a wake-up round trip between two threads.

    python benchmarks/results/2026-12-06-split-check/convnet_two_threads.py

Output: convnet_two_threads-skylakex.txt.
"""

import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

import layerwise as lw
from layerwise.kernels import threads, tuning
from layerwise.kernels.activations import max_zero
from layerwise.kernels.blas_limits import blas_limit
from layerwise.kernels.memory import keep_freed_memory
from layerwise.models import batch_parts

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.nets import NETS
from benchmarks.timing import median_seconds
from benchmarks.worker import _blas

ROUNDS, STEPS = 5, 100


def ms_a_step(fn) -> float:
    for _ in range(10):
        fn()
    start = time.perf_counter()
    for _ in range(STEPS):
        fn()
    return (time.perf_counter() - start) / STEPS * 1e3


def step_table() -> None:
    model = NETS["convnet"].build(0)
    (x_train, t_train), _ = lw.load_fashion_mnist(flatten=False, download=False, progress=False)
    x, t = x_train[:100].astype(np.float32), t_train[:100]
    optimizer = lw.Adam(lr=1e-3)

    def gradient(rows: slice = slice(None)) -> None:
        batch_parts.gradient(model, x[rows], t[rows])

    def step() -> None:
        optimizer.update(model.params, batch_parts.gradient(model, x, t))

    got: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        with blas_limit(1):
            got.setdefault("1 thread: gradient of 50 images", []).append(ms_a_step(lambda: gradient(slice(0, 50))))
            got.setdefault("1 thread: gradient of 100", []).append(ms_a_step(gradient))
            got.setdefault("1 thread: step of 100", []).append(ms_a_step(step))
        for plan in ("split", "processes"):
            with tuning.enter_plan(plan, 2):
                got.setdefault(f"{plan}: gradient of 100", []).append(ms_a_step(gradient))
                got.setdefault(f"{plan}: step of 100", []).append(ms_a_step(step))
    print("| what | ms a step: median (min-max) of rounds |")
    print("|---|--:|")
    for label, values in got.items():
        print(f"| {label} | {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}) |")


def handoffs() -> None:
    rng = np.random.default_rng(0)
    print("\nA float32 ReLU pass (max_zero) whole and split across 2 owned threads, us (median of 300):\n")
    print("| values | whole | split |")
    print("|--:|--:|--:|")
    with threads.owned_threads():
        for n in (1 << 17, 1 << 19, 1 << 21):
            v = rng.standard_normal(n).astype(np.float32)
            out = np.empty_like(v)
            whole = median_seconds(lambda v=v, out=out: max_zero(v, out), 300)
            split = median_seconds(lambda v=v, out=out, n=n: threads.in_parts(lambda b: max_zero(v[b], out[b]), n), 300)
            print(f"| {n:,} | {whole * 1e6:.1f} | {split * 1e6:.1f} |")
    go, back = threading.Event(), threading.Event()

    def echo() -> None:
        for _ in range(2001):
            go.wait()
            go.clear()
            back.set()

    helper = threading.Thread(target=echo, daemon=True)
    helper.start()
    trips = []
    for _ in range(2001):
        start = time.perf_counter()
        go.set()
        back.wait()
        back.clear()
        trips.append(time.perf_counter() - start)
    helper.join()
    print(f"\nA wake-up round trip between two threads (Event set, Event back): median "
          f"{statistics.median(trips[1:]) * 1e6:.1f} us, 90th percentile {np.percentile(trips[1:], 90) * 1e6:.1f} us")


def main() -> None:
    keep_freed_memory()
    print(f"SimpleConvNet, Adam, batch 100, float32, OpenBLAS {_blas().get('architecture')}\n")
    step_table()
    handoffs()


if __name__ == "__main__":
    main()

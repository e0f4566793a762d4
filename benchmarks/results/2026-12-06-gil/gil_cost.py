"""What two Python threads cost each other through the GIL: DeepConvNet's forward on 50 images
(one thread's part of a 2-thread predict at batch 100) and its training gradient on 50 (one
part of the "split" plan's step at batch 100), run alone, on two threads of one process (each
its own shallow copies of the layers, BLAS on one thread, as ``kernels.inference`` and
``models.batch_parts`` run them), and in two processes at once (no GIL shared), in
alternating rounds.

    python benchmarks/results/2026-12-06-gil/gil_cost.py [--rounds 5] [--seconds 1.5] [--core-cache MIB]

``--core-cache``: Winograd's chunks sized to that many MiB instead of the core's level-2 cache
(``cache_sizes.core_cache_bytes``): larger chunks, fewer NumPy calls a pass.

Per way: ms a pass (median over rounds of each round's mean), and on two threads the CPU time
a thread used per pass (``time.thread_time``) and its voluntary context switches per pass
(a thread that blocks, here on the GIL: ``resource.getrusage``).
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import subprocess
import sys
import threading
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy: BLAS on one thread, as in the parts

import numpy as np

import layerwise as lw
from layerwise.kernels import cache_sizes
from layerwise.kernels.memory import keep_freed_memory


def set_core_cache(mib: float | None) -> None:
    if mib:
        cache_sizes.core_cache_bytes = lambda: int(mib * 2**20)


def model_and_data(seed: int):
    model = lw.DeepConvNet(seed=0, dropout_mode="inverted", final_dropout=False, dtype=np.float32)
    rng = np.random.default_rng(seed)
    x = rng.random((50, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, 50)
    return model, x, t


def job(kind: str, model, x, t):
    """One pass: ``kind`` "forward" (evaluation mode) or "gradient" (a training step's part)."""
    layers = [copy.copy(layer) for layer in model._layers]
    part = copy.copy(model)
    part._layers = layers
    if kind == "forward":
        def run():
            h = x
            for layer in layers:
                h = layer.forward(h, train=False)
    else:
        def run():
            part.gradient(x, t)
    return run


def timed(run, seconds: float) -> tuple[float, float, int]:
    """(wall s a pass, CPU s a pass of this thread, passes) over at least ``seconds``."""
    run()
    t0, c0, n = time.perf_counter(), time.thread_time(), 0
    while time.perf_counter() - t0 < seconds:
        run()
        n += 1
    return (time.perf_counter() - t0) / n, (time.thread_time() - c0) / n, n


def pass_on_thread(run, seconds: float, out: dict, k: int) -> None:
    out[k] = timed(run, seconds)


def child(kind: str, seed: int, start_at: float, seconds: float, core_cache: float | None) -> None:
    keep_freed_memory()
    set_core_cache(core_cache)
    run = job(kind, *model_and_data(seed))
    run()
    time.sleep(max(0.0, start_at - time.time()))
    wall, _, _ = timed(run, seconds)
    print(wall)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--core-cache", type=float, default=None, metavar="MIB")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "SEED", "START_AT"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), float(args.child[2]), args.seconds, args.core_cache)
        return
    keep_freed_memory()
    set_core_cache(args.core_cache)
    print(f"OpenBLAS threads {os.environ['OPENBLAS_NUM_THREADS']}; DeepConvNet float32, 50 images a pass; "
          f"{args.rounds} rounds of {args.seconds} s a way; Winograd chunks of "
          f"{cache_sizes.core_cache_bytes() / 2**20:g} MiB")
    print()
    print("| pass | alone ms | 2 threads ms | x alone | thread CPU ms | blocked ms | GIL waits a pass "
          "| 2 processes ms | x alone |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for kind in ("forward", "gradient"):
        runs = [job(kind, *model_and_data(seed)) for seed in (0, 1)]
        alone, two, cpu, waits, procs = [], [], [], [], []
        for _ in range(args.rounds):
            alone.append(timed(runs[0], args.seconds)[0])
            out: dict[int, tuple[float, float, int]] = {}
            switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
            threads = [threading.Thread(target=pass_on_thread, args=(runs[k], args.seconds, out, k)) for k in (0, 1)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            switches = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - switches
            two.append(statistics.mean(out[k][0] for k in out))
            cpu.append(statistics.mean(out[k][1] for k in out))
            waits.append(switches / sum(out[k][2] for k in out))
            start_at = time.time() + 4.0  # both children loaded and warm by then
            command = [sys.executable, __file__, "--seconds", str(args.seconds)]
            if args.core_cache:
                command += ["--core-cache", str(args.core_cache)]
            children = [subprocess.Popen([*command, "--child", kind, str(seed), str(start_at)],
                                         stdout=subprocess.PIPE, text=True) for seed in (0, 1)]
            procs.append(statistics.mean(float(c.communicate()[0].split()[-1]) for c in children))
        a, w, c, p = (statistics.median(v) * 1e3 for v in (alone, two, cpu, procs))
        print(f"| {kind} | {a:.2f} | {w:.2f} | {w / a:.2f} | {c:.2f} | {w - c:.2f} | "
              f"{statistics.median(waits):.0f} | {p:.2f} | {p / a:.2f} |")


if __name__ == "__main__":
    main()

"""The fused run's chunk size: SimpleConvNet's training step (gradient and Adam, batch 100 of
Fashion-MNIST, float32) with the run's chunks holding 512 KiB to 8 MiB of col, ms, median of
7 rounds of 40 steps, the sizes taking turns; on 1 thread, and on 2 with layerwise owning the
threads (the Trainer's "owned" plan, which spreads the chunks over them). It sets both budgets
``kernels.fused`` reads: ``tuning.core_cache_bytes`` on one thread, ``tuning.conv_chunk_bytes``
on several.

    python benchmarks/results/2026-12-05-fusion/chunk_sizes.py

Output: chunk_sizes-skylakex.txt.
"""

import contextlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import layerwise as lw
from layerwise.kernels import fused, threads
from layerwise.kernels.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.worker import _blas

SIZES = [2**19, 2**20, 2**21, 2**22, 2**23]


def main() -> None:
    keep_freed_memory()
    model = lw.SimpleConvNet((1, 28, 28), {"filter_num": 30, "filter_size": 5}, 100, 10, seed=0, dtype=np.float32)
    (x_train, t_train), _ = lw.load_fashion_mnist(flatten=False, download=False, progress=False)
    xs = [x_train[i * 100 : (i + 1) * 100].astype(np.float32) for i in range(40)]
    ts = [t_train[i * 100 : (i + 1) * 100] for i in range(40)]
    optimizer = lw.Adam(lr=1e-3)
    print(f"SimpleConvNet training step, batch 100, float32, OpenBLAS {_blas().get('architecture')} kernels; "
          "ms, median of 7 rounds of 40 steps")
    print("| col in a chunk | " + " | ".join(f"{size >> 10} KiB" for size in SIZES) + " |")
    print("|---|" + "--:|" * len(SIZES))
    original = fused.core_cache_bytes, fused.conv_chunk_bytes
    for label, threads_used in (("1 thread", 1), ("2 threads, owned", 2)):
        spent: dict[int, list[float]] = {size: [] for size in SIZES}
        context = threadpool_limits(1, user_api="blas") if threads_used == 1 else contextlib.nullcontext()
        with context:
            if threads_used == 2:
                threads.run_threads = lambda: (2, True)
            with threads.owned_threads() if threads_used == 2 else contextlib.nullcontext():
                for _ in range(7):
                    for size in SIZES:
                        fused.core_cache_bytes = fused.conv_chunk_bytes = lambda size=size: size
                        for i in range(3):
                            optimizer.update(model.params, model.gradient(xs[i], ts[i]))
                        start = time.perf_counter()
                        for i in range(40):
                            optimizer.update(model.params, model.gradient(xs[i], ts[i]))
                        spent[size].append((time.perf_counter() - start) / 40)
        fused.core_cache_bytes, fused.conv_chunk_bytes = original
        print(f"| {label} | " + " | ".join(f"{statistics.median(spent[size]) * 1e3:.2f}" for size in SIZES) + " |")


if __name__ == "__main__":
    main()

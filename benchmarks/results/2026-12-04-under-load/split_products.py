"""One 128x784 @ 784x512 float32 product after another, split in several ways, alone or beside a load.

    python benchmarks/results/2026-12-04-under-load/split_products.py MODE LOAD

MODE: blas1 (whole, BLAS on one thread), blas2 (whole, BLAS on two), pool (row halves, the
second half handed to a fixed pool thread), steal2 / steal4 (2 or 4 row parts, each taken by
whichever of two threads is free, as ``kernels.threads.in_parts`` does). LOAD: none, python or
numpy (``benchmarks.load_worker``). Prints products per second.
"""

import collections
import itertools
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[3]


def main(mode: str, load: str, rows: int = 128) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random((rows, 784), np.float32), rng.random((784, 512), np.float32)
    c = np.empty((rows, 512), np.float32)
    pool = ThreadPoolExecutor(1)
    parts = int(mode[5:] or 2) if mode.startswith("steal") else 2
    bounds = [rows * k // parts for k in range(parts + 1)]

    def steal() -> None:
        todo = collections.deque(itertools.pairwise(bounds))
        left, done = [len(todo)], threading.Condition()

        def run() -> None:
            while True:
                try:
                    lo, hi = todo.popleft()
                except IndexError:
                    return
                np.matmul(a[lo:hi], b, out=c[lo:hi])
                with done:
                    left[0] -= 1
                    done.notify_all()

        pool.submit(run)
        run()
        with done:
            while left[0]:
                done.wait()

    def one() -> None:
        if mode in ("blas1", "blas2"):
            np.matmul(a, b, out=c)
        elif mode == "pool":
            half = rows // 2
            future = pool.submit(np.matmul, a[half:], b, out=c[half:])
            np.matmul(a[:half], b, out=c[:half])
            future.result()
        else:
            steal()

    proc = None
    if load != "none":
        proc = subprocess.Popen([sys.executable, "-m", "benchmarks.load_worker", load], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        proc.stdout.readline()
        time.sleep(0.5)
    try:
        with threadpool_limits(2 if mode == "blas2" else 1):
            for _ in range(50):
                one()
            n, start = 2000, time.perf_counter()
            for _ in range(n):
                one()
            wall = time.perf_counter() - start
    finally:
        if proc:
            proc.kill()
    print(f"{mode:8s} {load:7s}: {n / wall:.0f} products/s")


if __name__ == "__main__":
    main(*sys.argv[1:3])

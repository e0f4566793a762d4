"""Two copies of DeepConvNet's forward at once: as two threads of one process against two
processes, each copy on its own network, BLAS on one thread; the first 1,000 Fashion-MNIST
test images at 50 a call, 3 passes, the best of 3 rounds. Run with the convolutions' ways as
this machine measured them (Winograd where faster) and with ``LAYERWISE_TUNING=0`` (im2col
everywhere); the ratio is two at once over one alone (1.0: no interference, 2.0: serialised).
Then each Winograd transform alone and beside a second thread, with the voluntary context
switches (waits, for the GIL among others) the second case made.

    python benchmarks/results/2026-12-05-winograd-blas/threads_vs_processes.py [REV]

REV names the code in the output (the transforms are whatever ``kernels.winograd`` is now).
Output: threads_vs_processes-skylakex.txt (at 1add79c's winograd.py and at HEAD's).
"""

import multiprocessing
import os
import resource
import sys
import threading
import time

import numpy as np

RUNS = 3


def forward_passes(ready=None, go=None) -> float:
    """Seconds of RUNS passes over the images, on a network of this process's own."""
    import layerwise as lw

    lw.set_num_threads(1)
    (_, _), (x, _) = lw.load_fashion_mnist(flatten=False, download=False, progress=False)
    x = x[:1000]
    model = lw.DeepConvNet(seed=0, dropout_mode="inverted", final_dropout=False, dtype=np.float32)

    def passes() -> None:
        for _ in range(RUNS):
            for start in range(0, len(x), 50):
                model.predict(x[start : start + 50])

    passes()  # warm-up: the ways measured, the caches filled
    if ready is not None:
        ready.wait()
        go.wait()
    start = time.perf_counter()
    passes()
    return time.perf_counter() - start


class _Gate:
    """Passed where ``forward_passes`` waits before timing: all parties ready, then the go."""

    def __init__(self, ready) -> None:
        self.ready = ready

    def wait(self) -> None:
        self.ready.wait()


def at_once_in_threads() -> float:
    """Wall seconds of two threads' timed passes, started together once both have warmed up."""
    ready, go = threading.Barrier(3), threading.Event()
    workers = [threading.Thread(target=forward_passes, args=(_Gate(ready), go)) for _ in range(2)]
    for worker in workers:
        worker.start()
    ready.wait()
    began = time.perf_counter()
    go.set()
    for worker in workers:
        worker.join()
    return time.perf_counter() - began


def _in_process(ready, go, out) -> None:
    out.put(forward_passes(_Gate(ready), go))


def at_once_in_processes() -> float:
    context = multiprocessing.get_context("spawn")
    ready, go, out = context.Barrier(3), context.Event(), context.Queue()
    workers = [context.Process(target=_in_process, args=(ready, go, out)) for _ in range(2)]
    for worker in workers:
        worker.start()
    ready.wait()
    began = time.perf_counter()
    go.set()
    results = [out.get(timeout=600) for _ in workers]
    elapsed = time.perf_counter() - began
    for worker in workers:
        worker.join()
    assert len(results) == 2
    return elapsed


def transforms() -> None:
    from threadpoolctl import threadpool_limits

    from layerwise.kernels import winograd
    from layerwise.kernels.memory import keep_freed_memory

    keep_freed_memory()
    rng = np.random.default_rng(0)
    x_cl = rng.standard_normal((5, 28, 28, 16)).astype(np.float32)  # a chunk of conv2's input
    M = rng.standard_normal((16, 5 * 14 * 14, 16)).astype(np.float32)
    out = np.empty((5 * 28 * 28, 16), np.float32)
    steps = {"input transform": lambda: winograd._input_transform(x_cl, 1, 14, 14),
             "output transform": lambda: winograd._output_transform(M, out, 14, 14, 28, 28)}
    calls = 600
    with threadpool_limits(1):
        for name, step in steps.items():
            def loop(step=step) -> None:
                for _ in range(calls):
                    step()

            loop()
            start = time.perf_counter()
            loop()
            alone = time.perf_counter() - start
            before = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw
            pair = [threading.Thread(target=loop) for _ in range(2)]
            start = time.perf_counter()
            for thread in pair:
                thread.start()
            for thread in pair:
                thread.join()
            beside = time.perf_counter() - start
            waits = resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw - before
            print(f"  {name}: {alone / calls * 1e6:.1f} us a call alone, two threads at once x{beside / alone:.2f}, "
                  f"{waits} voluntary context switches in {2 * calls} calls", flush=True)


def main() -> None:
    label = sys.argv[1] if len(sys.argv) > 1 else "this tree"
    print(f"{label}, LAYERWISE_TUNING={os.environ.get('LAYERWISE_TUNING', '1')}:", flush=True)
    alone = min(forward_passes() for _ in range(3))
    threads = min(at_once_in_threads() for _ in range(3))
    processes = min(at_once_in_processes() for _ in range(3))
    print(f"  one copy alone {alone * 1e3:.0f} ms; two at once as threads {threads * 1e3:.0f} ms "
          f"(x{threads / alone:.2f}), as processes {processes * 1e3:.0f} ms (x{processes / alone:.2f})", flush=True)
    if os.environ.get("LAYERWISE_TUNING", "1") != "0":
        transforms()


if __name__ == "__main__":
    main()

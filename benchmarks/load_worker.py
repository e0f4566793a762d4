"""The processes ``under_load.py`` starts: one network training, or a load beside it.

    python -m benchmarks.load_worker train '<json job>'   # measured training, then untimed
    python -m benchmarks.load_worker python                # a pure-Python busy loop
    python -m benchmarks.load_worker numpy                 # a NumPy matrix-product loop

A training worker imports NumPy before layerwise, as a user's script or notebook does, and
sets no thread limits: it runs with what the library chooses by default (or what the
environment the runner gives it says). It loads the data, builds the network, warms up, prints
``ready`` and waits for one line on stdin ("go"), so that two copies start timing together.
It then times ``reps`` passes of ``steps`` training steps each, prints them as one JSON line,
and goes on training, untimed, until it is terminated: a copy that finishes first keeps
loading the machine while the other one is still being measured.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np  # first, as in a user's script


def _train(job: dict) -> None:
    from .nets import NETS
    from .worker import _layerwise_trainer, _load

    spec = NETS[job["net"]]
    x, t, _, _ = _load(spec.flatten)
    n = job["steps"] * spec.batch_size
    x, t = x[:n], t[:n]
    seed = 0
    model = spec.build(seed)
    if job["impl"] == "layerwise":
        trainer = _layerwise_trainer(spec, model, x, t, seed)

        def one_pass() -> None:
            trainer.epochs = trainer.epoch + 1
            trainer.fit()

        threads = _layerwise_threads()
        shared = trainer.shared_thread_steps if hasattr(trainer, "shared_thread_steps") else {}
    else:
        import torch

        from . import torch_nets

        tmodel = torch_nets.to_torch(model)
        run = torch_nets.TorchRun(tmodel, torch_nets.make_optimizer(spec.optimizer, tmodel.parameters(), spec.lr),
                                  x, t, spec.batch_size)
        orders = np.random.default_rng(seed)

        def one_pass() -> None:
            run.epoch(orders.permutation(n))

        threads = torch.get_num_threads()
        shared = {}
    for _ in range(job["warmup"]):
        one_pass()
    print("ready", flush=True)
    sys.stdin.readline()
    cpu0, wall0 = os.times(), time.perf_counter()
    times = []
    for _ in range(job["reps"]):
        start = time.perf_counter()
        one_pass()
        times.append(time.perf_counter() - start)
    cpu1, wall = os.times(), time.perf_counter() - wall0
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    # Steps per BLAS thread count while layerwise shared the cores (warm-up included).
    shared_steps = {str(k): v for k, v in sorted(shared.items())}
    print(json.dumps({"times": times, "cpu_cores": cpu / wall, "threads": threads, "shared_steps": shared_steps}),
          flush=True)
    while True:  # load for whoever is still measured; the runner terminates this process
        one_pass()


def _layerwise_threads() -> int:
    import layerwise

    get = getattr(layerwise, "get_num_threads", None)  # absent before the thread policy
    if get is not None:
        return get()
    from threadpoolctl import threadpool_info

    return max((lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"), default=1)


def _python_loop() -> None:
    print("ready", flush=True)
    n = 0
    while True:
        n += 1


def _numpy_loop() -> None:
    """Matrix products with NumPy's defaults: OpenBLAS on every core, spinning between calls."""
    a = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    out = np.empty_like(a)
    print("ready", flush=True)
    while True:
        np.matmul(a, a, out=out)


def main(argv: list[str]) -> int:
    kind = argv[0]
    if kind == "train":
        _train(json.loads(argv[1]))
    elif kind == "python":
        _python_loop()
    elif kind == "numpy":
        _numpy_loop()
    else:
        raise SystemExit(f"unknown worker kind {kind!r}: train, python or numpy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Where a 784-50-10 training step's time goes, call by call, on 1 and on 2 BLAS threads.

    python benchmarks/results/2026-12-06-relu-in-place/mlp_small_step.py 2

THREADS: BLAS's threads. The step of the benchmark runner's mlp-small (SGD, batch 100), its
layers' forward and backward, the loss, the optimizer's update and a batch's gather, each
timed alone, 3,000 steps (the first 500 left out); medians in us. Why: on 2 threads the
784-50-10 epoch stays above 0.55 of PyTorch's where on 1 it reaches it, and the products are
not what grows.
"""

import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from benchmarks.nets import NETS
from benchmarks.worker import _load
from layerwise.kernels.memory import keep_freed_memory
from layerwise.optim import make_optimizer


def main() -> None:
    threads = int(sys.argv[1])
    keep_freed_memory()  # as the Trainer does
    spec = NETS["mlp-small"]
    x, t, _, _ = _load(spec.flatten, spec.train_images)
    model, optimizer = spec.build(0), make_optimizer(spec.optimizer, lr=spec.lr)
    xb, tb, rows = x[:100].copy(), t[:100].copy(), np.arange(100)
    layers, loss = list(model), model.loss_layer
    seconds: dict[str, list[float]] = {}

    def timed(name, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        seconds.setdefault(name, []).append(time.perf_counter() - start)
        return out

    with threadpool_limits(threads, user_api="blas"):
        for _ in range(3000):
            h = xb
            for j, layer in enumerate(layers):
                h = timed(f"forward {j} {layer.name}", layer.forward, h, True)
            timed("loss forward", loss.forward, h, tb)
            d = timed("loss backward", loss.backward, 1.0)
            for j in reversed(range(len(layers))):
                d = timed(f"backward {j} {layers[j].name}", layers[j].backward, d)
            grads = {name: layer.grads[key] for name, (layer, key) in model._param_slots.items()}
            timed("SGD update", optimizer.update, model.params, grads)
            timed("gather a batch", np.take, x, rows, 0)
    medians = {name: float(np.median(values[500:])) * 1e6 for name, values in seconds.items()}
    print(f"BLAS threads {threads}: " + ", ".join(f"{name} {us:.1f}" for name, us in medians.items())
          + f"; sum {sum(medians.values()):.0f} us")


if __name__ == "__main__":
    main()

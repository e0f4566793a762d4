"""Where SimpleConvNet's training step spends its time with its Convolution, Relu, Pooling run
as one step (``models.fusion``) and as three layers: the run's forward and backward, the rest
of the step (the Affine layers, the loss, Adam), and the whole step, ms per batch of 100
(Fashion-MNIST, float32, Adam 1e-3), BLAS on 1 thread, the two ways taking turns for 7 rounds
of 40 steps, median per round.

    python benchmarks/results/2026-12-05-fusion/run_parts.py

Output: run_parts-skylakex.txt (and run_parts-haswell.txt with OPENBLAS_CORETYPE=Haswell).
"""

import itertools
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import layerwise as lw
from layerwise.kernels.memory import keep_freed_memory
from layerwise.models import fusion

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.worker import _blas

WAYS = {"three layers": list, "fused": fusion.training_steps}


def main() -> None:
    keep_freed_memory()
    model = lw.SimpleConvNet((1, 28, 28), {"filter_num": 30, "filter_size": 5}, 100, 10, seed=0, dtype=np.float32)
    (x_train, t_train), _ = lw.load_fashion_mnist(flatten=False, download=False, progress=False)
    xs = [x_train[i * 100 : (i + 1) * 100].astype(np.float32) for i in range(40)]
    ts = [t_train[i * 100 : (i + 1) * 100] for i in range(40)]
    optimizer = lw.Adam(lr=1e-3)
    layers = list(model)
    parts = ("run forward", "rest of forward and loss", "rest of backward", "run backward", "Adam", "step")
    spent: dict[str, dict[str, list[float]]] = {way: {part: [] for part in parts} for way in WAYS}

    def step(way: str, i: int, totals: dict[str, float]) -> None:
        run = WAYS[way](layers[:3])
        marks = [time.perf_counter()]
        h = xs[i]
        for layer in run:
            h = layer.forward(h, train=True)
        marks.append(time.perf_counter())
        for layer in layers[3:]:
            h = layer.forward(h, train=True)
        model.loss_layer.forward(h, ts[i])
        marks.append(time.perf_counter())
        d = model.loss_layer.backward(1.0)
        for layer in reversed(layers[3:]):
            d = layer.backward(d)
        marks.append(time.perf_counter())
        for layer in reversed(run):
            d = layer.backward(d)
        marks.append(time.perf_counter())
        optimizer.update(model.params, {name: la.grads[key] for name, (la, key) in model._param_slots.items()})
        marks.append(time.perf_counter())
        for part, (a, b) in zip(parts, itertools.pairwise(marks), strict=False):
            totals[part] += b - a
        totals["step"] += marks[-1] - marks[0]

    with threadpool_limits(1, user_api="blas"):
        for way in WAYS:  # warm up: pages, the conv way's measurement
            for i in range(5):
                step(way, i, dict.fromkeys(parts, 0.0))
        for _ in range(7):
            for way in WAYS:
                totals = dict.fromkeys(parts, 0.0)
                for i in range(40):
                    step(way, i, totals)
                for part in parts:
                    spent[way][part].append(totals[part] / 40)
    blas = _blas()
    print(f"SimpleConvNet training step, batch 100, float32, 1 thread; OpenBLAS {blas.get('version')} "
          f"{blas.get('architecture')}; ms, median of 7 rounds of 40 steps")
    print("| part | three layers | fused | fused / layers |")
    print("|---|---|---|---|")
    for part in parts:
        a, b = (statistics.median(spent[way][part]) * 1e3 for way in WAYS)
        print(f"| {part} | {a:.2f} | {b:.2f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()

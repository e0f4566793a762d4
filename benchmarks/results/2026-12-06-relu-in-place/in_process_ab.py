"""The evaluation forward before and after the in-place ReLU, alternating in one process.

    python benchmarks/results/2026-12-06-relu-in-place/in_process_ab.py mlp-wide 100 2

NET BATCH THREADS: ``predict`` over the 10,000 test images in batches, 11 rounds, each round
the layers' own forwards one after another ("old", the loop before) and
``models.fusion.inference_forward`` ("new"); prints the medians and new/old per round. One
process for both, so a process's own speed (where its memory landed) cannot tell them apart.
"""

import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import layerwise.models.sequential as sequential
from benchmarks.nets import NETS
from benchmarks.worker import _load, _settle
from layerwise.kernels.memory import keep_freed_memory


def old_forward(layers, x):
    for layer in layers:
        x = layer.forward(x, train=False)
    return x


def main() -> None:
    net, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    keep_freed_memory()  # as after a training run (the benchmark runner's case)
    spec = NETS[net]
    _, _, x, _ = _load(spec.flatten, spec.train_images)
    model = spec.build(0)
    ways = {"old": old_forward, "new": sequential.inference_forward}
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    with threadpool_limits(threads, user_api="blas"):
        for _ in range(11):
            for name, forward in ways.items():
                sequential.inference_forward = forward
                _settle()
                start = time.perf_counter()
                for s in range(0, len(x), batch):
                    model.predict(x[s : s + batch])
                seconds[name].append(time.perf_counter() - start)
    ratios = [new / old for old, new in zip(seconds["old"], seconds["new"], strict=True)]
    medians = {name: f"{np.median(values) * 1e3:.1f} ms" for name, values in seconds.items()}
    print(f"{net} batch {batch}, {threads} threads: {medians}; new/old per round {np.median(ratios):.3f} "
          f"({min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()

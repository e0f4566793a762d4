"""Each layer of a DeepConvNet training step (float32, batch 100 of random images), forward and
backward timed apart, median of 20 steps; the thread count as the first argument (1 default).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/results/2026-12-05-conv-rows/deep_convnet_layers.py 1

Output: deep_convnet_layers-skylakex.txt.
"""

import sys
import time

import numpy as np

import layerwise as lw
from layerwise.kernels.memory import keep_freed_memory

lw.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
keep_freed_memory()
net = lw.DeepConvNet(dtype=np.float32, seed=0)
rng = np.random.default_rng(0)
x, t = rng.random((100, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 100)
layers = list(net)
forward: list[list[float]] = [[] for _ in layers]
backward: list[list[float]] = [[] for _ in layers]
for _ in range(25):
    h = x
    for i, layer in enumerate(layers):
        start = time.perf_counter()
        h = layer.forward(h, train=True)
        forward[i].append(time.perf_counter() - start)
    net.last_layer.forward(h, t)
    d = net.last_layer.backward()
    for i in reversed(range(len(layers))):
        start = time.perf_counter()
        d = layers[i].backward(d)
        backward[i].append(time.perf_counter() - start)
total = 0.0
for i, layer in enumerate(layers):
    f, b = np.median(forward[i][5:]) * 1e3, np.median(backward[i][5:]) * 1e3
    total += f + b
    shape = str(layer.params["W"].shape) if "W" in layer.params else ""
    print(f"{i:2d} {type(layer).__name__:12s} {shape:16s} forward {f:6.2f} ms  backward {b:6.2f} ms")
print(f"total {total:.2f} ms")

"""DeepConvNet's evaluation-mode layers on 50 images, one thread alone and then two threads side
by side (each its own 50 images and layer copies, BLAS on one thread each, as predict runs a
batch of 100 on 2 threads), ms per layer, 20 passes; then the two threads with convolution chunks
of 1, 2 and 4 MiB.

    python benchmarks/results/2026-12-05-zen4/predict_side_by_side.py

Output: predict_side_by_side-skylakex.txt.
"""

import copy
import threading
import time

import numpy as np

import layerwise as lw
from layerwise.kernels import tuning
from layerwise.kernels.memory import keep_freed_memory

keep_freed_memory()
lw.set_num_threads(1)
net = lw.DeepConvNet(dtype=np.float32, seed=0)
rng = np.random.default_rng(0)
images = [rng.random((50, 1, 28, 28), dtype=np.float32) for _ in range(2)]
layers = list(net)
PASSES = 20


def forward(x, own, spent):
    for i, layer in enumerate(own):
        start = time.perf_counter()
        x = layer.forward(x, train=False)
        spent[i] += time.perf_counter() - start


def side_by_side(owns, spents):
    def worker(k):
        for _ in range(PASSES):
            forward(images[k], owns[k], spents[k])

    for k in range(2):
        forward(images[k], owns[k], [0.0] * len(layers))
    workers = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - start


alone_layers = [copy.copy(layer) for layer in layers]
alone = [0.0] * len(layers)
for _ in range(3):
    forward(images[0], alone_layers, [0.0] * len(layers))
start = time.perf_counter()
for _ in range(PASSES):
    forward(images[0], alone_layers, alone)
single = time.perf_counter() - start
owns = [[copy.copy(layer) for layer in layers] for _ in range(2)]
spents = [[0.0] * len(layers) for _ in range(2)]
both = side_by_side(owns, spents)
print(f"one thread, 50 images x {PASSES}: {single * 1e3:.0f} ms; two threads side by side, "
      f"each 50 images x {PASSES}: {both * 1e3:.0f} ms")
for i, layer in enumerate(layers):
    a, b, c = (alone[i] / PASSES * 1e3, spents[0][i] / PASSES * 1e3, spents[1][i] / PASSES * 1e3)
    if a > 0.05:
        print(f"{i:2d} {type(layer).__name__:12s} alone {a:6.2f} ms, side by side {b:6.2f} / {c:6.2f} ms "
              f"({(b + c) / 2 / a:.2f}x)")
for mib in (1, 2, 4, 4, 2, 1):
    tuning.conv_chunk_bytes = lambda mib=mib: mib * 2**20
    spent = side_by_side(owns, [[0.0] * len(layers) for _ in range(2)])
    print(f"convolution chunks of {mib} MiB: two threads side by side {spent * 1e3:.0f} ms")

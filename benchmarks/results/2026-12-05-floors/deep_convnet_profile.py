"""Where a DeepConvNet training step's time goes: cProfile over 100 steps (Adam 1e-3, batch 100
of Fashion-MNIST, float32, 1 thread), by function's own time.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/results/2026-12-05-floors/deep_convnet_profile.py

Output: deep_convnet_profile-skylakex.txt. The ``chunk`` rows of kernels/conv.py are the
products (forward, dW, dx by correlation), the ``<lambda>`` of im2col its window copies.
"""

import cProfile
import pstats

import numpy as np

import layerwise as lw
from layerwise.kernels.memory import keep_freed_memory

lw.set_num_threads(1)
keep_freed_memory()
model = lw.DeepConvNet(seed=0, dropout_mode="inverted", final_dropout=False, dtype=np.float32)
(x_train, t_train), _ = lw.load_fashion_mnist(flatten=False, download=False, progress=False)
xs = [x_train[i * 100 : (i + 1) * 100].astype(np.float32) for i in range(20)]
ts = [t_train[i * 100 : (i + 1) * 100] for i in range(20)]
optimizer = lw.Adam(lr=1e-3)


def run(steps: int) -> None:
    for i in range(steps):
        optimizer.update(model.params, model.gradient(xs[i % 20], ts[i % 20]))


run(10)
profile = cProfile.Profile()
profile.enable()
run(100)
profile.disable()
pstats.Stats(profile).sort_stats("tottime").print_stats(16)

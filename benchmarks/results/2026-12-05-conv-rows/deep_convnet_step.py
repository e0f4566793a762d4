"""A DeepConvNet training step (Adam 1e-3, batch 100 of Fashion-MNIST, float32) of layerwise
(``models.batch_parts.gradient`` + Adam; on 2 threads under the split plan) against PyTorch's
(same initial weights), alternating 8 rounds of 20 steps in one process.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/results/2026-12-05-conv-rows/deep_convnet_step.py 1
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/results/2026-12-05-conv-rows/deep_convnet_step.py 2

Output: deep_convnet_step-skylakex.txt.
"""

import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.torch_nets

import layerwise as lw
from benchmarks.torch_nets import to_torch
from layerwise.kernels import threads
from layerwise.kernels.memory import keep_freed_memory
from layerwise.models.batch_parts import gradient

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(n)
lw.set_num_threads(n)
keep_freed_memory()
model = lw.DeepConvNet(seed=0, dropout_mode="inverted", final_dropout=False, dtype=np.float32)
net = to_torch(model).train()
(x_train, t_train), _ = lw.load_fashion_mnist(flatten=False, download=False, progress=False)
xs = [x_train[i * 100 : (i + 1) * 100].astype(np.float32) for i in range(20)]
ts = [t_train[i * 100 : (i + 1) * 100] for i in range(20)]
torch_optimizer, lw_optimizer = torch.optim.Adam(net.parameters(), 1e-3), lw.Adam(lr=1e-3)


def torch_step(i: int) -> None:
    torch_optimizer.zero_grad()
    torch.nn.functional.cross_entropy(net(torch.from_numpy(xs[i % 20])), torch.from_numpy(ts[i % 20]).long()).backward()
    torch_optimizer.step()


def lw_step(i: int) -> None:
    lw_optimizer.update(model.params, gradient(model, xs[i % 20], ts[i % 20]))


with threads.split_batches() if n > 1 else contextlib.nullcontext():
    for i in range(10):
        torch_step(i)
        lw_step(i)
    torch_ms, lw_ms = [], []
    for _ in range(8):
        for step, times in ((torch_step, torch_ms), (lw_step, lw_ms)):
            start = time.perf_counter()
            for i in range(20):
                step(i)
            times.append((time.perf_counter() - start) / 20 * 1e3)
print(f"threads {n}: PyTorch {np.median(torch_ms):.1f} ms a step, layerwise {np.median(lw_ms):.1f} ms, "
      f"ratio {np.median(lw_ms) / np.median(torch_ms):.2f}")

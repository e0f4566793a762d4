"""Each layer of DeepConvNet's evaluation-mode forward, layerwise's and PyTorch's (the same
weights, float32, batch 100 of random images), median of 25 passes after 5; the thread count
as the first argument (1 default).

    env -u OPENBLAS_CORETYPE python benchmarks/results/2026-12-05-relu-chunks/deep_convnet_infer_layers.py 1

Output: deep_convnet_infer_layers-skylakex.txt.
"""

import statistics
import sys
import time

import numpy as np
import torch

import layerwise as lw
from layerwise.kernels.memory import keep_freed_memory

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
lw.set_num_threads(threads)
torch.set_num_threads(threads)
keep_freed_memory()
net = lw.DeepConvNet(dtype=np.float32, seed=0)
x = np.random.default_rng(0).random((100, 1, 28, 28), dtype=np.float32)
layers = list(net)


def twin(layer: lw.layers.Layer) -> torch.nn.Module:
    """The PyTorch module computing what ``layer`` does in evaluation mode, with its weights."""
    kind = type(layer).__name__
    if kind == "Convolution":
        W = layer.params["W"]
        conv = torch.nn.Conv2d(W.shape[1], W.shape[0], W.shape[2], layer.stride, layer.pad)
        conv.weight.data, conv.bias.data = torch.from_numpy(W.copy()), torch.from_numpy(layer.params["b"].copy())
        return conv
    if kind == "Affine":
        W = layer.params["W"]
        affine = torch.nn.Linear(W.shape[0], W.shape[1])
        affine.weight.data, affine.bias.data = torch.from_numpy(W.T.copy()), torch.from_numpy(layer.params["b"].copy())
        return torch.nn.Sequential(torch.nn.Flatten(), affine)
    if kind == "Pooling":
        return torch.nn.MaxPool2d(layer.pool_h, layer.stride, layer.pad)
    return torch.nn.ReLU() if kind == "Relu" else torch.nn.Identity()  # Dropout: identity when evaluating


modules = [twin(layer) for layer in layers]
ours: list[list[float]] = [[] for _ in layers]
theirs: list[list[float]] = [[] for _ in layers]
with torch.no_grad():
    for _ in range(30):
        h = x
        for i, layer in enumerate(layers):
            start = time.perf_counter()
            h = layer.forward(h, train=False)
            ours[i].append(time.perf_counter() - start)
        t = torch.from_numpy(x)
        for i, module in enumerate(modules):
            start = time.perf_counter()
            t = module(t)
            theirs[i].append(time.perf_counter() - start)
print(f"{threads} thread(s), batch 100, ms")
total_ours = total_theirs = 0.0
for i, layer in enumerate(layers):
    a, b = statistics.median(ours[i][5:]) * 1e3, statistics.median(theirs[i][5:]) * 1e3
    total_ours, total_theirs = total_ours + a, total_theirs + b
    print(f"{i:2d} {type(layer).__name__:12s} layerwise {a:6.2f}  PyTorch {b:6.2f}")
print(f"total        layerwise {total_ours:6.2f}  PyTorch {total_theirs:6.2f}")

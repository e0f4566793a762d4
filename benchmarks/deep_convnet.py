"""DeepConvNet: inference on the 10,000 MNIST-format test images against PyTorch CPU eager
(same weights, same threads, alternating, median of repeats), and the im2col memory of one
training step at batch 100.

    python -m benchmarks.deep_convnet [--threads 1 2] [--reps 3] [--batch 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc

import numpy as np


def torch_twin(model):
    """A torch.nn.Sequential computing the same function as a layerwise DeepConvNet in eval mode."""
    import torch
    from torch import nn

    from layerwise.layers import Affine, Convolution, Dropout, Pooling, ReLU

    modules = []
    for layer in model.layers:
        if isinstance(layer, Convolution):
            fn, c, fh, fw = layer.W.shape
            conv = nn.Conv2d(c, fn, (fh, fw), stride=layer.stride, padding=layer.pad)
            conv.weight.data = torch.from_numpy(layer.W.copy())
            conv.bias.data = torch.from_numpy(layer.b.copy())
            modules.append(conv)
        elif isinstance(layer, Pooling):
            modules.append(nn.MaxPool2d((layer.pool_h, layer.pool_w), layer.stride))
        elif isinstance(layer, ReLU):
            modules.append(nn.ReLU())
        elif isinstance(layer, Affine):
            if not any(isinstance(m, nn.Linear) for m in modules):
                modules.append(nn.Flatten())
            linear = nn.Linear(*layer.W.shape)
            linear.weight.data = torch.from_numpy(layer.W.T.copy())
            linear.bias.data = torch.from_numpy(layer.b.copy())
            modules.append(linear)
        elif isinstance(layer, Dropout):
            modules.append(nn.Identity())  # inverted dropout is the identity at test time
    return nn.Sequential(*modules).eval()


def im2col_memory(model, x: np.ndarray, t: np.ndarray) -> tuple[int, int, int]:
    """(sum of the im2col buffers alive during a step, the largest one, traced peak of the step)."""
    from layerwise.layers import Convolution

    model.gradient(x, t)  # warm-up: the first step allocates optimizer-free caches too
    tracemalloc.start()
    model.gradient(x, t)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    cols = [layer.col.nbytes for layer in model.layers if isinstance(layer, Convolution)]
    return sum(cols), max(cols), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    import layerwise as lw

    (_, _), (x, t) = lw.load_fashion_mnist(flatten=False, download=False, progress=False)
    model = lw.DeepConvNet(seed=0, dropout_mode="inverted", final_dropout=False)
    twin = torch_twin(model)
    with torch.no_grad():
        same = np.array_equal(model.predict(x[:500]).argmax(1), twin(torch.from_numpy(x[:500])).argmax(1).numpy())
    print(f"DeepConvNet float32, {len(x)} test images, batch {args.batch}; predictions equal torch: {same}")
    print(f"load average {os.getloadavg()[0]:.2f}")

    def run_layerwise() -> None:
        for i in range(0, len(x), args.batch):
            model.predict(x[i : i + args.batch])

    def run_torch() -> None:
        xt = torch.from_numpy(x)
        with torch.no_grad():
            for i in range(0, len(x), args.batch):
                twin(xt[i : i + args.batch])

    print("threads  layerwise s  pytorch s  ratio lw/PT  layerwise img/s  pytorch img/s")
    for n in args.threads:
        torch.set_num_threads(n)
        with threadpool_limits(n, user_api="blas"):
            times = {"lw": [], "pt": []}
            for rep in range(args.reps):
                order = [("lw", run_layerwise), ("pt", run_torch)]
                for key, fn in order if rep % 2 == 0 else order[::-1]:
                    start = time.perf_counter()
                    fn()
                    times[key].append(time.perf_counter() - start)
            lw_s, pt_s = statistics.median(times["lw"]), statistics.median(times["pt"])
            print(f"{n:>7}  {lw_s:11.2f}  {pt_s:9.2f}  {lw_s / pt_s:11.2f}  {len(x) / lw_s:15.0f}  "
                  f"{len(x) / pt_s:13.0f}")
    total, largest, peak = im2col_memory(model, x[:100], t[:100])
    print(f"im2col buffers of one training step at batch 100: {total / 2**20:.1f} MiB in all "
          f"(largest {largest / 2**20:.1f} MiB); traced peak of the step {peak / 2**20:.1f} MiB")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

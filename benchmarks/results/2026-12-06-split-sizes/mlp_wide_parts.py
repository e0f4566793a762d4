"""Where 784-512-512-10's 2-thread epoch goes, layerwise against PyTorch: the forward and
backward (gradient) and the Adam update, seconds an epoch of 468 steps of 128 images, each side
on 2 threads as it runs by itself (layerwise: BLAS on 2 threads, its update on one; PyTorch:
its own thread pool for both), alternating epoch by epoch.

    python benchmarks/results/2026-12-06-split-sizes/mlp_wide_parts.py [EPOCHS]

Output: mlp_wide_parts-skylakex.txt.
"""

import sys
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

import layerwise as lw
from layerwise.kernels.memory import keep_freed_memory

STEPS, BATCH = 468, 128


def main(epochs: int) -> None:
    keep_freed_memory()
    torch.set_num_threads(2)
    model = lw.MultiLayerNet(784, [512, 512], 10, weight_init_std="relu", seed=0, dtype=np.float32)
    (x, t), _ = lw.load_fashion_mnist(flatten=True, download=False, progress=False)
    x = x.astype(np.float32)
    optimizer = lw.Adam(lr=1e-3)
    net = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 512), torch.nn.ReLU(),
                              torch.nn.Linear(512, 10))
    torch_optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, tt = torch.from_numpy(x), torch.from_numpy(t.astype(np.int64))
    rng = np.random.default_rng(0)

    def ours(order: np.ndarray) -> tuple[float, float]:
        grad = update = 0.0
        for i in range(STEPS):
            rows = order[i * BATCH:(i + 1) * BATCH]
            start = time.perf_counter()
            grads = model.gradient(x[rows], t[rows])
            middle = time.perf_counter()
            optimizer.update(model.params, grads)
            grad, update = grad + middle - start, update + time.perf_counter() - middle
        return grad, update

    def theirs(order: np.ndarray) -> tuple[float, float]:
        grad = update = 0.0
        rows_all = torch.from_numpy(order)
        for i in range(STEPS):
            rows = rows_all[i * BATCH:(i + 1) * BATCH]
            start = time.perf_counter()
            torch_optimizer.zero_grad(set_to_none=True)
            loss_fn(net(xt[rows]), tt[rows]).backward()
            middle = time.perf_counter()
            torch_optimizer.step()
            grad, update = grad + middle - start, update + time.perf_counter() - middle
        return grad, update

    print("784-512-512-10, Adam, batch 128, 2 threads; seconds an epoch of 468 steps")
    print("| epoch | lw gradient | lw update | lw | PT gradient | PT update | PT | lw / PT |")
    print("|--:|--:|--:|--:|--:|--:|--:|--:|")
    with threadpool_limits(2, user_api="blas"):
        for epoch in range(epochs):
            order = rng.permutation(len(x))
            a = ours(order)
            time.sleep(0.3)
            b = theirs(order)
            time.sleep(0.3)
            print(f"| {epoch + 1} | {a[0]:.2f} | {a[1]:.2f} | {sum(a):.2f} | {b[0]:.2f} | {b[1]:.2f} | {sum(b):.2f} | "
                  f"{sum(a) / sum(b):.2f} |", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 8)

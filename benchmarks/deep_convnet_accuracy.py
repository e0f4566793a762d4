"""How far the book's DeepConvNet gets on Fashion-MNIST in a few epochs, in PyTorch.

    python -m benchmarks.deep_convnet_accuracy [--dropout 0.5] [--hidden 50] [--schedule constant|cosine]
                                               [--standardize] [--batchnorm] [--epochs 5] [--seed 0]

The architecture of ``layerwise.DeepConvNet`` (six 3x3 convolutions 16-16-32-32-64-64 with pads
1-1-1-2-1-1, max-pooling after every second one, Affine 1024-hidden, ReLU, Dropout, Affine
hidden-10), He-initialised, trained with Adam lr 0.001 on batches of 100, evaluated on the
10,000 test images after every epoch. It answers "is a shortfall the library's or the
network's?": layerwise computes the same function as this model (tests/test_conv.py,
tests/test_book_convnets.py), so what PyTorch reaches here is what the architecture reaches.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def build(hidden: int, dropout: float, batchnorm: bool):
    from torch import nn

    def conv(c_in: int, c_out: int, pad: int) -> list:
        layer = nn.Conv2d(c_in, c_out, 3, padding=pad)
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        nn.init.zeros_(layer.bias)
        return [layer, nn.BatchNorm2d(c_out)] if batchnorm else [layer]

    layers: list = []
    for i, (c_in, c_out, pad) in enumerate([(1, 16, 1), (16, 16, 1), (16, 32, 1), (32, 32, 2), (32, 64, 1),
                                            (64, 64, 1)]):
        layers += [*conv(c_in, c_out, pad), nn.ReLU()]
        if i % 2 == 1:
            layers.append(nn.MaxPool2d(2))
    fc1, fc2 = nn.Linear(64 * 4 * 4, hidden), nn.Linear(hidden, 10)
    for fc in (fc1, fc2):
        nn.init.kaiming_normal_(fc.weight, nonlinearity="relu")
        nn.init.zeros_(fc.bias)
    return nn.Sequential(*layers, nn.Flatten(), fc1, nn.ReLU(), nn.Dropout(dropout), fc2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dropout", type=float, default=0.5)
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--schedule", choices=("constant", "cosine"), default="constant")
    parser.add_argument("--standardize", action="store_true", help="zero-mean, unit-variance inputs")
    parser.add_argument("--batchnorm", action="store_true", help="BatchNorm2d after every convolution")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch
    from torch import nn

    import layerwise as lw

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    (x, t), (x_test, t_test) = lw.load_fashion_mnist(flatten=False, download=False, progress=False)
    if args.standardize:
        mean, std = x.mean(), x.std()
        x, x_test = (x - mean) / std, (x_test - mean) / std
    model = build(args.hidden, args.dropout, args.batchnorm)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    steps = args.epochs * (len(x) // 100)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if args.schedule == "cosine" else None
    xs, ts, xs_test = torch.from_numpy(x), torch.from_numpy(t.astype(np.int64)), torch.from_numpy(x_test)
    loss_fn, rng = nn.CrossEntropyLoss(), np.random.default_rng(args.seed)
    print(f"DeepConvNet in PyTorch: {vars(args)}")
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        model.train()
        for idx in rng.permutation(len(x)).reshape(-1, 100):
            idx = torch.from_numpy(idx)
            optimizer.zero_grad()
            loss_fn(model(xs[idx]), ts[idx]).backward()
            optimizer.step()
            if schedule is not None:
                schedule.step()
        model.eval()
        with torch.no_grad():
            predicted = torch.cat([model(xs_test[i : i + 1000]).argmax(1) for i in range(0, len(x_test), 1000)])
        accuracy = float((predicted.numpy() == t_test).mean())
        print(f"epoch {epoch}  test acc {accuracy:.4f}  {time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()

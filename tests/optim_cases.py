"""The optimizer cases both optim test modules run: each layerwise optimizer beside the
torch.optim optimizer that defines the same step, and a small problem to run them on."""

import numpy as np
import torch

from layerwise.optim import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop

SHAPES = {"W1": (3, 4), "b1": (4,), "W2": (2, 3, 2)}


STEPS = 20


CASES = {
    "sgd": (lambda: SGD(lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "momentum": (lambda: Momentum(lr=0.05, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9)),
    "nesterov": (
        lambda: Nesterov(lr=0.05, momentum=0.8),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.8, nesterov=True),
    ),
    "adagrad": (lambda: AdaGrad(lr=0.1), lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-7)),
    "rmsprop": (
        lambda: RMSprop(lr=0.01, decay_rate=0.9),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-7),
    ),
    "adam": (lambda: Adam(lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8)),
    "adam-wd": (
        lambda: Adam(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1),
        lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
    ),
    "momentum-wd": (
        lambda: Momentum(lr=0.05, weight_decay=0.01),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.01),
    ),
    "rmsprop-wd": (
        lambda: RMSprop(weight_decay=0.05),
        lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-7, weight_decay=0.05),
    ),
}


def make_problem(dtype, seed=0, steps=STEPS):
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
    grads = [{k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()} for _ in range(steps)]
    return params, grads


def torch_trajectory(make_torch, params, grads):
    tensors = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    opt = make_torch(list(tensors.values()))
    out = []
    for g in grads:
        for k, t in tensors.items():
            t.grad = torch.from_numpy(g[k].copy())
        opt.step()
        out.append({k: t.detach().numpy().copy() for k, t in tensors.items()})
    return out


def run(opt, params, grads):
    out = []
    for g in grads:
        opt.update(params, g)
        out.append({k: v.copy() for k, v in params.items()})
    return out

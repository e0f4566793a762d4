"""Gradient checking: analytic backward passes against central differences.

The error reported for a tensor is max_i |analytic_i - numerical_i| / max_i max(|analytic_i|,
|numerical_i|): the largest deviation measured against the tensor's own scale. An element-wise
ratio would blow up on gradients that are exactly 0 (ReLU's dead units) where the numerical
derivative is round-off noise of 1e-12.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from .layers.base import Layer

__all__ = [
    "GradCheckCase",
    "check_gradients",
    "check_layer",
    "check_model",
    "numerical_gradient",
    "relative_error",
    "standard_cases",
]

TOLERANCE = 1e-7


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central differences (f(x + h) - f(x - h)) / 2h for every element of ``x``, any shape.

    ``x`` is perturbed in place, one element at a time, and each element is restored to its
    exact original bits afterwards (even if ``f`` raises).
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"numerical_gradient: x must be a floating ndarray, got {type(x).__name__}")
    grad = np.zeros_like(x)
    flat_x = x.reshape(-1)  # a view: x is contiguous or reshape raises below
    if not np.shares_memory(flat_x, x):
        raise ValueError("numerical_gradient: x must be a contiguous array (it is perturbed in place)")
    flat_g = grad.reshape(-1)
    for i in range(flat_x.size):
        original = flat_x[i].copy()
        try:
            flat_x[i] = original + h
            f_plus = float(f(x))
            flat_x[i] = original - h
            f_minus = float(f(x))
        finally:
            flat_x[i] = original
        flat_g[i] = (f_plus - f_minus) / (2 * h)
    return grad


def relative_error(analytic: np.ndarray, numerical: np.ndarray) -> float:
    """max |a - n| over the tensor, relative to the tensor's largest magnitude."""
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numerical, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"relative_error: shapes differ, {a.shape} vs {n.shape}")
    if a.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(a))), float(np.max(np.abs(n))))
    if scale == 0.0:
        return 0.0
    return float(np.max(np.abs(a - n)) / scale)


def check_gradients(
    loss: Callable[[], float],
    tensors: dict[str, np.ndarray],
    analytic: dict[str, np.ndarray],
    h: float = 1e-4,
) -> dict[str, float]:
    """Compare ``analytic[k]`` with the numerical gradient of ``loss()`` w.r.t. ``tensors[k]``.

    ``loss`` must read the tensors in place (they are perturbed one element at a time).
    """
    errors = {}
    for key, tensor in tensors.items():
        numerical = numerical_gradient(lambda _: loss(), tensor, h)
        errors[key] = relative_error(analytic[key], numerical)
    return errors


def check_layer(
    layer: Layer,
    x: np.ndarray,
    t: np.ndarray | None = None,
    *,
    h: float = 1e-4,
    seed: int = 0,
    train: bool = True,
    before_forward: Callable[[], None] | None = None,
) -> dict[str, float]:
    """Max relative error of the layer's ``dx`` and of each parameter gradient.

    A layer's output is reduced to a scalar by a fixed random projection, L = Σ out · P, so
    every output element takes part with its own weight; a loss layer is its own scalar.
    ``before_forward`` runs before every forward pass (e.g. to reseed Dropout's mask).
    Use float64 layers and inputs: float32 cannot resolve differences of 1e-7.
    """
    x = np.array(x, copy=True)
    rng = np.random.default_rng(seed)

    def forward() -> np.ndarray | float:
        if before_forward is not None:
            before_forward()
        if layer.is_loss:
            return layer.forward(x, t)
        return layer.forward(x, train=train)

    out = forward()
    projection = None if layer.is_loss else rng.standard_normal(np.shape(out))

    def scalar_loss() -> float:
        out = forward()
        return float(out) if projection is None else float(np.sum(out * projection))

    dx = layer.backward(1.0) if projection is None else layer.backward(projection)
    analytic = {key: np.array(g, copy=True) for key, g in layer.grads.items()}
    tensors = dict(layer.params)
    if dx is not None:
        analytic = {"x": np.array(dx, copy=True), **analytic}
        tensors = {"x": x, **tensors}
    return check_gradients(scalar_loss, tensors, analytic, h)


def check_model(model, x: np.ndarray, t: np.ndarray, *, h: float = 1e-4) -> dict[str, float]:
    """Max relative error of ``model.gradient(x, t)`` against central differences of
    ``model.loss(x, t)`` for every parameter. Layers that draw random numbers (Dropout) are
    rewound to the same generator state before every forward pass, so all passes share masks."""
    rngs = [layer.rng for layer in model if hasattr(layer, "rng")]
    saved = [g.bit_generator.state for g in rngs]

    def rewind() -> None:
        for g, state in zip(rngs, saved, strict=True):
            g.bit_generator.state = state

    rewind()
    analytic = {k: np.array(v, copy=True) for k, v in model.gradient(x, t).items()}

    def loss() -> float:
        rewind()
        return model.loss(x, t, train_flg=True)

    return check_gradients(loss, dict(model.params), analytic, h)


@dataclass
class GradCheckCase:
    """One row of ``layerwise gradcheck``: how to build a layer and an input for it."""

    label: str
    build: Callable[[np.random.Generator], tuple[Layer, np.ndarray, np.ndarray | None]]
    train: bool = True
    before_forward: Callable[[Layer], Callable[[], None]] | None = None

    def run(self, seed: int = 0) -> dict[str, float]:
        rng = np.random.default_rng(seed)
        layer, x, t = self.build(rng)
        hook = self.before_forward(layer) if self.before_forward else None
        return check_layer(layer, x, t, seed=seed, train=self.train, before_forward=hook)


def away_from_zero(rng: np.random.Generator, shape: tuple[int, ...], gap: float = 0.05) -> np.ndarray:
    """Random float64 values with |v| >= gap: a kinked function (ReLU, max) is smooth within h."""
    v = rng.uniform(gap, 2.0, size=shape)
    return v * rng.choice([-1.0, 1.0], size=shape)


def standard_cases() -> Iterator[GradCheckCase]:
    """Every layer type layerwise has, each with a small random float64 example."""
    from . import layers as L

    def affine(rng: np.random.Generator):
        W = rng.standard_normal((6, 4))
        return L.Affine(W, rng.standard_normal(4)), rng.standard_normal((3, 2, 3)), None

    def unary(cls, **kw):
        return lambda rng: (cls(**kw), away_from_zero(rng, (4, 5)), None)

    def softmax_loss_indices(rng: np.random.Generator):
        return L.SoftmaxWithLoss(), rng.standard_normal((5, 4)) * 3, rng.integers(0, 4, 5)

    def softmax_loss_onehot(rng: np.random.Generator):
        t = np.eye(4)[rng.integers(0, 4, 5)]
        return L.SoftmaxWithLoss(), rng.standard_normal((5, 4)) * 3, t

    def mse(rng: np.random.Generator):
        return L.MeanSquaredError(), rng.standard_normal((5, 3)), rng.standard_normal((5, 3))

    yield GradCheckCase("ReLU", unary(L.ReLU))
    yield GradCheckCase("LeakyReLU(0.1)", unary(L.LeakyReLU, alpha=0.1))
    yield GradCheckCase("Sigmoid", unary(L.Sigmoid))
    yield GradCheckCase("Tanh", unary(L.Tanh))
    yield GradCheckCase("Softmax", unary(L.Softmax))
    yield GradCheckCase("Identity", unary(L.Identity))
    yield GradCheckCase("Flatten", lambda rng: (L.Flatten(), rng.standard_normal((2, 3, 4)), None))
    yield GradCheckCase("Affine", affine)
    yield GradCheckCase("SoftmaxWithLoss (indices)", softmax_loss_indices)
    yield GradCheckCase("SoftmaxWithLoss (one-hot)", softmax_loss_onehot)
    yield GradCheckCase("MeanSquaredError", mse)
    # Normalisation and convolution layers keep their examples next to their code.
    from .layers import conv, norm

    yield from norm.gradcheck_cases()
    yield from conv.gradcheck_cases()

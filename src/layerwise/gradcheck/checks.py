"""Gradient checks: a layer's or a model's analytic gradients against central differences.

The error reported for a tensor is max_i |analytic_i - numerical_i| / max_i max(|analytic_i|,
|numerical_i|): the largest deviation measured against the tensor's own scale. An element-wise
ratio would blow up on gradients that are exactly 0 (ReLU's dead units) where the numerical
derivative is round-off noise of 1e-12. ``TOLERANCE`` is the pass mark in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..layers.base import Layer
from .numerical import numerical_gradient

if TYPE_CHECKING:  # for the annotation only: layerwise.models imports this package
    from ..models import Sequential

__all__ = [
    "TOLERANCE",
    "GradCheckCase",
    "away_from_zero",
    "check_gradients",
    "check_layer",
    "check_model",
    "relative_error",
]

#: The largest relative error a float64 gradient check passes with.
TOLERANCE = 1e-7


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


def check_model(model: Sequential, x: np.ndarray, t: np.ndarray, *, h: float = 1e-4) -> dict[str, float]:
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

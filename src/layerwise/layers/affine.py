"""The fully connected layer."""

from __future__ import annotations

import math

import numpy as np

from .._threads import matmul
from ..errors import ShapeError
from ..functional import _ones
from .base import Layer

__all__ = ["Affine"]


class Affine(Layer):
    """forward: out = x·W + b, for x of shape (N, ...) flattened to (N, D) with D = W.shape[0].
    backward: dx = dout·Wᵀ (reshaped back to x's shape), dW = xᵀ·dout, db = Σ_N dout.

    ``W``, ``b``, ``dW``, ``db`` are the book's attribute names for ``params["W"]``,
    ``params["b"]``, ``grads["W"]``, ``grads["b"]``: one array each, never two copies.
    Set ``needs_input_grad = False`` on a network's first layer to skip dx, which nothing uses.
    The products go through ``_threads.matmul``: one BLAS call unless layerwise owns several
    threads and the product is large (then parts on those threads).
    """

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        super().__init__()
        W, b = np.asarray(W), np.asarray(b)
        if W.ndim != 2:
            raise ShapeError(f"Affine: W must be 2-D (in_features, out_features), got {W.shape}")
        if b.shape != (W.shape[1],):
            raise ShapeError(f"Affine: b has shape {b.shape}, expected ({W.shape[1]},) for W {W.shape}")
        self.params = {"W": W, "b": b}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros_like(b)}
        self.needs_input_grad = True
        self.x: np.ndarray | None = None
        self.x_shape: tuple[int, ...] | None = None

    # The book's attribute names, as views onto params/grads.
    W = property(lambda self: self.params["W"], lambda self, v: self.params.__setitem__("W", v))
    b = property(lambda self: self.params["b"], lambda self, v: self.params.__setitem__("b", v))
    dW = property(lambda self: self.grads["W"], lambda self, v: self.grads.__setitem__("W", v))
    db = property(lambda self: self.grads["b"], lambda self, v: self.grads.__setitem__("b", v))
    original_x_shape = property(lambda self: self.x_shape, doc="The book's name for ``x_shape``.")

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        x = self._input(x)
        W = self.params["W"]
        if x.ndim < 2:
            raise ShapeError(f"Affine: input must have a batch axis, shape (N, {W.shape[0]}); got {x.shape}")
        features = math.prod(x.shape[1:])  # np.prod of a tuple costs ~5 us per call
        if features != W.shape[0]:
            raise ShapeError(
                f"Affine: input has {features} features per sample (x.shape={x.shape}) "
                f"but W expects {W.shape[0]} (W.shape={W.shape})"
            )
        self.x_shape = x.shape
        self.x = x if x.ndim == 2 else x.reshape(x.shape[0], features)
        # b as a (1, out) row: for a batch of one the shapes then match and NumPy takes its
        # fast same-shape path (0.6 us instead of 1.5 us: single-image inference counts it).
        return matmul(self.x, W, add=self.params["b"].reshape(1, -1))

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        self._need(self.x)
        dout = np.asarray(dout)
        W = self.params["W"]
        if dout.shape != (self.x.shape[0], W.shape[1]):
            raise ShapeError(
                f"Affine: dout has shape {dout.shape}, expected {(self.x.shape[0], W.shape[1])}"
            )
        self.grads["W"] = matmul(self.x.T, dout)
        self.grads["b"] = np.dot(_ones(dout.shape[0], dout.dtype), dout)  # Σ_N dout as 1ᵀ·dout (see _ones)
        if not self.needs_input_grad:
            return None
        return matmul(dout, W.T).reshape(self.x_shape)

    def config(self) -> dict:
        W = self.params["W"]
        return {"in_features": int(W.shape[0]), "out_features": int(W.shape[1])}

    @classmethod
    def from_config(cls, config: dict, dtype: np.dtype | str = np.float32) -> Affine:
        shape = (config["in_features"], config["out_features"])
        return cls(np.zeros(shape, dtype=dtype), np.zeros(shape[1], dtype=dtype))

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0], self.params["W"].shape[1])

    def __repr__(self) -> str:
        W = self.params["W"]
        return f"Affine({W.shape[0]} -> {W.shape[1]}, dtype={W.dtype})"

"""The fully connected layer (the book's section 5.6)."""

from __future__ import annotations

import math

import numpy as np

from ..checks import check_dout
from ..errors import ShapeError
from ..kernels.caches import ones
from ..kernels.threads import matmul
from .base import Layer, book_attribute

__all__ = ["Affine"]


class Affine(Layer):
    """Affine (section 5.6.2), for x of shape (N, ...) flattened to (N, D), D = W.shape[0].

    forward:  out = x·W + b
    backward: dx = dout·Wᵀ (reshaped back to x's shape),  dW = xᵀ·dout,  db = Σ_N dout

    ``W``, ``b``, ``dW``, ``db`` are the book's names for ``params["W"]``, ``params["b"]``,
    ``grads["W"]``, ``grads["b"]``. Set ``needs_input_grad = False`` on a network's first layer
    to skip dx, which nothing uses. The products are ``kernels.threads.matmul`` and Σ_N dout is
    ``1ᵀ·dout`` with ``kernels.caches.ones``: their docstrings say why.
    """

    W = book_attribute("params", "W")
    b = book_attribute("params", "b")
    dW = book_attribute("grads", "W")
    db = book_attribute("grads", "b")

    def __init__(self, W: np.ndarray, b: np.ndarray) -> None:
        super().__init__()
        W, b = np.asarray(W), np.asarray(b)
        if W.ndim != 2:
            raise ShapeError(f"Affine: W must be 2-D (in_features, out_features), got {W.shape}")
        if b.shape != (W.shape[1],):
            raise ShapeError(f"Affine: b has shape {b.shape}, expected ({W.shape[1]},) for W {W.shape}")
        self.params = {"W": W, "b": b}
        self.grads = {"W": np.zeros(W.shape, W.dtype), "b": np.zeros(b.shape, b.dtype)}
        self.needs_input_grad = True
        self.x: np.ndarray | None = None
        self.original_x_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        W, b = self.params["W"], self.params["b"]
        x = self._input(x)
        self.original_x_shape = x.shape
        self.x = x if x.ndim == 2 and x.shape[1] == W.shape[0] else self._flatten(x, W)
        return matmul(self.x, W, add=b)  # x·W + b

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        self._need(self.x)
        W = self.params["W"]
        dout = np.asarray(dout)
        check_dout(self.name, dout, (self.x.shape[0], W.shape[1]))
        self.grads["W"] = matmul(self.x.T, dout)  # xᵀ·dout
        self.grads["b"] = np.dot(ones(dout.shape[0], dout.dtype), dout)  # Σ_N dout
        if not self.needs_input_grad:
            return None
        return matmul(dout, W.T).reshape(self.original_x_shape)  # dout·Wᵀ

    def _flatten(self, x: np.ndarray, W: np.ndarray) -> np.ndarray:
        """x as (N, D), or a ShapeError naming both shapes."""
        if x.ndim < 2:
            raise ShapeError(f"Affine: input must have a batch axis, shape (N, {W.shape[0]}); got {x.shape}")
        features = math.prod(x.shape[1:])
        if features != W.shape[0]:
            raise ShapeError(
                f"Affine: input has {features} features per sample (x.shape={x.shape}) "
                f"but W expects {W.shape[0]} (W.shape={W.shape})"
            )
        return x.reshape(x.shape[0], features)

    @property
    def x_shape(self) -> tuple[int, ...] | None:  # the earlier layerwise name of original_x_shape
        return self.original_x_shape

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

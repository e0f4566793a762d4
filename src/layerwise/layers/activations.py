"""Activation layers: ReLU with its mask, Sigmoid that keeps its output, and friends."""

from __future__ import annotations

from types import EllipsisType

import numpy as np

from .._threads import SPLIT_MIN_ELEMENTS, in_parts
from ..errors import ShapeError
from ..functional import sigmoid, softmax
from .base import Layer

__all__ = ["Flatten", "Identity", "LeakyReLU", "ReLU", "Relu", "Sigmoid", "Softmax", "Tanh"]


class ReLU(Layer):
    """forward: out = max(x, 0), keeping ``mask = (x <= 0)``.
    backward: dx = dout where x > 0, else 0.

    Unlike the book's ``dout[mask] = 0``, backward builds a new array: the caller's ``dout``
    is left as it was.

    Speed: ``np.where(mask, 0, ...)`` branches per element and mispredicts on ReLU's
    half-random mask (10x slower than arithmetic: 10 ms vs 1 ms on a (100, 30, 24, 24)
    conv output). So forward is ``np.maximum(x, 0)`` and backward multiplies by the 0/1
    mask ``x > 0``, then adds 0, which turns the -0.0 of ``negative · 0`` into 0.0
    (IEEE: -0 + 0 = +0) and changes no other value. For finite dout the result equals the
    select, zeros all +0.0 (tests/test_fast_paths.py); an inf or NaN in dout at a blocked
    position gives NaN instead of 0, which only happens once training has diverged.

    Evaluation mode (``train=False``) skips the mask and keeps a reference to x instead; a
    backward after it derives the mask from x then (inference saves a pass and an array).
    """

    def __init__(self) -> None:
        super().__init__()
        self._mask: np.ndarray | None = None
        self._x: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray | None:
        """The book's cache: True where x <= 0, where backward blocks the gradient."""
        if self._mask is None and self._x is not None:
            self._mask, self._x = self._x <= 0, None
        return self._mask

    @mask.setter
    def mask(self, value: np.ndarray | None) -> None:
        self._mask, self._x = value, None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        x = self._input(x)
        if x.size >= SPLIT_MIN_ELEMENTS:  # a convnet's activations: parts on the owned threads
            out, mask = _relu_in_parts(x, train)
        else:
            out, mask = np.maximum(x, 0), (x <= 0 if train else None)  # a Python 0 keeps x's dtype
        self._mask, self._x = (mask, None) if train else (None, x)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        mask = self.mask
        self._need(mask)
        dout = np.asarray(dout)
        if dout.shape != mask.shape:
            raise ShapeError(f"{self.name}: dout has shape {dout.shape}, expected {mask.shape}")
        if dout.size >= SPLIT_MIN_ELEMENTS:
            return _relu_grad_in_parts(dout, mask)
        dx = np.multiply(dout, ~mask)
        dx += 0  # -0.0 -> 0.0; a Python int keeps any dtype, integer dout too
        return dx


def _relu_in_parts(x: np.ndarray, train: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """ReLU's forward as ``_threads.in_parts`` runs it: batch parts, concurrently when layerwise
    owns several threads, written into arrays of x's memory layout (order "K": a conv
    output's channels-last layout is kept). The same numbers as the plain expressions."""
    out = np.empty_like(x)
    mask = np.empty_like(x, dtype=bool) if train else None

    def relu(part: slice | EllipsisType) -> None:
        np.maximum(x[part], 0, out=out[part])
        if mask is not None:
            np.less_equal(x[part], 0, out=mask[part])

    in_parts(relu, len(x))
    return out, mask


def _relu_grad_in_parts(dout: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """ReLU's backward in batch parts (see ``_relu_in_parts``)."""
    dx = np.empty_like(dout)

    def relu_grad(part: slice | EllipsisType) -> None:
        np.multiply(dout[part], ~mask[part], out=dx[part])
        dx[part] += 0

    in_parts(relu_grad, len(dx))
    return dx


Relu = ReLU  # the book's name


class LeakyReLU(Layer):
    """forward: out = x if x > 0 else alpha * x.  backward: dx = dout if x > 0 else alpha * dout."""

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        self.alpha = float(alpha)
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        x = self._input(x)
        self.mask = x <= 0
        return np.where(self.mask, self.alpha * x, x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._need(self.mask)
        return np.where(self.mask, self.alpha * dout, dout)

    def config(self) -> dict:
        return {"alpha": self.alpha}


class Sigmoid(Layer):
    """forward: out = 1 / (1 + exp(-x)), keeping ``out``.
    backward: dx = dout * out * (1 - out), the derivative written with the output alone.
    """

    def __init__(self) -> None:
        super().__init__()
        self.out: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.out = sigmoid(self._input(x))
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._need(self.out)
        return dout * (1 - self.out) * self.out


class Tanh(Layer):
    """forward: out = tanh(x), keeping ``out``.  backward: dx = dout * (1 - out^2)."""

    def __init__(self) -> None:
        super().__init__()
        self.out: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.out = np.tanh(self._input(x))
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._need(self.out)
        return dout * (1 - self.out * self.out)


class Softmax(Layer):
    """forward: y_i = exp(x_i) / sum_j exp(x_j) over the last axis, keeping ``out``.
    backward: dx_i = y_i * (dout_i - sum_j dout_j * y_j), the Jacobian-vector product of
    softmax without forming the Jacobian.
    """

    def __init__(self) -> None:
        super().__init__()
        self.out: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self.out = softmax(self._input(x))
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._need(self.out)
        y = self.out
        return y * (dout - np.sum(dout * y, axis=-1, keepdims=True))


class Identity(Layer):
    """forward: out = x.  backward: dx = dout."""

    def __init__(self) -> None:
        super().__init__()
        self._seen = False

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        self._seen = True
        return self._input(x)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._need(True if self._seen else None)
        return dout


class Flatten(Layer):
    """forward: (N, d1, d2, ...) -> (N, d1*d2*...).  backward: reshape dout to the input shape."""

    def __init__(self) -> None:
        super().__init__()
        self.x_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        x = self._input(x)
        self.x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._need(self.x_shape)
        return np.reshape(dout, self.x_shape)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0], int(np.prod(input_shape[1:])))

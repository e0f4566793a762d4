"""Activation layers (the book's section 5.5): ReLU with its mask, Sigmoid that keeps its
output, and friends. Each is the book's forward and backward; ``kernels.activations`` holds
ReLU's fast path, one visible call away."""

from __future__ import annotations

import numpy as np

from ..checks import check_dout
from ..functional import sigmoid, softmax
from ..kernels.activations import relu, relu_grad
from .base import Layer

__all__ = ["Flatten", "Identity", "LeakyReLU", "ReLU", "Relu", "Sigmoid", "Softmax", "Tanh"]


class Relu(Layer):
    """ReLU (section 5.5.1).

    forward:  out = max(x, 0), keeping ``mask = (x <= 0)``
    backward: dx = dout where x > 0, else 0

    Unlike the book's ``dout[mask] = 0``, backward returns a new array and leaves the caller's
    ``dout`` as it was. In evaluation mode (``train=False``) forward keeps ``x`` instead of the
    mask (inference saves a pass and an array); a backward after it derives the mask from x.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mask: np.ndarray | None = None
        self.x: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        x = self._input(x)
        out, self.mask = relu(x, keep_mask=train)  # max(x, 0) and x <= 0: kernels.activations
        self.x = None if train else x
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self.mask is None and self.x is not None:
            self.mask, self.x = self.x <= 0, None
        self._need(self.mask)
        dout = np.asarray(dout)
        check_dout(self.name, dout, self.mask.shape)
        return relu_grad(dout, self.mask)  # dout with masked positions 0, as a new array


ReLU = Relu  # torch.nn's spelling


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
    """Sigmoid (section 5.5.2).

    forward:  out = 1 / (1 + exp(-x)), keeping ``out``
    backward: dx = dout * out * (1 - out), the derivative written with the output alone

    Unlike the book's ``1 / (1 + np.exp(-x))``, exp never overflows (``functional.sigmoid``).
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
    """forward: y_i = exp(x_i) / Σ_j exp(x_j) over the last axis, keeping ``out``.
    backward: dx_i = y_i * (dout_i - Σ_j dout_j * y_j), the Jacobian-vector product of
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

"""Loss layers (the book's section 5.6.3): ``forward(x, t) -> float`` and ``backward(dout=1.0) -> dx``."""

from __future__ import annotations

import numpy as np

from ..checks import as_batch, class_labels
from ..errors import ShapeError
from ..kernels.softmax_loss import softmax_loss, softmax_loss_grad
from .base import Layer

__all__ = ["MeanSquaredError", "SoftmaxWithLoss"]


class SoftmaxWithLoss(Layer):
    """Softmax-with-Loss (section 5.6.3): softmax followed by cross-entropy, as one layer.

    forward:  y = softmax(x),  loss = -(1/N) Σ_n log y[n, t_n]   (-(1/N) Σ t·log y for one-hot t)
    backward: dx = dout · (y - t) / N

    Labels are class indices (N,) (or an (N, 1) column, as the book's ch07 check passes them)
    or one-hot rows (N, C), told apart by their number of axes. ``y``, ``t`` and ``loss`` are
    the book's caches. Unlike the book's ``log(y + 1e-7)``, which caps the loss at 16.1 while
    the gradient keeps growing, the loss is computed through log-softmax: exact and finite for
    logits of any size (``kernels.softmax_loss``, fused for speed).
    """

    is_loss = True

    def __init__(self) -> None:
        super().__init__()
        self.y: np.ndarray | None = None
        self.t: np.ndarray | None = None
        self.loss: float | None = None
        self.x_shape: tuple[int, ...] | None = None

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:  # type: ignore[override]
        x = self._input(x)
        self.x_shape = x.shape
        x, t = as_batch(self.name, x, np.asarray(t))
        self.t = class_labels(self.name, x, t)
        self.y, self.loss = softmax_loss(x, self.t)  # softmax(x), cross_entropy_error(y, t)
        return self.loss

    def backward(self, dout: float = 1.0) -> np.ndarray:
        self._need(self.y)
        batch_size = self.y.shape[0]
        dx = softmax_loss_grad(self.y, self.t, float(dout) / batch_size)  # (y - t) · dout / N
        return dx.reshape(self.x_shape)


class MeanSquaredError(Layer):
    """forward: L = (1/N) · ½ Σ (x - t)²  (the book's mean_squared_error, averaged over the batch).
    backward: dx = dout · (x - t) / N.
    """

    is_loss = True

    def __init__(self) -> None:
        super().__init__()
        self.diff: np.ndarray | None = None
        self.loss: float | None = None

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:  # type: ignore[override]
        x = self._input(x)
        t = np.asarray(t)
        if t.shape != x.shape:
            raise ShapeError(f"{self.name}: targets have shape {t.shape}, predictions {x.shape}")
        self.diff = x - t.astype(x.dtype, copy=False)
        n = x.shape[0] if x.ndim >= 2 else 1
        self.loss = float(0.5 * np.sum(self.diff * self.diff) / n)
        return self.loss

    def backward(self, dout: float = 1.0) -> np.ndarray:
        self._need(self.diff)
        n = self.diff.shape[0] if self.diff.ndim >= 2 else 1
        return self.diff * (float(dout) / n)

"""Loss layers: ``forward(x, t) -> float`` and ``backward(dout=1.0) -> dx``."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..functional import _as_batch, _check_labels, _row_starts, _softmax_parts, softmax_and_log_softmax
from .base import Layer

__all__ = ["MeanSquaredError", "SoftmaxWithLoss"]


class SoftmaxWithLoss(Layer):
    """Softmax followed by cross-entropy, as one layer.

    forward: y = softmax(x); L = -(1/N) Σ_n log y[n, t_n]  (or -(1/N) Σ t·log y for one-hot t).
    backward: dx = dout · (y - onehot(t)) / N.

    The loss is computed through log-softmax, so it is exact and finite for logits of any
    magnitude (the book's log(y + 1e-7) caps it at 16.1 while the gradient keeps growing).
    Labels are class indices (shape (N,), integer) or one-hot (shape (N, C)), told apart by
    their number of axes. ``y``, ``t`` and ``loss`` are kept under the book's names.
    """

    is_loss = True

    def __init__(self) -> None:
        super().__init__()
        self.y: np.ndarray | None = None
        self.t: np.ndarray | None = None
        self.loss: float | None = None
        self._x_shape: tuple[int, ...] | None = None
        self._at_label: np.ndarray | None = None

    def forward(self, x: np.ndarray, t: np.ndarray) -> float:  # type: ignore[override]
        x = self._input(x)
        self._x_shape = x.shape
        x, t = _as_batch(self.name, x, np.asarray(t))
        t = _check_labels(self.name, x, t)
        n = x.shape[0]
        if t.ndim == 2:
            y, logp = softmax_and_log_softmax(x)
            loss = -np.sum(t * logp) / n
            self._at_label = None
        else:
            self._at_label = _row_starts(n, x.shape[1]) + t  # flat index of each sample's label
            y, loss = _softmax_and_index_loss(x, self._at_label)
        self.y, self.t, self.loss = y, t, float(loss)
        return self.loss

    def backward(self, dout: float = 1.0) -> np.ndarray:
        self._need(self.y)
        n = self.y.shape[0]
        # A Python float scale keeps float32 gradients float32.
        scale = float(dout) / n
        if self.t.ndim == 2:
            dx = (self.y - self.t) * scale
        else:
            dx = self.y.copy()
            dx.reshape(-1)[self._at_label] -= 1  # (n, C) and new: the flat view is a view
            dx *= scale
        return dx.reshape(self._x_shape)


def _softmax_and_index_loss(x: np.ndarray, at_label: np.ndarray) -> tuple[np.ndarray, np.floating]:
    """softmax(x) and mean_n -log softmax(x)[n, t_n] for class indices t, given as the flat
    indices ``at_label = n * C + t_n`` into the (N, C) array, from one exp.

    The same numbers as ``softmax_and_log_softmax`` followed by a gather, fused because it
    runs once per training step on a small (N, C) array, where NumPy's per-call overhead is
    the cost: -log y[t] = log1p(rest) - shifted[t] (see ``functional._softmax_parts``), so
    the full log-softmax array is never built. Both terms are >= 0, so their sums do not
    cancel. NaN or inf logits give a NaN or inf loss, as the plain path does.
    (tests/test_fast_paths.py checks it equals the plain path.)
    """
    shifted, y, rest = _softmax_parts(x)
    y /= 1 + rest
    # .sum(): np.sum adds ~1 us a call; shifted is new and contiguous, so take's flat view is its own.
    loss = (np.log1p(rest).sum() - shifted.take(at_label).sum()) / x.shape[0]
    return y, loss


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

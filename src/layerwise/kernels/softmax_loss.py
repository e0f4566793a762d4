"""Softmax followed by cross-entropy, fused: what ``SoftmaxWithLoss`` runs every step.

Plain expressions these equal (``layerwise.functional``, checked in tests/kernels/):
``y = softmax(x)``, ``loss = -mean(log_softmax(x)[n, t_n])`` (or ``-Σ t·log_softmax(x) / N``
for one-hot t), and ``dx = (y - onehot(t)) · scale``.

Why fused: the loss runs once per training step on a small (N, C) array, where NumPy's
per-call overhead is the cost: one ``exp`` serves softmax and log-softmax, the row max is
read at ``argmax`` (vectorised, ~5x faster than NumPy's row-by-row max over 10 classes),
sums over the short class axis are a product with a ones vector, and labels are flat indices.
Why log1p: when one logit dominates (a loss near 0), Σe = 1 + 1e-9, say, and log(Σe) keeps
only ~1e-16 of it: a loss of 1e-9 off by 1e-7 relative, and a central-difference check of it
as much. Taking the max's own exp(0) = 1 out of the sum gives log Σe = log1p(rest), exact.
"""

from __future__ import annotations

import math

import numpy as np

from .caches import ones, row_starts

__all__ = ["log_softmax", "softmax", "softmax_loss", "softmax_loss_grad"]


def _parts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Along the last axis: ``shifted = x - max``, ``e = exp(shifted)`` and ``rest``, the sum
    of e without the max's own exp(0) = 1, so that Σe = 1 + rest. Ties: only the first
    maximum leaves the sum. A NaN logit makes its row NaN; an inf logit gives NaN or inf."""
    n, c = math.prod(x.shape[:-1]), x.shape[-1]
    flat = x.reshape(n, c)
    at_max = row_starts(n, c) + flat.argmax(axis=1)  # flat index of each row's max
    shifted = flat - flat.take(at_max)[:, None]
    e = np.exp(shifted)
    e_flat = e.reshape(-1)  # e is new and contiguous: a view
    e_flat[at_max] = 0
    rest = np.dot(e, ones(c, e.dtype))  # np.dot: ~0.35 us less per call than @
    e_flat[at_max] = 1
    return shifted.reshape(x.shape), e.reshape(x.shape), rest.reshape(*x.shape[:-1], 1)


def softmax(x: np.ndarray) -> np.ndarray:
    """``functional.softmax(x)`` over the last axis."""
    _, e, rest = _parts(x)
    return e / (1 + rest)


def log_softmax(x: np.ndarray) -> np.ndarray:
    """``x - max - log Σ exp(x - max)`` over the last axis, exact for a dominant logit."""
    shifted, _, rest = _parts(x)
    return shifted - np.log1p(rest)


def softmax_loss(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
    """``(softmax(x), mean cross-entropy)`` of (N, C) scores ``x`` against checked labels
    ``t``: class indices (N,) or one-hot rows (N, C) in x's dtype."""
    shifted, y, rest = _parts(x)
    y /= 1 + rest
    n = x.shape[0]
    if t.ndim == 2:
        loss = -np.sum(t * (shifted - np.log1p(rest))) / n
    else:
        # -log y[t] = log1p(rest) - shifted[t]: both sums are >= 0, so nothing cancels. .sum()
        # rather than np.sum saves ~1 us a call; shifted is new, so take's flat view is its own.
        loss = (np.log1p(rest).sum() - shifted.take(row_starts(n, x.shape[1]) + t).sum()) / n
    return y, float(loss)


def softmax_loss_grad(y: np.ndarray, t: np.ndarray, scale: float) -> np.ndarray:
    """``(y - onehot(t)) · scale`` as a new array, for t as in :func:`softmax_loss`."""
    if t.ndim == 2:
        return (y - t) * scale
    dx = y.copy()
    dx.reshape(-1)[row_starts(*y.shape) + t] -= 1  # dx is new and (N, C): the flat view is a view
    dx *= scale
    return dx

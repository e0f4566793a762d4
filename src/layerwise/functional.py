"""Pure array functions shared by the layers: the math lives here once.

Every function keeps the floating dtype of its input (float32 in, float32 out) and is
numerically stable for inputs of any magnitude: no overflow warnings, no NaN from inf - inf.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError, ShapeError

__all__ = [
    "avg_pool",
    "avg_pool_backward",
    "col2im",
    "conv_output_shape",
    "cross_entropy_error",
    "im2col",
    "log_softmax",
    "max_pool",
    "max_pool_backward",
    "max_pool_tiled",
    "max_pool_tiled_backward",
    "mean_squared_error",
    "sigmoid",
    "softmax",
    "softmax_cross_entropy",
    "sum_to_shape",
    "to_float_array",
]


def to_float_array(x: object, where: str = "input") -> np.ndarray:
    """Return ``x`` as a floating ndarray without copying when it already is one.

    Floating arrays keep their dtype. Integer and boolean arrays (and Python numbers) become
    float64, NumPy's default. Complex, object and string arrays are refused by name: a
    silent cast would drop the imaginary part or fail deep inside a matrix product.
    """
    arr = np.asarray(x)
    if arr.dtype.kind == "f":
        return arr
    if arr.dtype.kind in "biu":
        return arr.astype(np.float64)
    raise InputError(f"{where}: expected a real-valued array, got dtype {arr.dtype}")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), computed without overflow for any x.

    exp(-|x|) never overflows; for x >= 0 the sigmoid is 1/(1+e), for x < 0 it is e/(1+e),
    which are the same function written two ways.
    """
    x = to_float_array(x, "sigmoid")
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x_i) / sum_j exp(x_j) along ``axis``; the max is subtracted first so exp <= 1."""
    x = to_float_array(x, "softmax")
    shifted = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """x_i - log(sum_j exp(x_j)) along ``axis``, exact and finite for logits of any size."""
    x = to_float_array(x, "log_softmax")
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax_and_log_softmax(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Softmax and log-softmax over the last axis from a single ``exp``.

    The loss layer needs both (log-softmax for an exact loss, softmax for the gradient); one
    exp serves both because log(softmax) = shifted - log(sum exp(shifted)).
    """
    shifted = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(shifted)
    total = np.sum(e, axis=-1, keepdims=True)
    return e / total, shifted - np.log(total)


def _check_labels(where: str, scores: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Validate labels against a (N, C) score array; return them as indices or one-hot.

    Class indices and one-hot rows are told apart by ndim (indices have one axis fewer than
    the scores), never by comparing sizes, which is ambiguous when N == C.
    """
    n, c = scores.shape
    if t.ndim == 2:
        if t.shape != scores.shape:
            raise ShapeError(
                f"{where}: one-hot labels have shape {t.shape} but the scores have shape "
                f"{scores.shape}; expected ({n}, {c})"
            )
        if t.dtype.kind not in "biuf":
            raise InputError(f"{where}: one-hot labels must be numeric, got dtype {t.dtype}")
        return t
    if t.ndim != 1:
        raise ShapeError(
            f"{where}: labels must be class indices of shape ({n},) or one-hot of shape "
            f"({n}, {c}); got shape {t.shape}"
        )
    if t.shape[0] != n:
        raise ShapeError(
            f"{where}: {t.shape[0]} labels (shape {t.shape}) for a batch of {n} "
            f"(scores shape {scores.shape})"
        )
    if t.dtype.kind == "f":
        if not np.all(np.isfinite(t)) or np.any(t != np.round(t)):
            raise InputError(f"{where}: class-index labels must be whole numbers, got {t[:5]}")
        t = t.astype(np.intp)
    elif t.dtype.kind not in "biu":
        raise InputError(f"{where}: class-index labels must be integers, got dtype {t.dtype}")
    if t.size:
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= c:
            bad = lo if lo < 0 else hi
            raise InputError(f"{where}: label {bad} is out of range for {c} classes (0..{c - 1})")
    return t


def _as_batch(where: str, y: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The book's convention: a single sample (1-D scores) is a batch of one."""
    if y.ndim == 1:
        y = y.reshape(1, -1)
        t = t.reshape(1, -1) if t.ndim == 1 and t.size == y.shape[1] else t.reshape(1)
    if y.ndim != 2:
        raise ShapeError(f"{where}: scores must have shape (N, C), got {y.shape}")
    if y.shape[0] == 0:
        raise InputError(f"{where}: empty batch (scores shape {y.shape})")
    return y, t


def cross_entropy_error(y: np.ndarray, t: np.ndarray) -> float:
    """Mean over the batch of -log y[t] for probabilities ``y`` (the book's function).

    The book adds 1e-7 inside the log, which caps the loss at 16.1; here a zero probability is
    clamped to the dtype's smallest normal number instead, so the loss stays exact for every
    representable probability and finite for zero.
    """
    y = to_float_array(y, "cross_entropy_error")
    y, t = _as_batch("cross_entropy_error", y, np.asarray(t))
    t = _check_labels("cross_entropy_error", y, t)
    tiny = np.finfo(y.dtype).tiny
    n = y.shape[0]
    if t.ndim == 2:
        return float(-np.sum(t * np.log(np.maximum(y, tiny))) / n)
    return float(-np.sum(np.log(np.maximum(y[np.arange(n), t], tiny))) / n)


def softmax_cross_entropy(x: np.ndarray, t: np.ndarray) -> float:
    """Mean cross-entropy of softmax(x) against labels, through log-softmax (exact, finite)."""
    x = to_float_array(x, "softmax_cross_entropy")
    x, t = _as_batch("softmax_cross_entropy", x, np.asarray(t))
    t = _check_labels("softmax_cross_entropy", x, t)
    logp = log_softmax(x)
    n = x.shape[0]
    if t.ndim == 2:
        return float(-np.sum(t * logp) / n)
    return float(-np.sum(logp[np.arange(n), t]) / n)


def mean_squared_error(y: np.ndarray, t: np.ndarray) -> float:
    """0.5 * sum((y - t)^2), divided by the batch size for a batch (the book's 1-D value kept)."""
    y = to_float_array(y, "mean_squared_error")
    t = to_float_array(t, "mean_squared_error labels")
    if y.shape != t.shape:
        raise ShapeError(f"mean_squared_error: y has shape {y.shape} but t has shape {t.shape}")
    n = y.shape[0] if y.ndim >= 2 else 1
    return float(0.5 * np.sum((y - t) ** 2) / n)


def sum_to_shape(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back to the shape of the input that was broadcast."""
    g = np.asarray(g)
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, size in enumerate(shape) if size == 1 and g.shape[i + lead] != 1
    )
    out = g.sum(axis=axes, keepdims=True)
    return out.reshape(shape)

"""The book's plain math, as the readable reference: activation functions, softmax, the losses,
and im2col/col2im as the book writes them.

Every function keeps the floating dtype of its input (float32 in, float32 out) and is
numerically stable for inputs of any magnitude: no overflow warnings, no NaN from inf - inf.
The layers' fast paths live in ``layerwise.kernels``; each kernel names the expression here
that it equals, and the tests check it does.
"""

from __future__ import annotations

import numpy as np

from .checks import as_batch, class_labels, conv_output_shape, to_float_array
from .errors import ShapeError

__all__ = [
    "col2im",
    "conv_output_shape",
    "cross_entropy_error",
    "identity_function",
    "im2col",
    "log_softmax",
    "mean_squared_error",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_cross_entropy",
    "step_function",
    "sum_squared_error",
    "sum_to_shape",
    "to_float_array",
]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), computed without overflow for any x.

    exp(-|x|) never overflows; for x >= 0 the sigmoid is 1/(1+e), for x < 0 it is e/(1+e),
    which are the same function written two ways.
    """
    x = to_float_array(x, "sigmoid")
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x_i) / Σ_j exp(x_j) along ``axis``; the max is subtracted first so exp <= 1."""
    x = to_float_array(x, "softmax")
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """x_i - log Σ_j exp(x_j) along ``axis``, finite for logits of any size."""
    x = to_float_array(x, "log_softmax")
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def cross_entropy_error(y: np.ndarray, t: np.ndarray) -> float:
    """Mean over the batch of -log y[t] for probabilities ``y`` (the book's function).

    The book adds 1e-7 inside the log, which caps the loss at 16.1; here a zero probability is
    clamped to the dtype's smallest normal number instead, so the loss stays exact for every
    normal probability (down to 1e-308 in float64) and finite for zero.
    """
    y = to_float_array(y, "cross_entropy_error")
    y, t = as_batch("cross_entropy_error", y, np.asarray(t))
    t = class_labels("cross_entropy_error", y, t)
    tiny = np.finfo(y.dtype).tiny
    n = y.shape[0]
    if t.ndim == 2:
        return float(-np.sum(t * np.log(np.maximum(y, tiny))) / n)
    return float(-np.sum(np.log(np.maximum(y[np.arange(n), t], tiny))) / n)


def softmax_cross_entropy(x: np.ndarray, t: np.ndarray) -> float:
    """Mean cross-entropy of softmax(x) against labels, through log-softmax (exact, finite)."""
    x = to_float_array(x, "softmax_cross_entropy")
    x, t = as_batch("softmax_cross_entropy", x, np.asarray(t))
    t = class_labels("softmax_cross_entropy", x, t)
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


def im2col(x: np.ndarray, FH: int, FW: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """The book's im2col: every FH×FW window of ``x`` (N, C, H, W) as a row of ``col``, shape
    (N·OH·OW, C·FH·FW), rows ordered (n, oh, ow) and columns (c, fh, fw), so that
    ``col @ W.reshape(FN, -1).T`` is the convolution with weights W (FN, C, FH, FW).

    As in the book, one strided slice of the padded images per kernel offset (i, j). Unlike
    the book, the dtype is kept and a stride that does not divide is an error, not a floor.
    (Convolution uses ``kernels.conv.im2col``: the same values with columns (fh, fw, c).)
    """
    x = to_float_array(x, "im2col")
    N, C = x.shape[:2]
    OH, OW = conv_output_shape(x.shape, FH, FW, stride, pad, "im2col")
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    col = np.zeros((N, C, FH, FW, OH, OW), dtype=x.dtype)
    for i in range(FH):
        for j in range(FW):
            col[:, :, i, j, :, :] = img[:, :, i : i + stride * OH : stride, j : j + stride * OW : stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * OH * OW, -1)


def col2im(
    col: np.ndarray, x_shape: tuple[int, ...], FH: int, FW: int, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """The book's col2im, the adjoint of :func:`im2col`: every row's window is added back where
    it came from (overlapping windows sum) and the padding is cropped away."""
    col = np.asarray(col)
    N, C, H, W = x_shape
    OH, OW = conv_output_shape(x_shape, FH, FW, stride, pad, "col2im")
    if col.shape != (N * OH * OW, C * FH * FW):
        raise ShapeError(
            f"col2im: col has shape {col.shape}, expected {(N * OH * OW, C * FH * FW)} "
            f"for x_shape={tuple(x_shape)}, kernel {FH}x{FW}, stride {stride}, pad {pad}"
        )
    col = col.reshape(N, OH, OW, C, FH, FW).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=col.dtype)
    for i in range(FH):
        for j in range(FW):
            img[:, :, i : i + stride * OH : stride, j : j + stride * OW : stride] += col[:, :, i, j, :, :]
    return img[:, :, pad : pad + H, pad : pad + W]


# =========================================================================================
# The book's small functions of chapters 3 and 4 (``common/functions.py``), kept here once so
# ``layerwise.book.common.functions`` can point at them. Floating inputs keep their dtype;
# integer and boolean inputs become float64 (``to_float_array``).
# =========================================================================================


def identity_function(x: np.ndarray) -> np.ndarray:
    """σ(x) = x: the output layer's activation for regression. Returns ``x`` itself."""
    return x


def step_function(x: np.ndarray) -> np.ndarray:
    """h(x) = 1 if x > 0 else 0, elementwise, in x's floating dtype (the book returns int)."""
    x = to_float_array(x, "step_function")
    return (x > 0).astype(x.dtype)


def relu(x: np.ndarray) -> np.ndarray:
    """h(x) = max(0, x), elementwise."""
    return np.maximum(to_float_array(x, "relu"), 0)  # a Python 0 keeps x's dtype


def relu_grad(x: np.ndarray) -> np.ndarray:
    """h'(x) = 1 if x > 0 else 0, elementwise: what the ``ReLU`` layer lets through (the
    book's function says 1 at x = 0, its Relu layer 0; layerwise follows the layer)."""
    x = to_float_array(x, "relu_grad")
    return (x > 0).astype(x.dtype)


def sigmoid_grad(x: np.ndarray) -> np.ndarray:
    """σ'(x) = σ(x) · (1 - σ(x)), with the stable :func:`sigmoid`."""
    s = sigmoid(x)
    return s * (1 - s)


def sum_squared_error(y: np.ndarray, t: np.ndarray) -> float:
    """E = ½ Σ (y - t)² over every element (not divided by the batch size; see
    :func:`mean_squared_error` for that)."""
    y = to_float_array(y, "sum_squared_error")
    t = to_float_array(t, "sum_squared_error labels")
    if y.shape != t.shape:
        raise ShapeError(f"sum_squared_error: y has shape {y.shape} but t has shape {t.shape}")
    return float(0.5 * np.sum((y - t) ** 2))

"""Pure array functions shared by the layers: the math lives here once.

Every function keeps the floating dtype of its input (float32 in, float32 out) and is
numerically stable for inputs of any magnitude: no overflow warnings, no NaN from inf - inf.
"""

from __future__ import annotations

import math
from types import EllipsisType

import numpy as np

from ._threads import SPLIT_MIN_ELEMENTS, in_parts
from .errors import InputError, ShapeError

__all__ = [
    "avg_pool",
    "avg_pool_backward",
    "col2im",
    "conv_input_grad",
    "conv_output_shape",
    "cross_entropy_error",
    "identity_function",
    "im2col",
    "log_softmax",
    "max_pool",
    "max_pool_backward",
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


def to_float_array(x: object, where: str = "input") -> np.ndarray:
    """Return ``x`` as a floating ndarray without copying when it already is one.

    Floating arrays keep their dtype. Integer and boolean arrays (and Python numbers) become
    float64, NumPy's default. Complex, object and string arrays are refused by name: a
    silent cast would drop the imaginary part or fail deep inside a matrix product.
    """
    try:
        arr = np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise InputError(f"{where}: cannot make an array of the input ({exc})") from None
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
    x = np.moveaxis(to_float_array(x, "softmax"), axis, -1)
    _, e, rest = _softmax_parts(x)
    return np.moveaxis(e / (1 + rest), -1, axis)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """x_i - log(sum_j exp(x_j)) along ``axis``, exact and finite for logits of any size."""
    x = np.moveaxis(to_float_array(x, "log_softmax"), axis, -1)
    shifted, _, rest = _softmax_parts(x)
    return np.moveaxis(shifted - np.log1p(rest), -1, axis)


def softmax_and_log_softmax(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Softmax and log-softmax over the last axis from a single ``exp``.

    The loss layer needs both (log-softmax for an exact loss, softmax for the gradient); one
    exp serves both because log(softmax) = shifted - log(sum exp(shifted)).
    """
    shifted, e, rest = _softmax_parts(x)
    return e / (1 + rest), shifted - np.log1p(rest)


#: Entries kept by each of the small caches below (a training run uses a few shapes; a caller
#: cycling through many batch sizes must not grow them without bound).
_CACHED_SHAPES = 32


def _keep(cache: dict, key: object, value: np.ndarray) -> np.ndarray:
    """Store ``value`` read-only (it is shared between calls) in a bounded cache; return it."""
    if len(cache) >= _CACHED_SHAPES:
        cache.clear()
    value.flags.writeable = False
    cache[key] = value
    return value


def _row_starts(n: int, c: int, _cache: dict[tuple[int, int], np.ndarray] = {}) -> np.ndarray:  # noqa: B006
    """``np.arange(n) * c``: where each row of a C-contiguous (n, c) array starts in its flat
    view, so ``row_starts + column`` indexes one element per row. Made once per shape and
    read-only (shared between calls). Why flat indices: on a (100, 10) batch, ``take``/setitem
    with one flat index array cost a third of NumPy's 2-D fancy indexing ``a[rows, cols]``."""
    starts = _cache.get((n, c))
    return starts if starts is not None else _keep(_cache, (n, c), np.arange(n) * c)


def _ones(n: int, dtype: np.dtype, _cache: dict[tuple[int, np.dtype], np.ndarray] = {}) -> np.ndarray:  # noqa: B006
    """A read-only vector of ``n`` ones, made once per length and dtype. Sums over a short
    axis go through it as a matrix-vector product: ``a @ ones`` sums the rows of a (100, 10)
    array in 0.8 us where NumPy's reduction along the last axis takes 3 us (it reduces row
    by row), and ``ones @ a`` sums a (100, 50) batch over its first axis in 1.2 us against 3."""
    key = (n, np.dtype(dtype))
    ones = _cache.get(key)
    return ones if ones is not None else _keep(_cache, key, np.ones(n, dtype=dtype))


def _softmax_parts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Along the last axis: ``shifted = x - max``, ``e = exp(shifted)`` and ``rest``, the sum
    of e WITHOUT the max's own exp(0) = 1, so that Σe = 1 + rest and log Σe = log1p(rest).

    Why: when one logit dominates (a loss near 0), Σe = 1 + 1e-9 say, and log(Σe) keeps
    rest to only ~1e-16 absolute: a loss of 1e-9 off by 1e-7 relative, and a central-
    difference check of it off as much. log1p(rest) is exact to the last bit.

    The max is read at ``argmax``: NumPy reduces a short last axis (10 classes) row by row,
    ~70 ns a row, while argmax is vectorised, ~5x faster. Ties: only the first maximum is
    taken out of the sum; the others (exp(0) = 1 too) stay in rest. A NaN logit makes its
    row NaN; an inf logit gives NaN or inf losses, as the plain formula does.
    """
    n, c = math.prod(x.shape[:-1]), x.shape[-1]
    flat = x.reshape(n, c)
    at_max = _row_starts(n, c) + flat.argmax(axis=1)  # flat index of each row's max
    shifted = flat - flat.take(at_max)[:, None]
    e = np.exp(shifted)
    e_flat = e.reshape(-1)  # e is new and contiguous: a view
    e_flat[at_max] = 0
    rest = np.dot(e, _ones(c, e.dtype))  # (np.dot: ~0.35 us less per call than @)
    e_flat[at_max] = 1
    return shifted.reshape(x.shape), e.reshape(x.shape), rest.reshape(*x.shape[:-1], 1)


def _check_labels(where: str, scores: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Validate labels against a (N, C) score array; return them as indices or one-hot.

    Class indices and one-hot rows are told apart by ndim (indices have one axis fewer than
    the scores), never by comparing sizes, which is ambiguous when N == C.
    """
    n, c = scores.shape
    if t.ndim == 2 and t.shape == (n, 1) and c != 1:
        t = t.reshape(n)  # a column of class indices, as the book's ch07 gradient check passes them
    if t.ndim == 2:
        if t.shape != scores.shape:
            raise ShapeError(
                f"{where}: one-hot labels have shape {t.shape} but the scores have shape "
                f"{scores.shape}; expected ({n}, {c})"
            )
        if t.dtype.kind not in "biuf":
            raise InputError(f"{where}: one-hot labels must be numeric, got dtype {t.dtype}")
        # In the scores' dtype: float64 one-hot rows (the book's) must not upcast a float32 loss.
        return t.astype(scores.dtype, copy=False)
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
    elif t.dtype.kind not in "iu":  # booleans would index as masks, not as classes
        raise InputError(f"{where}: class-index labels must be integers, got dtype {t.dtype}")
    if t.size:
        # Unsigned labels cannot be negative: one reduction instead of two (per step).
        lo, hi = (0 if t.dtype.kind == "u" else int(t.min())), int(t.max())
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
    normal probability (down to 1e-308 in float64) and finite for zero.
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


# =========================================================================================
# Convolution and pooling helpers: im2col / col2im and pooling (used by layers/conv.py).
#
# Images are NCHW. The only Python loops run over the FH×FW kernel offsets (9 or 25
# iterations for the usual kernels); each iteration moves one strided view of the whole
# batch, never a single position or a single image.
# =========================================================================================


def conv_output_shape(
    x_shape: tuple[int, ...], FH: int, FW: int, stride: int = 1, pad: int = 0, where: str = "conv"
) -> tuple[int, int]:
    """(OH, OW) = ((H + 2·pad - FH) / stride + 1, (W + 2·pad - FW) / stride + 1).

    Raises ShapeError, naming ``where`` and the shapes, when the kernel is larger than the
    padded input or when the stride does not divide (size + 2·pad - kernel): the book floors
    that fraction, silently ignoring the input's last rows or columns.
    """
    if len(x_shape) != 4:
        raise ShapeError(f"{where}: input must be 4-D (N, C, H, W), got shape {tuple(x_shape)}")
    _check_window(FH, FW, stride, pad, where)
    H, W = x_shape[2] + 2 * pad, x_shape[3] + 2 * pad
    if FH > H or FW > W:
        raise ShapeError(
            f"{where}: the {FH}x{FW} kernel is larger than the padded input {H}x{W} "
            f"(x.shape={tuple(x_shape)}, pad={pad})"
        )
    for axis, size, k in (("height", H, FH), ("width", W, FW)):
        if (size - k) % stride:
            raise ShapeError(
                f"{where}: output {axis} is not an integer for x.shape={tuple(x_shape)}, "
                f"kernel {FH}x{FW}, stride {stride}, pad {pad}: ({size} - {k}) / {stride} + 1 = "
                f"{(size - k) / stride + 1:g}; pad or crop the input so the stride divides "
                f"(size + 2*pad - kernel)"
            )
    return (H - FH) // stride + 1, (W - FW) // stride + 1


def _check_window(FH: int, FW: int, stride: int, pad: int, where: str) -> None:
    # (name, value, smallest allowed value)
    sizes = (("kernel height", FH, 1), ("kernel width", FW, 1), ("stride", stride, 1))
    for name, value, low in (*sizes, ("pad", pad, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{where}: {name} must be an integer >= {low}, got {value!r}")


# Every window of a given size as a read-only strided view (no copy).
_windows = np.lib.stride_tricks.sliding_window_view


def _pad_hw(x: np.ndarray, pad: int, value: float = 0.0) -> np.ndarray:
    """``x`` (N, C, H, W) with ``pad`` rows/columns of ``value`` around H and W (no copy if 0)."""
    if pad == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=value)


def _offset_slices(i: int, j: int, OH: int, OW: int, stride: int) -> tuple[slice, slice]:
    """Rows and columns that kernel offset (i, j) touches, one per output position."""
    return slice(i, i + stride * (OH - 1) + 1, stride), slice(j, j + stride * (OW - 1) + 1, stride)


def _channels_last_windows(
    x: np.ndarray, FH: int, FW: int, stride: int, pad: int, OH: int, OW: int
) -> np.ndarray:
    """Every FH×FW window of ``x`` (N, C, H, W) as a read-only (N, OH, OW, FH, FW, C) view of
    one zero-padded, channels-last copy of ``x`` (no copy at all when pad is 0 and ``x`` is
    already channels-last in memory, as a Convolution's output after ReLU is)."""
    N, C, H, W = x.shape
    if pad == 0:
        img = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    else:
        img = np.zeros((N, H + 2 * pad, W + 2 * pad, C), dtype=x.dtype)
        img[:, pad : pad + H, pad : pad + W, :] = x.transpose(0, 2, 3, 1)
    windows = _windows(img, (FH, FW), axis=(1, 2))  # (N, H', W', C, FH, FW)
    return windows[:, : stride * (OH - 1) + 1 : stride, : stride * (OW - 1) + 1 : stride].transpose(
        0, 1, 2, 4, 5, 3
    )


def im2col(
    x: np.ndarray, FH: int, FW: int, stride: int = 1, pad: int = 0, channels_last: bool = False
) -> np.ndarray:
    """Unfold every FH×FW window of ``x`` (N, C, H, W) into a row of ``col``, shape
    (N·OH·OW, C·FH·FW), rows ordered (n, oh, ow).

    Columns are ordered (c, fh, fw) by default, the book's layout, so
    ``col @ W.reshape(FN, -1).T`` is the convolution with the book's weights. With
    ``channels_last=True`` they are ordered (fh, fw, c), to be paired with
    ``W.transpose(0, 2, 3, 1).reshape(FN, -1)``; for C = 1 both orders are the same.
    Convolution uses channels_last: then each window row is FW·C contiguous values of the
    channels-last input and the whole col is filled by one copy of the window view, 3-4×
    faster for C >= 16 than the book's order, whose contiguous runs are one value long.
    (NumPy's copy pays per run.) The book's order is filled one kernel offset at a time,
    in runs of C, which measured faster than one copy in runs of one.
    """
    x = np.asarray(x)
    N, C = x.shape[:2]
    OH, OW = conv_output_shape(x.shape, FH, FW, stride, pad, "im2col")
    if C == 1:
        return _im2col_one_channel(x, FH, FW, stride, pad, OH, OW)
    windows = _channels_last_windows(x, FH, FW, stride, pad, OH, OW)
    if channels_last:
        col = np.empty(windows.shape, dtype=x.dtype)
        in_parts(lambda b: np.copyto(col[b], windows[b]), N, col.size >= SPLIT_MIN_ELEMENTS)
    else:
        col = np.empty((N, OH, OW, C, FH, FW), dtype=x.dtype)
        for i in range(FH):
            for j in range(FW):
                col[..., i, j] = windows[:, :, :, i, j, :]
    return col.reshape(N * OH * OW, C * FH * FW)


def _im2col_one_channel(x: np.ndarray, FH: int, FW: int, stride: int, pad: int, OH: int, OW: int) -> np.ndarray:
    """im2col of a one-channel input (a network's first layer), where both column orders
    agree: each column of col is one kernel offset's strided view of the images, so col is
    filled column by column, as a column-major array, in runs of OW values. The window view
    would copy it in runs of FW values (5 for the book's filters): 1.5 ms for 100 images
    against ~0.5 ms. BLAS takes the column-major col as it is."""
    N = x.shape[0]
    img = _pad_hw(x, pad)[:, 0]
    col_t = np.empty((FH, FW, N, OH, OW), dtype=x.dtype)  # col transposed, as its memory lies

    def fill(b: slice | EllipsisType) -> None:  # samples b (see _threads.in_parts)
        for i, j in np.ndindex(FH, FW):
            np.copyto(col_t[i, j, b], img[(b, *_offset_slices(i, j, OH, OW, stride))])

    in_parts(fill, N, col_t.size >= SPLIT_MIN_ELEMENTS)
    return col_t.reshape(FH * FW, N * OH * OW).T


def col2im(
    col: np.ndarray, x_shape: tuple[int, ...], FH: int, FW: int, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """The adjoint of :func:`im2col`: add every row's window back where it came from.

    Overlapping windows sum, and padding is cropped away. The sum runs once per kernel
    offset, each adding one whole strided slice into a channels-last buffer; the result is an
    (N, C, H, W) view of it, so usually not C-contiguous. (Convolution computes its dx with
    :func:`conv_input_grad`, the same sum, faster.)
    """
    col = np.asarray(col)
    N, C, H, W = x_shape
    OH, OW = conv_output_shape(x_shape, FH, FW, stride, pad, "col2im")
    if col.shape != (N * OH * OW, C * FH * FW):
        raise ShapeError(
            f"col2im: col has shape {col.shape}, expected {(N * OH * OW, C * FH * FW)} "
            f"for x_shape={tuple(x_shape)}, kernel {FH}x{FW}, stride {stride}, pad {pad}"
        )
    col = col.reshape(N, OH, OW, C, FH, FW)
    img = np.zeros((N, H + 2 * pad, W + 2 * pad, C), dtype=col.dtype)
    for i in range(FH):
        for j in range(FW):
            rows, cols = _offset_slices(i, j, OH, OW, stride)
            img[:, rows, cols, :] += col[..., i, j]
    return img[:, pad : pad + H, pad : pad + W, :].transpose(0, 3, 1, 2)


def conv_input_grad(
    d: np.ndarray, W: np.ndarray, x_shape: tuple[int, ...], stride: int = 1, pad: int = 0
) -> np.ndarray:
    """The input gradient of a convolution, given ``d`` = dout as rows (N·OH·OW, FN)
    ordered (n, oh, ow) and the weights W (FN, C, FH, FW).

    Equal to the book's ``col2im(d @ W.reshape(FN, -1), x_shape, FH, FW, stride, pad)``,
    computed per kernel offset k = (i, j): d @ W[:, :, i, j] is the (N·OH·OW, C) gradient of
    the input pixels that offset touched. One batched matmul makes all FH·FW of them, and
    each is added to its strided slice of a channels-last image in runs of OW·C values
    (col2im's runs are one value long); about 2× faster than col2im for C >= 16.
    Returns an (N, C, H, W) view of a channels-last buffer.
    """
    N, C, H, Wd = x_shape
    FN, _, FH, FW = W.shape
    OH, OW = conv_output_shape(x_shape, FH, FW, stride, pad, "conv_input_grad")
    if d.shape != (N * OH * OW, FN):
        raise ShapeError(
            f"conv_input_grad: d has shape {d.shape}, expected {(N * OH * OW, FN)} for "
            f"x_shape={tuple(x_shape)}, W.shape={W.shape}, stride {stride}, pad {pad}"
        )
    per_offset = W.transpose(2, 3, 0, 1).reshape(FH * FW, FN, C)
    dcol = np.matmul(d, per_offset).reshape(FH, FW, N, OH, OW, C)
    img = np.zeros((N, H + 2 * pad, Wd + 2 * pad, C), dtype=dcol.dtype)
    for i in range(FH):
        for j in range(FW):
            rows, cols = _offset_slices(i, j, OH, OW, stride)
            img[:, rows, cols, :] += dcol[i, j]
    return img[:, pad : pad + H, pad : pad + Wd, :].transpose(0, 3, 1, 2)


def _scatter_windows(
    dwin: np.ndarray, x_shape: tuple[int, ...], stride: int, pad: int
) -> np.ndarray:
    """Sum per-window gradients ``dwin`` (N, C, OH, OW, FH, FW) into an (N, C, H, W) array."""
    N, C, H, W = x_shape
    OH, OW, FH, FW = dwin.shape[2:]
    dx = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=dwin.dtype)
    for i in range(FH):
        for j in range(FW):
            rows, cols = _offset_slices(i, j, OH, OW, stride)
            dx[:, :, rows, cols] += dwin[..., i, j]
    return dx[:, :, pad : pad + H, pad : pad + W]


def max_pool(
    x: np.ndarray, ph: int, pw: int, stride: int, pad: int = 0, *, with_arg_max: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Max over each ph×pw window of ``x`` (N, C, H, W); returns ``(out, arg_max)``.

    ``arg_max`` (N, C, OH, OW) is the position of the max inside its window, counted row by
    row (0 .. ph·pw-1); on ties it is the FIRST such position, as the book's np.argmax over
    im2col rows chooses (and PyTorch). Padding is -inf, so a padded position never wins.

    Computed without copying the windows: a running max over the ph·pw strided views
    x[:, :, i::stride, j::stride], one per kernel offset, moving ``arg_max`` to offset k
    only where the value there is strictly greater (so the first max keeps it). The book's
    im2col + argmax over rows of length ph·pw measured ~5× slower, and the reshape-and-reduce
    ``x.reshape(N, C, OH, ph, OW, pw).max(axis=(3, 5))`` for tiling windows ~30× slower
    (NumPy reduces two tiny non-adjacent axes element by element). A window holding NaN
    outputs NaN (np.maximum propagates it); which of its positions gets the gradient is then
    unspecified. ``with_arg_max=False`` returns ``(out, None)``, the same ``out`` for a
    quarter of the work.
    """
    OH, OW = conv_output_shape(x.shape, ph, pw, stride, pad, "max_pool")
    xp = _pad_hw(x, pad, -np.inf)
    offsets = [xp[(slice(None), slice(None), *_offset_slices(i, j, OH, OW, stride))]
               for i, j in np.ndindex(ph, pw)]  # window position k's value, for every window
    out = np.empty(offsets[0].shape, dtype=x.dtype)
    arg_max = np.zeros(out.shape, dtype=np.min_scalar_type(ph * pw - 1)) if with_arg_max else None

    def pool(b: slice | EllipsisType) -> None:  # samples b (see _threads.in_parts)
        np.copyto(out[b], offsets[0][b])
        if arg_max is not None:
            # Scratch made once: fresh temporaries per pass page-fault, and two threads
            # faulting at once wait on each other (max pooling on 2 threads: 1.24x -> 1.9x).
            greater, step = np.empty(out[b].shape, dtype=bool), np.empty(out[b].shape, dtype=arg_max.dtype)
        for k, part in enumerate(offsets[1:], start=1):
            if arg_max is not None:
                # arg_max = k where part > out, else unchanged, as arithmetic on unsigned
                # ints (wrap-around makes k - arg_max exact): np.where/np.copyto with a
                # random mask measured ~15x slower than these three passes.
                np.greater(part[b], out[b], out=greater)  # strictly: on a tie the first position keeps it
                np.subtract(k, arg_max[b], out=step, dtype=arg_max.dtype)
                step *= greater
                arg_max[b] += step
            np.maximum(out[b], part[b], out=out[b])

    in_parts(pool, x.shape[0], x.size >= SPLIT_MIN_ELEMENTS)
    return out, arg_max


def max_pool_backward(
    dout: np.ndarray, arg_max: np.ndarray, x_shape: tuple[int, ...],
    ph: int, pw: int, stride: int, pad: int = 0,
    *, channels_last: bool = False, tiled_fast_path: bool = True,
) -> np.ndarray:
    """Route each dout element to its window's ``arg_max`` position; overlapping windows add.

    ``channels_last=True`` lays dx out in memory as (N, H, W, C) (still indexed NCHW), the
    layout of a Convolution's output, so the layers below combine dx with their caches and
    Convolution reshapes it without a transpose copy.

    Fast path, when the windows tile the input (stride == ph == pw, pad == 0, the 2×2/2
    pooling of every book network): each input position lies in exactly one window, so each
    kernel offset WRITES its strided sub-grid of dx, with no zero fill, no accumulation and
    no padding to crop; ~2× faster than the general path, which adds into a zeroed, padded
    buffer. ``tiled_fast_path=False`` forces the general path (a test compares the two).
    Positions are selected by multiplying with a 0/1 mask, so an infinite dout (training
    has already diverged) would leave NaN beside its window's max.
    """
    N, C, H, W = x_shape
    OH, OW = arg_max.shape[2:]
    dout = np.asarray(dout)

    def buffer(fill: object, h: int, w: int) -> np.ndarray:
        if channels_last:
            return fill((N, h, w, C), dtype=dout.dtype).transpose(0, 3, 1, 2)
        return fill((N, C, h, w), dtype=dout.dtype)

    tiled = tiled_fast_path and pad == 0 and stride == ph == pw
    dx = buffer(np.empty, H, W) if tiled else buffer(np.zeros, H + 2 * pad, W + 2 * pad)

    def route(b: slice | EllipsisType) -> None:  # samples b (see _threads.in_parts)
        for k, (i, j) in enumerate(np.ndindex(ph, pw)):
            # A mask product, not np.where: ~15× faster with a random mask.
            if tiled:
                np.multiply(dout[b], arg_max[b] == k, out=dx[b][:, :, i::ph, j::pw])
            else:
                rows, cols = _offset_slices(i, j, OH, OW, stride)
                dx[b][:, :, rows, cols] += dout[b] * (arg_max[b] == k)

    in_parts(route, N, dx.size >= SPLIT_MIN_ELEMENTS)
    return dx if tiled else dx[:, :, pad : pad + H, pad : pad + W]


def avg_pool(x: np.ndarray, ph: int, pw: int, stride: int, pad: int = 0) -> np.ndarray:
    """Mean over each ph×pw window; zero padding counts in the average (divisor always ph·pw),
    PyTorch's ``count_include_pad=True`` default."""
    OH, OW = conv_output_shape(x.shape, ph, pw, stride, pad, "avg_pool")
    xp = _pad_hw(x, pad)
    out = None
    for i in range(ph):
        for j in range(pw):
            part = xp[(slice(None), slice(None), *_offset_slices(i, j, OH, OW, stride))]
            out = part.copy() if out is None else np.add(out, part, out=out)
    out *= 1.0 / (ph * pw)  # a Python float: float32 stays float32
    return out


def avg_pool_backward(
    dout: np.ndarray, x_shape: tuple[int, ...], ph: int, pw: int, stride: int, pad: int = 0
) -> np.ndarray:
    """Spread dout / (ph·pw) evenly over each window (a broadcast view, not a copy)."""
    g = np.asarray(dout) * (1.0 / (ph * pw))
    dwin = np.broadcast_to(g[..., None, None], (*g.shape, ph, pw))
    return _scatter_windows(dwin, x_shape, stride, pad)


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

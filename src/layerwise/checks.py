"""Input validation shared by the layers, the losses and the functions: one place that turns
a bad shape, dtype or label into an error naming the layer, what it expected and what it got.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError, ShapeError

__all__ = ["as_batch", "check_dout", "check_window", "class_labels", "conv_output_shape", "to_float_array"]


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


def class_labels(where: str, scores: np.ndarray, t: np.ndarray) -> np.ndarray:
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


def as_batch(where: str, y: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The book's convention: a single sample (1-D scores) is a batch of one."""
    if y.ndim == 1:
        y = y.reshape(1, -1)
        t = t.reshape(1, -1) if t.ndim == 1 and t.size == y.shape[1] else t.reshape(1)
    if y.ndim != 2:
        raise ShapeError(f"{where}: scores must have shape (N, C), got {y.shape}")
    if y.shape[0] == 0:
        raise InputError(f"{where}: empty batch (scores shape {y.shape})")
    return y, t


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
    check_window(FH, FW, stride, pad, where)
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


def check_window(FH: int, FW: int, stride: int, pad: int, where: str) -> None:
    # (name, value, smallest allowed value)
    sizes = (("kernel height", FH, 1), ("kernel width", FW, 1), ("stride", stride, 1))
    for name, value, low in (*sizes, ("pad", pad, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise InputError(f"{where}: {name} must be an integer >= {low}, got {value!r}")


def check_dout(where: str, dout: np.ndarray, expected: tuple[int, ...]) -> None:
    """backward's upstream gradient must have the shape forward returned."""
    if dout.shape != expected:
        raise ShapeError(f"{where}: dout has shape {dout.shape}, expected {expected}")

"""Weight initialisers: He, the book's Xavier, Glorot, and a fixed standard deviation.

Every initialiser takes ``(shape, rng, dtype)`` and draws from ``rng`` in float64 before
casting, so a float32 and a float64 model built from the same seed hold the same weights up
to rounding (the float64 twin is what gradient checks run on).

fan_in is the number of inputs each output unit sees: ``shape[0]`` for an Affine weight of
shape (in, out), ``C·FH·FW`` for a convolution filter bank of shape (FN, C, FH, FW).
fan_out is ``shape[1]`` and ``FN·FH·FW`` respectively.

The book's strings (``MultiLayerNet(weight_init_std=...)``) map exactly to the book's formulas,
with n = fan_in, the size of the previous layer:

=====================  ============================  ===========================
scheme                 distribution                  book name
=====================  ============================  ===========================
``"relu"``, ``"he"``   N(0, 2/n)                     He
``"sigmoid"``,         N(0, 1/n)                     Xavier (the book's form)
``"xavier"``
``"glorot_normal"``    N(0, 2/(fan_in + fan_out))    (Glorot & Bengio 2010)
``"glorot_uniform"``   U(±√(6/(fan_in + fan_out)))   (Glorot & Bengio 2010)
a number σ             N(0, σ²)                      ``weight_init_std=0.01``
=====================  ============================  ===========================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from .errors import InputError, ShapeError

__all__ = [
    "INIT_SCHEMES",
    "fan_in_out",
    "generator",
    "glorot_normal",
    "glorot_uniform",
    "he_normal",
    "init_weight",
    "normal",
    "xavier_normal",
]

DTypeLike = np.dtype | type | str


def generator(seed: np.random.Generator | int | None) -> np.random.Generator:
    """The generator to draw from: ``seed`` itself if it is one, else one seeded by ``seed``.

    ``None`` takes the seed from NumPy's global random state, so ``np.random.seed(0)`` before
    building a net or a Dropout makes its draws repeatable, as in the book (whose layers call
    ``np.random.randn``); the draws themselves come from a ``Generator`` as everywhere else.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng(np.random.randint(0, 2**63 - 1, dtype=np.int64))  # noqa: NPY002 (on purpose)
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(seed)
    raise InputError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(seed).__name__}")


def _shape(shape: Sequence[int] | int) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in shape):
        raise ShapeError(f"weight shape must be positive integers, got {shape}")
    return tuple(int(n) for n in shape)


def fan_in_out(shape: Sequence[int]) -> tuple[int, int]:
    """(fan_in, fan_out) of an Affine weight (in, out) or a conv weight (FN, C, FH, FW)."""
    shape = _shape(shape)
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) >= 3:
        receptive = math.prod(shape[2:])
        return shape[1] * receptive, shape[0] * receptive
    raise ShapeError(f"cannot tell fan-in of a weight of shape {shape}: expected (in, out) or (FN, C, FH, FW)")


def normal(
    shape: Sequence[int], std: float, rng: np.random.Generator | int | None = None, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """std · N(0, 1): the book's ``weight_init_std * np.random.randn(...)``."""
    shape = _shape(shape)
    std = _std(std)
    return (std * generator(rng).standard_normal(shape)).astype(dtype, copy=False)


def he_normal(
    shape: Sequence[int], rng: np.random.Generator | int | None = None, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """He (Kaiming normal): N(0, 2/fan_in), for ReLU networks."""
    fan_in, _ = fan_in_out(shape)
    return normal(shape, math.sqrt(2.0 / fan_in), rng, dtype)


def xavier_normal(
    shape: Sequence[int], rng: np.random.Generator | int | None = None, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """The book's Xavier: N(0, 1/fan_in), for sigmoid/tanh networks."""
    fan_in, _ = fan_in_out(shape)
    return normal(shape, math.sqrt(1.0 / fan_in), rng, dtype)


def glorot_normal(
    shape: Sequence[int], rng: np.random.Generator | int | None = None, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """Glorot normal: N(0, 2/(fan_in + fan_out))."""
    fan_in, fan_out = fan_in_out(shape)
    return normal(shape, math.sqrt(2.0 / (fan_in + fan_out)), rng, dtype)


def glorot_uniform(
    shape: Sequence[int], rng: np.random.Generator | int | None = None, dtype: DTypeLike = np.float32
) -> np.ndarray:
    """Glorot uniform: U(−a, a) with a = √(6/(fan_in + fan_out))."""
    fan_in, fan_out = fan_in_out(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return generator(rng).uniform(-limit, limit, _shape(shape)).astype(dtype, copy=False)


Initializer = Callable[[Sequence[int], np.random.Generator, DTypeLike], np.ndarray]

#: Scheme names (lower case) -> initialiser; the book's names map to the book's formulas.
INIT_SCHEMES: dict[str, Initializer] = {
    "relu": he_normal,
    "he": he_normal,
    "sigmoid": xavier_normal,
    "xavier": xavier_normal,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
}


def _std(value: object) -> float:
    std = float(value)  # type: ignore[arg-type]
    if not math.isfinite(std) or std < 0:
        raise InputError(f"weight init std must be a finite number >= 0, got {value!r}")
    return std


def init_weight(
    shape: Sequence[int],
    scheme: str | float,
    rng: np.random.Generator | int | None = None,
    dtype: DTypeLike = np.float32,
) -> np.ndarray:
    """A weight of ``shape`` drawn by ``scheme``: a name from ``INIT_SCHEMES`` (case-insensitive,
    as the book's ``str(weight_init_std).lower()``) or a number (or numeric string) used as a
    fixed standard deviation."""
    if isinstance(scheme, bool):
        raise InputError(f"weight init scheme must be a name or a number, got {scheme!r}")
    if isinstance(scheme, str):
        init = INIT_SCHEMES.get(scheme.strip().lower())
        if init is not None:
            return init(shape, generator(rng), dtype)
        try:
            std = float(scheme)
        except ValueError:
            raise InputError(
                f"unknown weight init {scheme!r}; choose from {', '.join(INIT_SCHEMES)} or a number (std)"
            ) from None
        return normal(shape, _std(std), rng, dtype)
    if isinstance(scheme, (int, float, np.integer, np.floating)):
        return normal(shape, _std(scheme), rng, dtype)
    raise InputError(f"weight init scheme must be a name or a number, got {type(scheme).__name__}")

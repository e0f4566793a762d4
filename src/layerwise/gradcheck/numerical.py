"""The numerical gradient: central differences, the reference every backward pass is checked against."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["numerical_gradient"]


def numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-4, indices: np.ndarray | None = None
) -> np.ndarray:
    """Central differences (f(x + h) - f(x - h)) / 2h for every element of ``x``, any shape.

    ``x`` is perturbed in place, one element at a time, and each element is restored to its
    exact original bits afterwards (even if ``f`` raises). The perturbation and the returned
    gradient are in x's own dtype: float32 (7 digits) cannot resolve a difference quotient with
    h = 1e-4, so pass float64 arrays. A model's ``numerical_gradient`` does that for you: it
    runs on a float64 copy of a float32 model (see ``Sequential.numerical_gradient``).

    ``indices`` (flat positions) limits the work to those elements, and the others stay 0: a
    spot check of a large weight matrix, as ``layerwise serve``'s check button does.
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError(f"numerical_gradient: x must be a floating ndarray, got {type(x).__name__}")
    grad = np.zeros_like(x)
    flat_x = x.reshape(-1)  # a view: x is contiguous or reshape raises below
    if not np.shares_memory(flat_x, x):
        raise ValueError("numerical_gradient: x must be a contiguous array (it is perturbed in place)")
    flat_g = grad.reshape(-1)
    for i in range(flat_x.size) if indices is None else np.asarray(indices, dtype=np.intp).reshape(-1):
        original = flat_x[i].copy()
        try:
            flat_x[i] = original + h
            f_plus = float(f(x))
            flat_x[i] = original - h
            f_minus = float(f(x))
        finally:
            flat_x[i] = original
        flat_g[i] = (f_plus - f_minus) / (2 * h)
    return grad

"""The book's ``common/gradient.py``: ``numerical_gradient(f, x)`` is
``layerwise.gradcheck.numerical_gradient`` (central differences, h = 1e-4, any shape; each
element restored to its exact bits afterwards)."""

from collections.abc import Callable as _Callable

import numpy as np

from layerwise.gradcheck import numerical_gradient

#: The book's 1-D helper: the same central differences (layerwise's works on any shape).
_numerical_gradient_1d = numerical_gradient

__all__ = ["np", "numerical_gradient", "numerical_gradient_2d"]


def numerical_gradient_2d(f: _Callable[[np.ndarray], float], X: np.ndarray) -> np.ndarray:
    """The book's ``numerical_gradient_2d``: for a 2-D ``X``, the gradient of ``f`` at each ROW
    of X separately (``f`` takes one point, a row); a 1-D ``X`` is one point."""
    if X.ndim == 1:
        return numerical_gradient(f, X)
    grad = np.zeros_like(X)
    for i, row in enumerate(X):
        grad[i] = numerical_gradient(f, row)
    return grad

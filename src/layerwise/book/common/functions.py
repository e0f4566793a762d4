"""The book's ``common/functions.py``: every name is ``layerwise.functional``'s function.

``softmax_loss`` is ``layerwise.functional.softmax_cross_entropy`` (the same value, computed
through log-softmax). Differences from the book (see docs/book.md): ``cross_entropy_error`` has
no ``+ 1e-7`` inside the log, ``step_function`` and ``relu_grad`` return x's float dtype,
``relu_grad(0)`` is 0 as the ``Relu`` layer's gradient, ``sigmoid`` never overflows.
"""

import numpy as np

from layerwise.functional import (
    cross_entropy_error,
    identity_function,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
    step_function,
    sum_squared_error,
)
from layerwise.functional import softmax_cross_entropy as softmax_loss

__all__ = [
    "cross_entropy_error",
    "identity_function",
    "np",
    "relu",
    "relu_grad",
    "sigmoid",
    "sigmoid_grad",
    "softmax",
    "softmax_loss",
    "step_function",
    "sum_squared_error",
]

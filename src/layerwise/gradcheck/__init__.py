"""Gradient checking: analytic backward passes against central differences, in three modules:

- ``numerical``: ``numerical_gradient``, central differences in the array's own dtype.
- ``checks``: ``relative_error``, ``check_gradients``, ``check_layer``, ``check_model``,
  ``TOLERANCE``, ``GradCheckCase`` (one row of the table) and ``away_from_zero``.
- ``cases``: the case tables of every layer type (``standard_cases``, the whole table of
  ``layerwise gradcheck``; ``norm_cases`` and ``conv_cases``, parts of it).
"""

from .cases import conv_cases, norm_cases, standard_cases
from .checks import (
    TOLERANCE,
    GradCheckCase,
    away_from_zero,
    check_gradients,
    check_layer,
    check_model,
    relative_error,
)
from .numerical import numerical_gradient

__all__ = [
    "TOLERANCE",
    "GradCheckCase",
    "away_from_zero",
    "check_gradients",
    "check_layer",
    "check_model",
    "conv_cases",
    "norm_cases",
    "numerical_gradient",
    "relative_error",
    "standard_cases",
]

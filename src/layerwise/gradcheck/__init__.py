"""Gradient checking: analytic backward passes against central differences, in three modules:

- ``numerical``: ``numerical_gradient``, central differences in the array's own dtype.
- ``checks``: ``relative_error``, ``check_gradients``, ``check_layer``, ``check_model``,
  ``TOLERANCE``, ``GradCheckCase`` (one row of the table) and ``away_from_zero``.
- ``cases``: the case tables of every layer type (``standard_cases``, the whole table of
  ``layerwise gradcheck``; ``norm_cases`` and ``conv_cases``, parts of it).
"""

from . import cases, checks, numerical
from .cases import *  # noqa: F403
from .checks import *  # noqa: F403
from .numerical import *  # noqa: F403

__all__ = [*cases.__all__, *checks.__all__, *numerical.__all__]

"""Optimizers with the book's API, ``optimizer.update(params, grads)``, each concern in its own module:

- ``rules``: the update rules as formulas (SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam),
  each with its source and the ``torch.optim`` optimizer it equals; and the rules by name
  (``OPTIMIZERS``, ``make_optimizer``, ``optimizer_from_state_dict``).
- ``base``: the ``Optimizer`` base class: hyperparameter checks, per-parameter state,
  ``update`` and its validation, ``state_dict`` / ``load_state_dict``.
- ``schedules``: learning-rate schedules (``LR_SCHEDULES``, ``lr_factor``).

The speed machinery of ``update`` (cached per-parameter plans, scratch buffers, a large
parameter split across threads) is ``layerwise.kernels.updates``.
"""

from . import base, rules, schedules
from .base import *  # noqa: F403
from .rules import *  # noqa: F403
from .schedules import *  # noqa: F403

__all__ = [*base.__all__, *rules.__all__, *schedules.__all__]

"""The book's ``common/optimizer.py``: layerwise's optimizers (``layerwise.optim``), with the
book's constructors (``SGD(lr=0.01)``, ``Momentum(lr=0.01, momentum=0.9)``,
``Nesterov(lr=0.01, momentum=0.9)``, ``AdaGrad(lr=0.01)``, ``RMSprop(lr=0.01, decay_rate=0.99)``,
``Adam(lr=0.001, beta1=0.9, beta2=0.999)``) and ``update(params, grads)``.

Each class here is the layerwise class plus one thing the book's update has: a parameter may
be a Python number (chapter 6's ``optimizer_compare_naive.py`` descends on ``params['x']``, a
float). layerwise updates arrays in place; a number cannot be changed in place, so it is
updated as a 0-d float64 array and written back into ``params`` as a new float, as the
book's ``params[key] -= ...`` rebinds it. The update formulas are layerwise's (Nesterov and
Adam follow PyTorch, not the book's variants; see docs/book.md).
"""

from collections.abc import Mapping as _Mapping
from collections.abc import MutableMapping as _MutableMapping

import numpy as np

from layerwise import optim as _optim

__all__ = ["SGD", "AdaGrad", "Adam", "Momentum", "Nesterov", "RMSprop", "np"]


class _BookUpdate:
    """``update(params, grads)`` that also takes Python numbers as parameters (see the module doc)."""

    def update(self, params: _MutableMapping, grads: _Mapping) -> None:
        numbers = [key for key in params if not isinstance(params[key], np.ndarray)]
        if not numbers:
            super().update(params, grads)  # type: ignore[misc]
            return
        boxed = dict(params)
        for key in numbers:
            boxed[key] = np.array(params[key], dtype=np.float64)
        super().update(boxed, grads)  # type: ignore[misc]
        for key in numbers:
            params[key] = float(boxed[key])


class SGD(_BookUpdate, _optim.SGD):
    __doc__ = _optim.SGD.__doc__


class Momentum(_BookUpdate, _optim.Momentum):
    __doc__ = _optim.Momentum.__doc__


class Nesterov(_BookUpdate, _optim.Nesterov):
    __doc__ = _optim.Nesterov.__doc__


class AdaGrad(_BookUpdate, _optim.AdaGrad):
    __doc__ = _optim.AdaGrad.__doc__


class RMSprop(_BookUpdate, _optim.RMSprop):
    __doc__ = _optim.RMSprop.__doc__


class Adam(_BookUpdate, _optim.Adam):
    __doc__ = _optim.Adam.__doc__

"""The book's ``common/multi_layer_net.py``: ``MultiLayerNet`` is ``layerwise.MultiLayerNet``
(float64 unless ``dtype=`` says otherwise; ``layers`` keyed ``Affine1``, ``Activation_function1``, ...)."""

import numpy as np

from layerwise.models import MultiLayerNet

__all__ = ["MultiLayerNet", "np"]

"""The book's ``common/multi_layer_net_extend.py``: ``MultiLayerNetExtend`` is layerwise's
(``layerwise.models.MultiLayerNetExtend``): ``MultiLayerNet`` with the book's chapter-6
defaults, Dropout scaled at test time and ``loss(x, t)`` in test mode."""

import numpy as np

from layerwise.models import MultiLayerNetExtend

__all__ = ["MultiLayerNetExtend", "np"]

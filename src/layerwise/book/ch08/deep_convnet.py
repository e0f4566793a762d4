"""The book's ``ch08/deep_convnet.py``: ``DeepConvNet`` is ``layerwise.DeepConvNet`` (the book's
architecture and dropout scaling, float64 unless ``dtype=`` says otherwise; ``load_params``
reads the book's ``deep_convnet_params.pkl`` through layerwise's restricted unpickler)."""

import numpy as np

from layerwise.models import DeepConvNet

__all__ = ["DeepConvNet", "np"]

"""The book's ``ch05/two_layer_net.py``: ``TwoLayerNet(input_size, hidden_size, output_size,
weight_init_std=0.01)`` is ``layerwise.TwoLayerNet`` (float64 unless ``dtype=`` says otherwise)."""

import numpy as np

from layerwise.models import TwoLayerNet

__all__ = ["TwoLayerNet", "np"]

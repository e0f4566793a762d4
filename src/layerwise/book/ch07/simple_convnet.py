"""The book's ``ch07/simple_convnet.py``: ``SimpleConvNet(input_dim=(1, 28, 28), conv_param=...,
hidden_size=100, output_size=10, weight_init_std=0.01)`` is ``layerwise.SimpleConvNet``
(float64 unless ``dtype=`` says otherwise; ``save_params``/``load_params`` read and write the
book's ``params.pkl``, reading through layerwise's restricted unpickler)."""

import numpy as np

from layerwise.models import SimpleConvNet

__all__ = ["SimpleConvNet", "np"]

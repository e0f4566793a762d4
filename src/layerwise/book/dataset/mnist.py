"""The book's ``dataset/mnist.py``: ``load_mnist(normalize=True, flatten=True, one_hot_label=False)``
is ``layerwise.load_mnist``, with the book's return value and dtypes: images float32 in [0, 1]
(uint8 0..255 without ``normalize``), shape (N, 784) or (N, 1, 28, 28); labels uint8 class
indices, or float64 one-hot rows.

The four IDX files are looked for in ``$LAYERWISE_DATA/mnist/``, ``$LAYERWISE_DATA/`` and the user
cache directory (``~/.cache/layerwise/mnist/`` on Linux), else downloaded there from public
mirrors; every file is checked against its published checksum (``layerwise.datasets.mnist``).
The book instead downloads into its ``dataset/`` folder and caches a ``mnist.pkl`` there.
"""

from pathlib import Path as _Path

import numpy as np

from layerwise.datasets import fetch_dataset as _fetch_dataset
from layerwise.datasets import load_mnist

__all__ = ["init_mnist", "load_mnist", "np"]


def init_mnist() -> dict[str, _Path]:
    """Make sure the four verified MNIST files are on disk (found or downloaded, as
    ``load_mnist`` does); returns their paths. The book's ``init_mnist`` downloads and writes
    ``mnist.pkl``; layerwise reads the IDX files themselves and writes no pickle."""
    return _fetch_dataset("mnist")

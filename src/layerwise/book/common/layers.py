"""The book's ``common/layers.py``.

``Relu``, ``Sigmoid``, ``Affine``, ``SoftmaxWithLoss`` and ``Convolution`` are layerwise's own
layers (``layerwise.Relu`` etc.). ``Dropout``, ``Pooling`` and ``BatchNormalization`` are
layerwise's layers with the book's defaults, in subclasses of a few lines:

- ``Dropout(dropout_ratio=0.5)``: the book's scaling (× (1 - ratio) at test time,
  ``mode="book"``); layerwise's own Dropout defaults to inverted dropout.
- ``Pooling(pool_h, pool_w, stride=1, pad=0)``: the book's default stride; layerwise's is 2.
- ``BatchNormalization(gamma, beta, momentum=0.9, running_mean=None, running_var=None)``:
  normalises every value of an (N, C, H, W) input separately (``per_feature=True``), as the
  book does; layerwise's own default normalises per channel.

``Dropout`` and ``BatchNormalization`` take the mode as the book's ``forward(x, train_flg=True)``
and as layerwise's ``forward(x, train=True)``. Like the book's module, a star import also brings
``np``, the functions of ``common.functions`` and ``im2col``/``col2im``.
"""

import numpy as np

from layerwise.layers import Affine, Convolution, Relu, Sigmoid, SoftmaxWithLoss
from layerwise.layers import BatchNormalization as _BatchNormalization
from layerwise.layers import Dropout as _Dropout
from layerwise.layers import Pooling as _Pooling

from . import functions
from .functions import *  # noqa: F403  (the book's layers.py star-imports its functions too)
from .util import col2im, im2col

__all__ = [
    "Affine",
    "BatchNormalization",
    "Convolution",
    "Dropout",
    "Pooling",
    "Relu",
    "Sigmoid",
    "SoftmaxWithLoss",
    "col2im",
    "im2col",
    *functions.__all__,
]


class Dropout(_Dropout):
    """``layerwise.Dropout`` with the book's scaling: train out = x · mask, test out = x · (1 - ratio).

    The mask comes from the layer's own generator, seeded from NumPy's global state when the
    layer is made (``np.random.seed(...)`` first makes it repeatable; the book draws every mask
    from the global state itself).
    """

    def __init__(self, dropout_ratio: float = 0.5, *, mode: str = "book",
                 seed: int | np.random.Generator | None = None) -> None:
        super().__init__(dropout_ratio, mode=mode, seed=seed)

    def forward(self, x: np.ndarray, train_flg: bool = True, *, train: bool | None = None) -> np.ndarray:
        return super().forward(x, train_flg if train is None else train)


class Pooling(_Pooling):
    """``layerwise.Pooling`` (max pooling) with the book's default ``stride=1``."""

    def __init__(self, pool_h: int, pool_w: int, stride: int = 1, pad: int = 0) -> None:
        super().__init__(pool_h, pool_w, stride, pad)


class BatchNormalization(_BatchNormalization):
    """``layerwise.BatchNormalization`` normalising every value of an image separately, as the
    book's (gamma and beta of length C·H·W for an (N, C, H, W) input).

    Differences kept from layerwise (docs/book.md): ``running_var`` starts at 1, not 0.
    """

    def __init__(self, gamma: np.ndarray, beta: np.ndarray, momentum: float = 0.9,
                 running_mean: np.ndarray | None = None, running_var: np.ndarray | None = None,
                 eps: float = 1e-6, per_feature: bool = True) -> None:
        super().__init__(gamma, beta, momentum, running_mean, running_var, eps=eps, per_feature=per_feature)

    def forward(self, x: np.ndarray, train_flg: bool = True, *, train: bool | None = None) -> np.ndarray:
        return super().forward(x, train_flg if train is None else train)

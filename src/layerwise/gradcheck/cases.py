"""The case tables of ``layerwise gradcheck``: every layer type, each with a small random
float64 example (a ``GradCheckCase``: how to build the layer and its input)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .. import layers as L
from .checks import GradCheckCase, away_from_zero

__all__ = ["conv_cases", "norm_cases", "standard_cases"]


def standard_cases() -> Iterator[GradCheckCase]:
    """Every layer type layerwise has, each with a small random float64 example: the whole
    table ``layerwise gradcheck`` prints (``norm_cases`` and ``conv_cases`` included)."""

    def affine(rng: np.random.Generator):
        W = rng.standard_normal((6, 4))
        return L.Affine(W, rng.standard_normal(4)), rng.standard_normal((3, 2, 3)), None

    def unary(cls, **kw):
        return lambda rng: (cls(**kw), away_from_zero(rng, (4, 5)), None)

    def softmax_loss_indices(rng: np.random.Generator):
        return L.SoftmaxWithLoss(), rng.standard_normal((5, 4)) * 3, rng.integers(0, 4, 5)

    def softmax_loss_onehot(rng: np.random.Generator):
        t = np.eye(4)[rng.integers(0, 4, 5)]
        return L.SoftmaxWithLoss(), rng.standard_normal((5, 4)) * 3, t

    def mse(rng: np.random.Generator):
        return L.MeanSquaredError(), rng.standard_normal((5, 3)), rng.standard_normal((5, 3))

    yield GradCheckCase("ReLU", unary(L.ReLU))
    yield GradCheckCase("LeakyReLU(0.1)", unary(L.LeakyReLU, alpha=0.1))
    yield GradCheckCase("Sigmoid", unary(L.Sigmoid))
    yield GradCheckCase("Tanh", unary(L.Tanh))
    yield GradCheckCase("Softmax", unary(L.Softmax))
    yield GradCheckCase("Identity", unary(L.Identity))
    yield GradCheckCase("Flatten", lambda rng: (L.Flatten(), rng.standard_normal((2, 3, 4)), None))
    yield GradCheckCase("Affine", affine)
    yield GradCheckCase("SoftmaxWithLoss (indices)", softmax_loss_indices)
    yield GradCheckCase("SoftmaxWithLoss (one-hot)", softmax_loss_onehot)
    yield GradCheckCase("MeanSquaredError", mse)
    yield from norm_cases()
    yield from conv_cases()


def norm_cases() -> Iterator[GradCheckCase]:
    """Dropout (both modes) and BatchNormalization, in training and evaluation mode."""

    def dropout(mode: str):
        return lambda rng: (L.Dropout(0.4, mode=mode, seed=7), rng.standard_normal((4, 6)), None)

    def reseed(layer: L.Dropout):
        # The same mask on every forward, so central differences see a fixed function.
        return lambda: setattr(layer, "rng", np.random.default_rng(7))

    def batchnorm(shape: tuple[int, ...], per_feature: bool = False):
        def build(rng: np.random.Generator):
            D = int(np.prod(shape[1:])) if per_feature or len(shape) == 2 else shape[1]
            layer = L.BatchNormalization(
                rng.uniform(0.5, 1.5, D), rng.standard_normal(D), per_feature=per_feature,
                running_mean=rng.standard_normal(D), running_var=rng.uniform(0.5, 2.0, D),
            )
            return layer, rng.standard_normal(shape) * 2 + 1, None

        return build

    yield GradCheckCase("Dropout(0.4) inverted", dropout("inverted"), before_forward=reseed)
    yield GradCheckCase("Dropout(0.4) book", dropout("book"), before_forward=reseed)
    yield GradCheckCase("BatchNormalization (N, D)", batchnorm((5, 4)))
    yield GradCheckCase("BatchNormalization (N, C, H, W)", batchnorm((3, 2, 3, 4)))
    yield GradCheckCase(
        "BatchNormalization per_feature", batchnorm((4, 2, 2, 3), per_feature=True)
    )
    yield GradCheckCase("BatchNormalization eval", batchnorm((3, 2, 3, 4)), train=False)


def conv_cases() -> Iterator[GradCheckCase]:
    """Convolutions and poolings of several geometries."""

    def conv(C: int, FN: int, FH: int, FW: int, stride: int, pad: int, H: int, W: int):
        def build(rng: np.random.Generator):
            layer = L.Convolution(
                rng.standard_normal((FN, C, FH, FW)), rng.standard_normal(FN), stride, pad
            )
            return layer, rng.standard_normal((2, C, H, W)), None

        return build

    def pool(cls: type[L.Pooling | L.AvgPooling], ph: int, pw: int, stride: int, pad: int, H: int, W: int):
        def build(rng: np.random.Generator):
            # Distinct values spaced well apart: no window has a tie or a near-tie within h.
            n = 2 * 3 * H * W
            x = (rng.permutation(n) * 0.1 - n * 0.05).reshape(2, 3, H, W)
            return cls(ph, pw, stride, pad), x, None

        return build

    yield GradCheckCase("Convolution 3x3 stride 1 pad 0", conv(2, 3, 3, 3, 1, 0, 5, 5))
    yield GradCheckCase("Convolution 3x3 stride 1 pad 1", conv(2, 3, 3, 3, 1, 1, 4, 5))
    yield GradCheckCase("Convolution 3x2 stride 2 pad 1", conv(3, 2, 3, 2, 2, 1, 5, 4))
    yield GradCheckCase("Convolution 2x3 stride 2 pad 0", conv(1, 4, 2, 3, 2, 0, 6, 7))
    yield GradCheckCase("Pooling 2x2 stride 2 (tiled)", pool(L.Pooling, 2, 2, 2, 0, 4, 6))
    yield GradCheckCase("Pooling 3x3 stride 1 pad 1", pool(L.Pooling, 3, 3, 1, 1, 4, 5))
    yield GradCheckCase("Pooling 2x3 stride 1", pool(L.Pooling, 2, 3, 1, 0, 4, 5))
    yield GradCheckCase("AvgPooling 2x2 stride 2", pool(L.AvgPooling, 2, 2, 2, 0, 4, 6))
    yield GradCheckCase("AvgPooling 3x3 stride 2 pad 1", pool(L.AvgPooling, 3, 3, 2, 1, 5, 5))

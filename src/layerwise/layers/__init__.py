"""Layers: one module per family, each class the book's math. Every layer follows the contract in
``base.py``; their fast paths are in ``layerwise.kernels`` (docs/architecture.md)."""

from .activations import Flatten, Identity, LeakyReLU, ReLU, Relu, Sigmoid, Softmax, Tanh
from .affine import Affine
from .base import Layer
from .conv import AvgPooling, Convolution, Pooling
from .losses import MeanSquaredError, SoftmaxWithLoss
from .norm import BatchNormalization, Dropout

__all__ = [
    "Affine",
    "AvgPooling",
    "BatchNormalization",
    "Convolution",
    "Dropout",
    "Flatten",
    "Identity",
    "Layer",
    "LeakyReLU",
    "MeanSquaredError",
    "Pooling",
    "ReLU",
    "Relu",
    "Sigmoid",
    "Softmax",
    "SoftmaxWithLoss",
    "Tanh",
]

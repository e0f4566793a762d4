"""Layers: one module per family. Every layer follows the contract in ``base.py``."""

from .activations import Flatten, Identity, LeakyReLU, ReLU, Relu, Sigmoid, Softmax, Tanh
from .affine import Affine
from .base import Layer
from .losses import MeanSquaredError, SoftmaxWithLoss

__all__ = [
    "Affine",
    "Flatten",
    "Identity",
    "Layer",
    "LeakyReLU",
    "MeanSquaredError",
    "ReLU",
    "Relu",
    "Sigmoid",
    "Softmax",
    "SoftmaxWithLoss",
    "Tanh",
]

"""layerwise: neural networks built layer by layer in NumPy.

Every layer is a small class with ``forward()`` and ``backward()``, the way "Deep Learning
from Scratch" teaches backpropagation.
"""

from . import functional
from .errors import (
    FormatError,
    InputError,
    LayerwiseError,
    ShapeError,
    StateError,
    UnsafePickleError,
)
from .layers import (
    Affine,
    Flatten,
    Identity,
    Layer,
    LeakyReLU,
    MeanSquaredError,
    ReLU,
    Relu,
    Sigmoid,
    Softmax,
    SoftmaxWithLoss,
    Tanh,
)
from .nodes import Add, AddConst, AddLayer, Exp, Mul, MulConst, MulLayer, Reciprocal

__version__ = "0.1.0"

__all__ = [
    "Add",
    "AddConst",
    "AddLayer",
    "Affine",
    "Exp",
    "Flatten",
    "FormatError",
    "Identity",
    "InputError",
    "Layer",
    "LayerwiseError",
    "LeakyReLU",
    "MeanSquaredError",
    "Mul",
    "MulConst",
    "MulLayer",
    "ReLU",
    "Reciprocal",
    "Relu",
    "ShapeError",
    "Sigmoid",
    "Softmax",
    "SoftmaxWithLoss",
    "StateError",
    "Tanh",
    "UnsafePickleError",
    "__version__",
    "functional",
]

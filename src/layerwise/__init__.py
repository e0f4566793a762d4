"""layerwise: neural networks built layer by layer in NumPy.

Every layer is a small class with ``forward()`` and ``backward()``, the way "Deep Learning
from Scratch" teaches backpropagation.
"""

from . import functional, graph, init, io, optim
from .datasets import load_dataset, load_digits, load_fashion_mnist, load_mnist
from .errors import (
    DownloadError,
    FormatError,
    InputError,
    LayerwiseError,
    LayerwiseWarning,
    ShapeError,
    StateError,
    TrainingDiverged,
    UnsafePickleError,
)
from .graph import Graph, model_graph
from .init import init_weight
from .io import Checkpoint, load, load_book_params, load_checkpoint, save
from .layers import (
    Affine,
    AvgPooling,
    BatchNormalization,
    Convolution,
    Dropout,
    Flatten,
    Identity,
    Layer,
    LeakyReLU,
    MeanSquaredError,
    Pooling,
    ReLU,
    Relu,
    Sigmoid,
    Softmax,
    SoftmaxWithLoss,
    Tanh,
)
from .models import (
    DeepConvNet,
    MultiLayerNet,
    MultiLayerNetExtend,
    Sequential,
    SimpleConvNet,
    TwoLayerNet,
    build_model,
)
from .nodes import Add, AddConst, AddLayer, Exp, Mul, MulConst, MulLayer, Reciprocal
from .optim import OPTIMIZERS, SGD, AdaGrad, Adam, Momentum, Nesterov, Optimizer, RMSprop, make_optimizer
from .train import History, Trainer

__version__ = "0.1.0"

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "Adam",
    "Add",
    "AddConst",
    "AddLayer",
    "Affine",
    "AvgPooling",
    "BatchNormalization",
    "Checkpoint",
    "Convolution",
    "DeepConvNet",
    "DownloadError",
    "Dropout",
    "Exp",
    "Flatten",
    "FormatError",
    "Graph",
    "History",
    "Identity",
    "InputError",
    "Layer",
    "LayerwiseError",
    "LayerwiseWarning",
    "LeakyReLU",
    "MeanSquaredError",
    "Momentum",
    "Mul",
    "MulConst",
    "MulLayer",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "Nesterov",
    "Optimizer",
    "Pooling",
    "RMSprop",
    "ReLU",
    "Reciprocal",
    "Relu",
    "Sequential",
    "ShapeError",
    "Sigmoid",
    "SimpleConvNet",
    "Softmax",
    "SoftmaxWithLoss",
    "StateError",
    "Tanh",
    "Trainer",
    "TrainingDiverged",
    "TwoLayerNet",
    "UnsafePickleError",
    "__version__",
    "build_model",
    "functional",
    "graph",
    "init",
    "init_weight",
    "io",
    "load",
    "load_book_params",
    "load_checkpoint",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_mnist",
    "make_optimizer",
    "model_graph",
    "optim",
    "save",
]

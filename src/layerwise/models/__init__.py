"""Networks: ``Sequential`` (sequential.py), the book's nets (book.py), and rebuilding a
network from its config (config.py)."""

from .book import BOOK_ARCHS, DeepConvNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet, book_model
from .config import LAYER_TYPES, build_model, register_layer
from .sequential import Sequential

__all__ = [
    "BOOK_ARCHS",
    "LAYER_TYPES",
    "DeepConvNet",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "Sequential",
    "SimpleConvNet",
    "TwoLayerNet",
    "book_model",
    "build_model",
    "register_layer",
]

"""Rebuilding a network from its ``config()``: the registry of layer types by name, and
``build_model``. A model file stores the config as JSON and the tensors beside it."""

from __future__ import annotations

import numpy as np

from .. import layers
from ..errors import InputError
from ..layers import Layer, Relu
from .book import DeepConvNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet
from .sequential import Sequential

__all__ = ["LAYER_TYPES", "build_model", "register_layer"]

#: Layer classes by the name ``config()`` records (``Layer.name``, the class name).
LAYER_TYPES: dict[str, type[Layer]] = {
    cls.__name__: cls for cls in (getattr(layers, name) for name in layers.__all__) if cls is not Layer
}
LAYER_TYPES["ReLU"] = Relu  # the name files written before the class took the book's name carry

_BOOK_NETS = {
    cls.__name__: cls for cls in (TwoLayerNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, DeepConvNet)
}


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Make a Layer subclass of your own rebuildable from a file (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise InputError(f"register_layer: expected a Layer subclass, got {cls!r}")
    LAYER_TYPES[cls.__name__] = cls
    return cls


def build_model(config: dict, dtype: np.dtype | str = np.float32) -> Sequential:
    """Rebuild a model from ``model.config()`` in ``dtype``; its tensors are loaded separately."""
    cls_name = config.get("class")
    if cls_name == "Sequential":
        layers = []
        for spec in config["layers"]:
            cls = LAYER_TYPES.get(spec["type"])
            if cls is None:
                raise InputError(f"unknown layer type {spec['type']!r} in model config")
            layers.append(cls.from_config(spec.get("config", {}), dtype=dtype))
        loss_cls = LAYER_TYPES.get(config.get("loss", "SoftmaxWithLoss"))
        if loss_cls is None:
            raise InputError(f"unknown loss layer {config.get('loss')!r} in model config")
        return Sequential(layers, loss_cls(), config.get("weight_decay_lambda", 0.0))
    if cls_name not in _BOOK_NETS:
        raise InputError(f"unknown model class {cls_name!r}; known: Sequential, {', '.join(_BOOK_NETS)}")
    return _BOOK_NETS[cls_name](**config["kwargs"], dtype=dtype)

"""Rebuilding a network from its ``config()``: the registry of layer types by name, and
``build_model``. A model file stores the config as JSON and the tensors beside it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import layers
from ..errors import InputError
from ..init import generator
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


class _LimitedDraws(np.random.Generator):
    """A generator that refuses to draw more than ``limit`` numbers.

    A book net draws every weight from its generator while it is built, so a config asking
    for a billion inputs would spend minutes and gigabytes before its shapes could be
    compared with anything. Counting the draws stops it at the first weight too big.
    """

    def __init__(self, limit: int) -> None:
        # Seeded as seed=None would be: the nets' Dropout seeds still follow np.random.seed.
        super().__init__(generator(None).bit_generator)
        self.limit, self.drawn = limit, 0

    def _take(self, size: object) -> None:
        if size is not None:
            self.drawn += math.prod(int(n) for n in np.atleast_1d(np.asarray(size, dtype=object)))
        if self.drawn > self.limit:
            raise InputError(f"the model config asks for more than {self.limit} parameters")

    # Every sized draw an initialiser makes (init.py, models/book.py) goes through _take.
    def standard_normal(self, size: object = None, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self._take(size)
        return super().standard_normal(size, *args, **kwargs)

    def normal(self, loc: Any = 0.0, scale: Any = 1.0, size: object = None) -> Any:  # type: ignore[override]
        self._take(size)
        return super().normal(loc, scale, size)

    def uniform(self, low: Any = 0.0, high: Any = 1.0, size: object = None) -> Any:  # type: ignore[override]
        self._take(size)
        return super().uniform(low, high, size)

    def random(self, size: object = None, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self._take(size)
        return super().random(size, *args, **kwargs)

    def integers(self, low: Any, high: Any = None, size: object = None, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self._take(size)
        return super().integers(low, high, size, *args, **kwargs)


def _parameter_count(layer: Layer) -> int:
    return sum(int(p.size) for p in layer.params.values())


def build_model(
    config: dict, dtype: np.dtype | str = np.float32, max_parameters: int | None = None
) -> Sequential:
    """Rebuild a model from ``model.config()`` in ``dtype``; its tensors are loaded separately.

    ``max_parameters``: refuse (``InputError``) a config asking for more parameters than
    this, before drawing or writing them. ``load_checkpoint`` passes the number its file
    holds, so that a few bytes of JSON cannot ask for a network of gigabytes.
    """
    cls_name = config.get("class")
    if cls_name == "Sequential":
        layers = []
        count = 0
        for spec in config["layers"]:
            cls = LAYER_TYPES.get(spec["type"])
            if cls is None:
                raise InputError(f"unknown layer type {spec['type']!r} in model config")
            # from_config allocates zeros, which cost no memory until written.
            layers.append(cls.from_config(spec.get("config", {}), dtype=dtype))
            count += _parameter_count(layers[-1])
            if max_parameters is not None and count > max_parameters:
                raise InputError(f"the model config asks for more than {max_parameters} parameters")
        loss_cls = LAYER_TYPES.get(config.get("loss", "SoftmaxWithLoss"))
        if loss_cls is None:
            raise InputError(f"unknown loss layer {config.get('loss')!r} in model config")
        return Sequential(layers, loss_cls(), config.get("weight_decay_lambda", 0.0))
    if cls_name not in _BOOK_NETS:
        raise InputError(f"unknown model class {cls_name!r}; known: Sequential, {', '.join(_BOOK_NETS)}")
    kwargs = dict(config["kwargs"])
    if max_parameters is not None:
        kwargs["seed"] = _LimitedDraws(max_parameters)
    return _BOOK_NETS[cls_name](**kwargs, dtype=dtype)

"""The book's ``ch05/layer_naive.py``: ``MulLayer`` and ``AddLayer`` are layerwise's multiply
and add nodes (``layerwise.nodes.Mul`` and ``Add``)."""

from layerwise.nodes import AddLayer, MulLayer

__all__ = ["AddLayer", "MulLayer"]

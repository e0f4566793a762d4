"""Computational graphs drawn the way the book draws backpropagation.

The code is in six modules:

- :mod:`~layerwise.graph.engine`: values and gradients. ``Var``, ``Op``, ``Edge`` and the
  ``Graph`` that wires real node and layer objects together, runs their ``forward`` as it is
  built and their ``backward`` in reverse. No drawing: it never imports ``dot``.
- :mod:`~layerwise.graph.dot`: DOT text and Graphviz rendering. ``render``, ``Drawing``
  (``to_dot``/``to_svg``/``to_png``/``save`` and the Jupyter reprs) and ``Graph``, the
  engine's graph as a drawing: the ``Graph`` exported here.
- :mod:`~layerwise.graph.examples`: the book's examples (apple, apple and orange, sigmoid
  taken apart) and ``example(name)``.
- :mod:`~layerwise.graph.model_graph`: a whole network as its layers, with tensor shapes, the
  loss and each parameter's gradient norm (``model_graph()``; in this namespace
  ``model_graph`` is that function, which hides the module of the same name).
- :mod:`~layerwise.graph.stepper`: backprop one node at a time (``Stepper``: each step calls one
  node's own ``forward`` or ``backward``), the gradient check of a stepped graph and
  ``network_graph(model, x, t)``, a network's layers as a graph.
- :mod:`~layerwise.graph.notebook`: the step-through in Jupyter. ``Stepper``, the stepper that
  shows itself (buttons with ipywidgets, else a static table), is the ``Stepper`` exported here,
  and ``step_through(graph | example name | model, x, t)`` makes one.

An example is in the docstring of ``dot.Graph``.

DOT text needs nothing; SVG and PNG run Graphviz's ``dot`` program.
"""

from ..errors import GraphvizError, GraphvizNotFoundError
from .dot import Drawing, Graph, render
from .engine import Edge, Op, Var, format_value
from .examples import EXAMPLES, apple_graph, apple_orange_graph, example, sigmoid_graph
from .model_graph import ModelGraph, model_graph
from .notebook import Stepper, step_through
from .stepper import network_graph

__all__ = [
    "EXAMPLES",
    "Drawing",
    "Edge",
    "Graph",
    "GraphvizError",
    "GraphvizNotFoundError",
    "ModelGraph",
    "Op",
    "Stepper",
    "Var",
    "apple_graph",
    "apple_orange_graph",
    "example",
    "format_value",
    "model_graph",
    "network_graph",
    "render",
    "sigmoid_graph",
    "step_through",
]

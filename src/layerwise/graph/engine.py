"""The engine of a computational graph: values and gradients, no drawing.

A :class:`Graph` wires the real nodes of :mod:`layerwise.nodes` (and any layer) together,
runs each node's own ``forward`` as the graph is built, and on :meth:`Graph.backward` runs
each node's own ``backward`` in reverse order. No derivative is computed here: the graph only
routes values forward and gradients back, and records them on every :class:`Edge`.

Every node object is called one way: ``node.forward(*values)`` (a layer's ``train`` keeps its
default, True; a loss layer takes ``(x, t)``) and ``node.backward(dout)``, whose result
:func:`input_grads` reads as one gradient per input.

This module holds the values only; :mod:`layerwise.graph.dot` turns a graph into a picture,
and its ``Graph`` (the one ``layerwise.graph`` exports) is this class with drawing methods.
:func:`format_value`, the short text of a value, is here because ``repr`` uses it too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import nodes
from ..errors import InputError, StateError
from ..layers.activations import Sigmoid

__all__ = ["Edge", "Graph", "Op", "Var", "format_value", "input_grads"]


# -- numbers as short text ---------------------------------------------------------------------

def _format_scalar(x: Any, digits: int) -> str:
    if isinstance(x, bool | np.bool_):
        return str(bool(x))
    if isinstance(x, int | np.integer):
        return str(int(x))
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"  # also -0.0, which would print as "-0"
    if 10**digits <= abs(x) < 1e7:
        # "12346" reads better than "1.235e+04" and is still short.
        return f"{x:.0f}"
    text = f"{x:.{digits}g}"
    # 1.5e-05 -> 1.5e-5, 1e+08 -> 1e8: the short form of the exponent.
    return re.sub(r"e([+-])0*(\d)", lambda m: "e" + ("-" if m[1] == "-" else "") + m[2], text)


def format_value(value: Any, digits: int = 4, items: int = 3) -> str:
    """A short text for a value drawn on an edge.

    Numbers get ``digits`` significant digits with round-off dust removed
    (220.00000000000003 -> "220", 0.7310585786 -> "0.7311"). Arrays show their shape and the
    first ``items`` values: ``(2, 3) [0.1 -0.2 0.3 …]``. ``None`` (no value yet) is "".
    """
    if value is None:
        return ""
    if isinstance(value, np.ndarray) and value.ndim > 0:
        flat = value.reshape(-1)
        shown = " ".join(_format_scalar(v, digits) for v in flat[:items])
        more = " …" if flat.size > items else ""
        return f"{tuple(value.shape)} [{shown}{more}]"
    if isinstance(value, np.ndarray | np.generic):
        value = value.item()
    return _format_scalar(value, digits)


# -- the one calling convention ------------------------------------------------------------------

def input_grads(result: Any, n_inputs: int) -> tuple[Any, ...]:
    """What a node's ``backward`` returned, as one gradient per input.

    A tuple already is one per input (a Mul node's ``(dx, dy)``). A single array or number is
    the gradient of the first input, and the other inputs get None: they receive no gradient
    (a loss layer's labels ``t``).
    """
    if isinstance(result, tuple):
        return result
    return (result,) + (None,) * (n_inputs - 1)


# -- values, nodes and edges ---------------------------------------------------------------------

class Var:
    """A value in a :class:`Graph`: an input, or the output of one node.

    ``value`` is the forward value; ``grad`` is dL/d(this value) after
    :meth:`Graph.backward`, the sum of the gradients on its outgoing edges (the book's
    branch rule: a value used twice receives both gradients).
    """

    def __init__(self, graph: Graph, name: str, label: str, value: Any, op: Op | None) -> None:
        self.graph, self.name, self.label, self.value, self.op = graph, name, label, value, op
        self.grad: Any = None

    # Arithmetic builds nodes, so `1 / (1 + (-x).exp())` draws the book's sigmoid graph.
    def __mul__(self, other: Var | float) -> Var:
        return self.graph.mul(self, other)

    def __rmul__(self, other: float) -> Var:
        return self.graph.mul(other, self)

    def __add__(self, other: Var | float) -> Var:
        return self.graph.add(self, other)

    def __radd__(self, other: float) -> Var:
        return self.graph.add(other, self)

    def __neg__(self) -> Var:
        return self.graph.mul_const(self, -1)

    def __sub__(self, other: Var | float) -> Var:
        return self + (-other)

    def __rsub__(self, other: float) -> Var:
        return other + (-self)

    def __truediv__(self, other: Var | float) -> Var:
        if isinstance(other, Var):
            return self * self.graph.reciprocal(other)
        return self.graph.mul_const(self, 1 / other)

    def __rtruediv__(self, other: float) -> Var:
        r = self.graph.reciprocal(self)
        return r if other == 1 else self.graph.mul_const(r, other)

    def exp(self) -> Var:
        return self.graph.exp(self)

    def sigmoid(self) -> Var:
        return self.graph.sigmoid(self)

    def __repr__(self) -> str:
        grad = "" if self.grad is None else f", grad={format_value(self.grad)}"
        return f"Var({self.name!r}, value={format_value(self.value)}{grad})"


@dataclass(eq=False)
class Op:
    """One node of the graph: the node object, the values it reads and the value it makes."""

    node: Any
    inputs: tuple[Var, ...]
    output: Var
    label: str
    section: int | None


@dataclass(eq=False)
class Edge:
    """An arrow of the picture: ``src`` flows into input ``slot`` of ``dst`` (``dst`` is None
    for the arrow leaving an output). ``grad`` is what ``dst``'s backward sent back along it."""

    src: Var
    dst: Op | None
    slot: int = 0
    grad: Any = None

    @property
    def value(self) -> Any:
        return self.src.value


@dataclass(eq=False)
class _Input:
    var: Var
    section: int | None


# -- the graph -----------------------------------------------------------------------------------

class Graph:
    """A computational graph built from node objects, run forward as it is built.

    Build: ``input(name, value)``, then ``mul``/``add``/``exp``/``reciprocal``/``mul_const``/
    ``add_const``/``sigmoid`` (or Python arithmetic on the returned :class:`Var`s), or
    ``apply(node, *vars)`` for any node or layer object. ``backward(dout=1)`` sends ``dout``
    into every output (a value nothing consumes) and runs each node's ``backward`` in
    reverse order; afterwards every ``Var.grad`` and every ``Edge.grad`` is set.

    Drawing (``to_dot``, ``to_svg``, ``save``, Jupyter) is added by ``layerwise.graph.Graph``.
    """

    def __init__(self, title: str | None = None) -> None:
        self.title = title
        self.ops: list[Op] = []
        self.vars: dict[str, Var] = {}
        self.sections: list[str] = []
        self._inputs: list[_Input] = []
        self._section: int | None = None
        self._output_edges: dict[int, Edge] = {}
        self._edges: dict[tuple[int, int], Edge] = {}  # (op index, slot) -> edge
        self._done_backward = False

    # -- building -----------------------------------------------------------------------
    def _new_var(self, name: str | None, label: str | None, value: Any, op: Op | None) -> Var:
        if name is None:
            name = f"v{len(self.vars)}"
            while name in self.vars:
                name += "_"
        elif name in self.vars:
            raise InputError(f"Graph: the name {name!r} is taken; names identify values")
        var = Var(self, name, label if label is not None else name, value, op)
        self.vars[name] = var
        return var

    def input(self, name: str, value: Any, label: str | None = None) -> Var:
        """A value that enters the graph (drawn as its ``label``, default ``name``)."""
        var = self._new_var(name, label, value, None)
        self._inputs.append(_Input(var, self._section))
        return var

    def apply(self, node: Any, *inputs: Var, name: str | None = None, label: str | None = None) -> Var:
        """Run ``node.forward(*values)`` on the inputs' values and add the node to the graph.

        ``node`` is any object with ``forward`` and ``backward``: a :mod:`layerwise.nodes`
        node, a layer (``forward(x)``, in training mode) or a loss layer (``forward(x, t)``).
        Each node object caches one forward pass, so it may appear in the graph only once.
        """
        for v in inputs:
            if not isinstance(v, Var) or v.graph is not self:
                raise InputError(f"Graph.apply: inputs must be values of this graph, got {v!r}")
        if any(op.node is node for op in self.ops):
            raise StateError(
                f"Graph: this {type(node).__name__} object is already in the graph; a node "
                "caches the one forward pass its backward needs, so create a new one per use"
            )
        if label is None:
            label = getattr(node, "label", None) or str(getattr(node, "name", type(node).__name__))
        op = Op(node, tuple(inputs), None, label, self._section)  # type: ignore[arg-type]
        op.output = self._new_var(name, None, node.forward(*(v.value for v in inputs)), op)
        self.ops.append(op)
        self._done_backward = False
        return op.output

    def _operand(self, x: Var | float) -> Var:
        if not isinstance(x, Var):
            raise InputError(f"Graph: expected a value of this graph, got {type(x).__name__}")
        return x

    def mul(self, x: Var | float, y: Var | float, name: str | None = None) -> Var:
        """x × y (a Mul node); with a plain number on one side, a MulConst node."""
        if not isinstance(x, Var):
            return self.mul_const(self._operand(y), x, name)
        if not isinstance(y, Var):
            return self.mul_const(x, y, name)
        return self.apply(nodes.Mul(), x, y, name=name)

    def add(self, x: Var | float, y: Var | float, name: str | None = None) -> Var:
        """x + y (an Add node); with a plain number on one side, an AddConst node."""
        if not isinstance(x, Var):
            return self.add_const(self._operand(y), x, name)
        if not isinstance(y, Var):
            return self.add_const(x, y, name)
        return self.apply(nodes.Add(), x, y, name=name)

    def mul_const(self, x: Var, c: float, name: str | None = None) -> Var:
        return self.apply(nodes.MulConst(c), self._operand(x), name=name)

    def add_const(self, x: Var, c: float, name: str | None = None) -> Var:
        return self.apply(nodes.AddConst(c), self._operand(x), name=name)

    def exp(self, x: Var, name: str | None = None) -> Var:
        return self.apply(nodes.Exp(), self._operand(x), name=name)

    def reciprocal(self, x: Var, name: str | None = None) -> Var:
        return self.apply(nodes.Reciprocal(), self._operand(x), name=name)

    def sigmoid(self, x: Var, name: str | None = None) -> Var:
        """The fused Sigmoid layer as one node (the book draws it as a circle "sigmoid")."""
        return self.apply(Sigmoid(), self._operand(x), name=name, label="sigmoid")

    @contextmanager
    def section(self, title: str) -> Iterator[None]:
        """Values and nodes made inside ``with g.section("..."):`` are drawn in a titled box."""
        previous = self._section
        self.sections.append(title)
        self._section = len(self.sections) - 1
        try:
            yield
        finally:
            self._section = previous

    def __getitem__(self, name: str) -> Var:
        try:
            return self.vars[name]
        except KeyError:
            raise KeyError(f"no value named {name!r}; this graph has {list(self.vars)}") from None

    @property
    def inputs(self) -> list[Var]:
        return [i.var for i in self._inputs]

    @property
    def outputs(self) -> list[Var]:
        """Values that no node consumes, in the order they were made."""
        used = {id(v) for op in self.ops for v in op.inputs}
        return [v for v in self.vars.values() if id(v) not in used]

    # -- running ------------------------------------------------------------------------
    def forward(self, **values: Any) -> None:
        """Run every node's forward again, after setting inputs by name
        (``g.forward(apple=150)``); gradients are cleared until the next backward."""
        for name, value in values.items():
            var = self[name]
            if var.op is not None:
                raise InputError(f"Graph.forward: {name!r} is computed by a node, not an input")
            var.value = value
        for index in range(len(self.ops)):
            self.forward_node(index)
        self.clear_grads()

    def forward_node(self, index: int) -> Var:
        """Run node ``index``'s own ``forward`` on its inputs' current values; returns its output.
        :meth:`forward` is this for every node in order; a step-through calls it one node at a time."""
        op = self.ops[index]
        op.output.value = op.node.forward(*(v.value for v in op.inputs))
        return op.output

    def clear_grads(self) -> None:
        """Forget every gradient (a new backward pass starts from nothing)."""
        for var in self.vars.values():
            var.grad = None
        self._edges.clear()
        self._output_edges.clear()
        self._done_backward = False

    def backward(self, dout: Any = None) -> None:
        """Backpropagate ``dout`` (default 1, or ones shaped like an array output) from
        every output, calling each node's ``backward`` from the last node to the first."""
        self.seed_backward(dout)
        for index in range(len(self.ops) - 1, -1, -1):
            self.backward_node(index)

    def seed_backward(self, dout: Any = None) -> None:
        """Clear every gradient and send ``dout`` (default 1, or ones shaped like an array
        output) into every output: the start of :meth:`backward`."""
        self.clear_grads()
        for var in self.outputs:
            seed = dout
            if seed is None:
                seed = np.ones_like(var.value) if isinstance(var.value, np.ndarray) else 1.0
            self._output_edges[id(var)] = Edge(var, None, 0, seed)
            var.grad = seed

    def backward_node(self, index: int) -> tuple[Any, ...]:
        """Run node ``index``'s own ``backward`` on the gradient its output has received, and
        pass one gradient to each input (summed where a value feeds several nodes). Returns
        what the node sent back, one gradient per input. :meth:`backward` calls it from the
        last node to the first; a step-through calls it one node at a time."""
        op = self.ops[index]
        if op.output.grad is None:  # every node after this one must have run its backward
            raise StateError(f"Graph.backward: no gradient reached {op.output.name!r} yet")
        grads = input_grads(op.node.backward(op.output.grad), len(op.inputs))
        for slot, (var, g) in enumerate(zip(op.inputs, grads, strict=True)):
            self._edges[(index, slot)] = Edge(var, op, slot, g)
            if g is not None:
                # `a + b`, never `+=`: an array handed back by a node must stay intact.
                var.grad = g if var.grad is None else var.grad + g
        if index == 0:
            self._done_backward = True  # backward runs from the last node to the first
        return grads

    def edge(self, index: int, slot: int) -> Edge:
        """The arrow into input ``slot`` of node ``index``, with the gradient its node's backward
        sent back along it (None until then)."""
        op = self.ops[index]
        return self._edges.get((index, slot)) or Edge(op.inputs[slot], op, slot, None)

    @property
    def edges(self) -> list[Edge]:
        """Every arrow of the picture in drawing order, with its gradient after backward."""
        out = []
        for index, op in enumerate(self.ops):
            for slot, var in enumerate(op.inputs):
                out.append(self._edges.get((index, slot)) or Edge(var, op, slot, None))
        for var in self.outputs:
            out.append(self._output_edges.get(id(var)) or Edge(var, None, 0, None))
        return out

    def __repr__(self) -> str:
        state = "backward done" if self._done_backward else "forward only"
        names = ", ".join(v.name for v in self.outputs)
        return f"Graph({self.title!r}: {len(self.ops)} nodes, outputs {names}; {state})"

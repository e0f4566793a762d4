"""Drawing computational graphs the way the book draws backpropagation.

A :class:`Graph` wires the real nodes of :mod:`layerwise.nodes` (and any layer) together,
runs each node's own ``forward`` as the graph is built, and on :meth:`Graph.backward` runs
each node's own ``backward`` in reverse order. No derivative is computed here: the graph only
routes values forward and gradients back, and records them on every edge. ::

    g = Graph()
    apple, apple_num, tax = g.input("apple", 100), g.input("apple_num", 2), g.input("tax", 1.1)
    price = g.mul(g.mul(apple, apple_num), tax, name="price")
    g.backward()
    apple.grad, apple_num.grad, tax.grad     # 2.2, 110, 200 (up to round-off)
    g.save("apple.svg")                      # or g.to_dot(), or just `g` in Jupyter

Pictures follow the book's figures: nodes are circles labelled ×, +, exp, /; each edge
carries its forward value above the line and its gradient (dL/d·) below it, in red.
:func:`model_graph` draws a whole network as its layers, with tensor shapes on the edges,
and after one forward/backward on a batch the loss and each parameter's gradient norm.

DOT text needs nothing; SVG and PNG run Graphviz's ``dot`` program.
"""

from __future__ import annotations

import html
import math
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import nodes
from .errors import InputError, LayerwiseError, StateError
from .layers.activations import Sigmoid
from .layers.base import Layer

__all__ = [
    "EXAMPLES",
    "Drawing",
    "Edge",
    "Graph",
    "GraphvizError",
    "GraphvizNotFoundError",
    "ModelGraph",
    "Op",
    "Var",
    "apple_graph",
    "apple_orange_graph",
    "example",
    "format_value",
    "model_graph",
    "render",
    "sigmoid_graph",
]

#: Colour of gradients (the backward pass); forward values are drawn in black.
GRAD_COLOUR = "#d62728"
#: Font list: Graphviz hands it to fontconfig (PNG) and writes it as CSS font-family (SVG).
FONT = "Helvetica,Arial,sans-serif"


# -- numbers --------------------------------------------------------------------------------

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


def _shape_text(shape: Sequence[Any]) -> str:
    """(N, 784) with a symbolic batch axis; (50,) for one axis."""
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


# -- Graphviz ---------------------------------------------------------------------------------

class GraphvizNotFoundError(LayerwiseError, FileNotFoundError):
    """Graphviz's ``dot`` program is not installed (needed for SVG and PNG, not for DOT)."""


class GraphvizError(LayerwiseError, RuntimeError):
    """``dot`` ran and failed."""


_INSTALL_HINT = (
    "Graphviz's `dot` program was not found on PATH; it is needed to draw {fmt}. Install "
    "Graphviz (Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
    "conda: conda install graphviz), or write DOT text instead (a .dot file, or to_dot())."
)


def render(dot_source: str, fmt: str = "svg", dpi: float | None = None) -> bytes:
    """Run ``dot -T<fmt>`` on DOT text and return the picture's bytes."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizNotFoundError(_INSTALL_HINT.format(fmt=fmt.upper()))
    cmd = [exe, f"-T{fmt}"]
    if dpi is not None:
        cmd.append(f"-Gdpi={dpi:g}")
    try:
        proc = subprocess.run(cmd, input=dot_source.encode("utf-8"), capture_output=True,
                              timeout=120, check=False)
    except subprocess.TimeoutExpired as exc:
        raise GraphvizError(f"dot -T{fmt} did not finish within 120 s") from exc
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        raise GraphvizError(f"dot -T{fmt} failed (exit {proc.returncode}): {message}")
    return proc.stdout


def _html(text: str) -> str:
    return html.escape(text, quote=True)


def _quote(text: str) -> str:
    """A DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _edge_label(above: str, below: str, id_: str, tooltip: str) -> str:
    """A label node that sits *on* an edge: ``above`` over a rule, ``below`` under it.

    The edge enters the node at its west side and leaves at its east side; both points are
    at the node's vertical middle, which is where the rule between the two equal rows lies,
    so the line reads as one edge with a value above it and a gradient below it, as in the
    book's figures.
    """
    top = _html(above) or "&#160;"
    bottom = _html(below) or "&#160;"
    table = (
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
        f"<TR><TD>{top}</TD></TR><HR/>"
        f'<TR><TD><FONT COLOR="{GRAD_COLOUR}">{bottom}</FONT></TD></TR></TABLE>>'
    )
    return f"  {id_} [shape=plaintext, margin=0, label={table}, tooltip={_quote(tooltip)}];"


def _connect(tail: str, label_node: str, head: str) -> list[str]:
    # The first half has no arrowhead: together the halves read as a single arrow.
    return [f"  {tail} -> {label_node}:w [arrowhead=none];", f"  {label_node}:e -> {head};"]


def _legend(title: str | None, grad_text: str) -> str:
    lines = []
    if title:
        lines.append(f"<B>{_html(title)}</B>")
    lines.append(
        f'forward value above each edge, <FONT COLOR="{GRAD_COLOUR}">{_html(grad_text)}</FONT>'
    )
    return '<<FONT POINT-SIZE="11">' + "<BR/>".join(lines) + "</FONT>>"


class Drawing:
    """Anything that can be written as DOT text: renders to SVG/PNG and shows in Jupyter."""

    def to_dot(self) -> str:
        raise NotImplementedError

    def to_svg(self) -> str:
        """The picture as SVG text (runs Graphviz's ``dot``)."""
        return render(self.to_dot(), "svg").decode("utf-8")

    def to_png(self, dpi: float = 96) -> bytes:
        """The picture as PNG bytes (runs Graphviz's ``dot``)."""
        return render(self.to_dot(), "png", dpi=dpi)

    def save(self, path: str | os.PathLike, dpi: float = 96) -> Path:
        """Write the picture; the format comes from the extension: .dot/.gv (no Graphviz
        needed), .svg, .png, .pdf."""
        path = Path(path)
        ext = path.suffix.lower().lstrip(".")
        if ext in ("dot", "gv"):
            data = self.to_dot().encode("utf-8")
        elif ext in ("svg", "png", "pdf"):
            data = render(self.to_dot(), ext, dpi=dpi if ext == "png" else None)
        else:
            raise InputError(
                f"cannot tell the picture format from {path.name!r}: use .dot, .gv, .svg, .png or .pdf"
            )
        from .io import atomic_write

        # Atomic: a failed run never leaves a half-written picture behind.
        return atomic_write(path, data)

    # Jupyter: IPython asks for the MIME bundle and shows the richest type it knows.
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        bundle = {"text/plain": repr(self)}
        try:
            bundle["image/svg+xml"] = self.to_svg()
        except GraphvizNotFoundError as exc:
            bundle["text/plain"] += f"\n({exc})\n{self.to_dot()}"
        return bundle

    def _repr_svg_(self) -> str | None:
        try:
            return self.to_svg()
        except GraphvizNotFoundError:
            return None  # Jupyter then falls back to the text repr


# -- the computational graph --------------------------------------------------------------------

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


class Graph(Drawing):
    """A computational graph built from node objects, run forward as it is built.

    Build: ``input(name, value)``, then ``mul``/``add``/``exp``/``reciprocal``/``mul_const``/
    ``add_const``/``sigmoid`` (or Python arithmetic on the returned :class:`Var`s), or
    ``apply(node, *vars)`` for any node or layer object. ``backward(dout=1)`` sends ``dout``
    into every output (a value nothing consumes) and runs each node's ``backward`` in
    reverse order; afterwards every ``Var.grad`` and every ``Edge.grad`` is set.
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
        """Run ``node.forward`` on the inputs' values and add the node to the graph.

        ``node`` is a :mod:`layerwise.nodes` node (``forward(*values)``), a layer
        (``forward(x)``) or a loss layer (``forward(x, t)``). Each node object caches one
        forward pass, so it may appear in the graph only once.
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
        op.output = self._new_var(name, None, self._run_forward(op), op)
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
    @staticmethod
    def _run_forward(op: Op) -> Any:
        values = [v.value for v in op.inputs]
        if isinstance(op.node, Layer):
            if op.node.is_loss:
                return op.node.forward(*values)
            return op.node.forward(*values, train=True)
        return op.node.forward(*values)

    def forward(self, **values: Any) -> None:
        """Run every node's forward again, after setting inputs by name
        (``g.forward(apple=150)``); gradients are cleared until the next backward."""
        for name, value in values.items():
            var = self[name]
            if var.op is not None:
                raise InputError(f"Graph.forward: {name!r} is computed by a node, not an input")
            var.value = value
        for op in self.ops:
            op.output.value = self._run_forward(op)
        for var in self.vars.values():
            var.grad = None
        self._edges.clear()
        self._output_edges.clear()
        self._done_backward = False

    def backward(self, dout: Any = None) -> None:
        """Backpropagate ``dout`` (default 1, or ones shaped like an array output) from
        every output, calling each node's ``backward`` from the last node to the first."""
        for var in self.vars.values():
            var.grad = None
        self._edges.clear()
        self._output_edges.clear()
        for var in self.outputs:
            seed = dout
            if seed is None:
                seed = np.ones_like(var.value) if isinstance(var.value, np.ndarray) else 1.0
            self._output_edges[id(var)] = Edge(var, None, 0, seed)
            var.grad = seed
        for index in range(len(self.ops) - 1, -1, -1):
            op = self.ops[index]
            dout_op = op.output.grad
            if dout_op is None:  # cannot happen: every value reaches an output
                raise StateError(f"Graph.backward: no gradient reached {op.output.name!r}")
            if isinstance(op.node, Layer) and op.node.is_loss:
                grads: tuple = (op.node.backward(dout_op), None)  # labels get no gradient
            else:
                result = op.node.backward(dout_op)
                grads = result if isinstance(result, tuple) else (result,)
            for slot, (var, g) in enumerate(zip(op.inputs, grads, strict=True)):
                self._edges[(index, slot)] = Edge(var, op, slot, g)
                if g is not None:
                    # `a + b`, never `+=`: an array handed back by a node must stay intact.
                    var.grad = g if var.grad is None else var.grad + g
        self._done_backward = True

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

    # -- drawing ------------------------------------------------------------------------
    def to_dot(self, legend: bool = True, digits: int = 4) -> str:
        """The graph as DOT text, left to right: inputs and outputs as plain labels, nodes as
        circles, each edge with its forward value above and its gradient below (in red)."""
        op_id = {id(op): f"op{i}" for i, op in enumerate(self.ops)}
        input_id = {id(i.var): f"in{k}" for k, i in enumerate(self._inputs)}
        outputs = self.outputs
        output_id = {id(v): f"out{k}" for k, v in enumerate(outputs)}
        # Every DOT statement goes into its section's box (None: the top level).
        body: dict[int | None, list[str]] = {None: []}

        def emit(section: int | None, *lines: str) -> None:
            body.setdefault(section, []).extend(lines)

        for i in self._inputs:
            emit(i.section, f"  {input_id[id(i.var)]} [shape=plaintext, label={_quote(i.var.label)}];")
        for op in self.ops:
            emit(op.section, f"  {op_id[id(op)]} [shape=circle, fontsize=16, label={_quote(op.label)}];")

        def source(var: Var) -> str:
            return input_id[id(var)] if var.op is None else op_id[id(var.op)]

        for k, edge in enumerate(self.edges):
            label_node = f"e{k}"
            if edge.dst is None:
                head = output_id[id(edge.src)]
                section = edge.src.op.section if edge.src.op else None
                frm, to = (edge.src.op.label if edge.src.op else ""), edge.src.label
                emit(section, f"  {head} [shape=plaintext, label={_quote(edge.src.label)}];")
            else:
                head, section = op_id[id(edge.dst)], edge.dst.section
                frm, to = edge.src.label, edge.dst.label
            value, grad = format_value(edge.value, digits), format_value(edge.grad, digits)
            tip = f"{frm} → {to}: forward {value}" + (f", gradient {grad}" if grad else "")
            emit(section, _edge_label(value, grad, label_node, tip))
            emit(section, *_connect(source(edge.src), label_node, head))

        lines = [
            f"digraph {_quote(self.title or 'graph')} {{",
            # ordering=in keeps each node's inputs top to bottom in the order they were given.
            f'  graph [rankdir=LR, ordering=in, nodesep=0.25, ranksep=0.15, fontname="{FONT}", '
            "labelloc=b];",
            f'  node [fontname="{FONT}", fontsize=14, width=0.45, height=0.45, margin=0.04];',
            f'  edge [arrowsize=0.7, fontname="{FONT}"];',
        ]
        if legend:
            lines.append(f"  label={_legend(self.title, 'gradient ∂L/∂· below it')};")
        lines += body[None]
        # dot stacks the boxes of a left-to-right graph upwards in the order they are written;
        # writing them last first puts the first section on top.
        for s in reversed(range(len(self.sections))):
            title = self.sections[s]
            lines += [
                f"  subgraph cluster_{s} {{",
                f'    label={_quote(title)}; style="rounded,dashed"; color="#999999"; labelloc=t;',
                *("  " + line for line in body.get(s, [])),
                "  }",
            ]
        lines.append("}")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        state = "backward done" if self._done_backward else "forward only"
        names = ", ".join(v.name for v in self.outputs)
        return f"Graph({self.title!r}: {len(self.ops)} nodes, outputs {names}; {state})"


# -- the book's examples --------------------------------------------------------------------------

def apple_graph(apple: float = 100, apple_num: float = 2, tax: float = 1.1) -> Graph:
    """The book's first backprop example (ch. 5.4): 2 apples at 100 each, tax 1.1.

    forward: price = apple × apple_num × tax = 220.
    backward from 1: d_apple = 2.2, d_apple_num = 110, d_tax = 200.
    """
    g = Graph(title=f"Buying apples: {apple:g} × {apple_num:g} × tax {tax:g}")
    a, n, t = g.input("apple", apple), g.input("apple_num", apple_num), g.input("tax", tax)
    apple_price = g.mul(a, n, name="apple_price")
    g.mul(apple_price, t, name="price")
    g.backward()
    return g


def apple_orange_graph(
    apple: float = 100, apple_num: float = 2, orange: float = 150, orange_num: float = 3, tax: float = 1.1
) -> Graph:
    """The book's second example (ch. 5.4.2): apples and oranges, then tax.

    forward: price = (apple × apple_num + orange × orange_num) × tax = 715.
    backward from 1: d_apple_num = 110, d_apple = 2.2, d_orange = 3.3, d_orange_num = 165,
    d_tax = 650.
    """
    g = Graph(title=f"Buying apples and oranges: ({apple:g} × {apple_num:g} + "
                    f"{orange:g} × {orange_num:g}) × tax {tax:g}")
    a, an = g.input("apple", apple), g.input("apple_num", apple_num)
    o, on = g.input("orange", orange), g.input("orange_num", orange_num)
    t = g.input("tax", tax)
    apple_price = g.mul(a, an, name="apple_price")
    orange_price = g.mul(o, on, name="orange_price")
    all_price = g.add(apple_price, orange_price, name="all_price")
    g.mul(all_price, t, name="price")
    g.backward()
    return g


def sigmoid_graph(x: float = 1.0) -> Graph:
    """Sigmoid taken apart (ch. 5.5.2) next to the fused Sigmoid layer, at ``x``.

    Decomposed: x -> ×(-1) -> exp -> +1 -> / -> y, each step a node of its own.
    Fused: one Sigmoid node, whose backward is dout · y(1 - y). Backward from 1 gives the
    same dL/dx on both inputs, ``g["x"].grad == g["x_fused"].grad`` up to round-off.
    """
    g = Graph(title=f"Sigmoid at x = {format_value(x)}: four nodes, or one")
    with g.section("decomposed: y = 1 / (1 + exp(-x))"):
        xv = g.input("x", x)
        g.reciprocal(g.add_const(g.exp(g.mul_const(xv, -1)), 1), name="y")
    with g.section("fused Sigmoid layer: dx = dout · y(1 − y)"):
        xf = g.input("x_fused", x, label="x")
        yf = g.sigmoid(xf, name="y_fused")
        yf.label = "y"
    g.backward()
    return g


#: The ready-made graphs by the names the command line uses.
EXAMPLES = {
    "apple": apple_graph,
    "apple-orange": apple_orange_graph,
    "sigmoid": sigmoid_graph,
}


def example(name: str, x: float = 1.0) -> Graph:
    """A ready-made graph by name: ``apple``, ``apple-orange`` or ``sigmoid`` (at ``x``)."""
    if name not in EXAMPLES:
        raise InputError(f"no example graph {name!r}; choose from {', '.join(EXAMPLES)}")
    return sigmoid_graph(x) if name == "sigmoid" else EXAMPLES[name]()


# -- a whole network ------------------------------------------------------------------------------

def _norm(a: Any) -> float:
    """Euclidean norm accumulated in float64 (a float32 sum of squares loses digits)."""
    return float(np.sqrt(np.sum(np.square(np.asarray(a), dtype=np.float64))))


def _layers_of(model: Any) -> list[Any]:
    layers = model.layers
    # The book's nets keep an OrderedDict of layers; ours keep a list.
    return list(layers.values()) if isinstance(layers, dict) else list(layers)


def _sample_shape(model: Any, layers: list[Any]) -> tuple[int, ...] | None:
    """Shape of one input sample, from the model's constructor arguments or its first Affine."""
    try:
        kwargs = model.config().get("kwargs", {})
    except (AttributeError, TypeError):
        kwargs = {}
    if "input_dim" in kwargs:
        return tuple(int(d) for d in kwargs["input_dim"])
    if "input_size" in kwargs:
        return (int(kwargs["input_size"]),)
    for layer in layers:
        params = getattr(layer, "params", {})
        if not params:
            continue
        W = params.get("W")
        # An Affine's W is (in_features, out_features); any other first layer (a
        # convolution) does not say how big its images are.
        return (int(W.shape[0]),) if W is not None and W.ndim == 2 else None
    return None


def _layer_detail(layer: Any) -> str:
    """A layer's constructor arguments in a few words: "784 → 50", "stride=1, pad=0"."""
    try:
        config = layer.config()
    except (AttributeError, TypeError):
        return ""
    if set(config) == {"in_features", "out_features"}:
        return f"{config['in_features']} → {config['out_features']}"
    parts = []
    for key, value in config.items():
        if key == "seed":  # a random seed says nothing about the architecture
            continue
        if isinstance(value, list | tuple):
            value = "×".join(str(v) for v in value)
        parts.append(f"{key}={value}")
    return ", ".join(parts)


@dataclass
class _ParamRow:
    name: str
    shape: tuple[int, ...]
    grad_norm: float | None = None


@dataclass
class _LayerBox:
    title: str
    detail: str
    out_shape: str
    params: list[_ParamRow] = field(default_factory=list)


class ModelGraph(Drawing):
    """A network drawn as its layers: boxes in order, tensor shapes on the edges, each
    parameter with its shape and, after one forward/backward on a batch, its gradient norm
    ||dL/dW||; the loss at the end. Build it with :func:`model_graph`."""

    def __init__(
        self,
        model: Any,
        x: np.ndarray | None = None,
        t: np.ndarray | None = None,
        input_shape: Sequence[int] | None = None,
        rankdir: str | None = None,
        data: str | None = None,
    ) -> None:
        self.model = model
        self.data = data
        layers = _layers_of(model)
        self.loss_layer = getattr(model, "loss_layer", None) or getattr(model, "lastLayer", None)
        self.loss: float | None = None
        self.weight_decay = 0.0
        self.batch: int | None = None
        if x is not None:
            x = np.asarray(x)
            self.batch = int(x.shape[0])
            sample = tuple(x.shape[1:])
        elif input_shape is not None:
            sample = tuple(int(d) for d in input_shape)
        else:
            sample = _sample_shape(model, layers)
        #: One sample's shape (no batch axis), or None when the model does not tell.
        self.sample_shape: tuple[int, ...] | None = sample
        #: The last layer's output shape (batch axis included), None when unknown.
        self.output_shape: tuple[int, ...] | None = None
        self.input_shape = self._shape(sample) if sample is not None else "?"

        grads: dict[str, Any] = {}
        if x is not None and t is not None:
            grads = self._one_step(layers, x, t)
        self.label_shape = _shape_text(("N" if self.batch is None else self.batch, *np.shape(t)[1:])) \
            if t is not None else "(N,)"

        # Flat names (W1, b1, ...) found by identity: the array a layer holds *is* the one
        # the model lists under that name.
        names: dict[int, str] = {}
        params = getattr(model, "params", {})
        for name in params:
            names[id(params[name])] = name

        self.boxes: list[_LayerBox] = []
        shape: tuple[int, ...] | None = None if sample is None else (self.batch or 1, *sample)
        for layer in layers:
            if shape is not None:
                try:
                    shape = tuple(layer.output_shape(shape))
                except (AttributeError, ValueError, TypeError, IndexError):
                    shape = None
            box = _LayerBox(str(getattr(layer, "name", type(layer).__name__)), _layer_detail(layer),
                            self._shape(shape[1:]) if shape is not None else "?")
            for key, array in getattr(layer, "params", {}).items():
                name = names.get(id(array), key)
                box.params.append(_ParamRow(name, tuple(np.shape(array)),
                                            _norm(grads[name]) if name in grads else None))
            self.boxes.append(box)
        self.output_shape = shape
        self.rankdir = rankdir or ("LR" if len(self.boxes) <= 6 else "TB")

    def _shape(self, sample: Sequence[int]) -> str:
        return _shape_text(("N" if self.batch is None else self.batch, *sample))

    def _one_step(self, layers: list[Any], x: np.ndarray, t: np.ndarray) -> dict[str, Any]:
        """One forward/backward through the model's own ``gradient``; the running statistics
        a training-mode forward updates (BatchNormalization) are put back afterwards, so
        drawing a model does not change it."""
        saved = [{k: v.copy() for k, v in getattr(layer, "buffers", {}).items()} for layer in layers]
        try:
            grads = dict(self.model.gradient(x, t))
        finally:
            for layer, buffers in zip(layers, saved, strict=True):
                layer.buffers.update(buffers) if buffers else None
        loss = getattr(self.loss_layer, "loss", None)
        self.loss = float(loss) if loss is not None else None
        self.weight_decay = float(getattr(self.model, "weight_decay_lambda", 0.0) or 0.0)
        return grads

    def to_dot(self, legend: bool = True, digits: int = 4) -> str:
        title = type(self.model).__name__
        dtype = getattr(self.model, "dtype", None)
        if dtype is not None:
            title += f" ({dtype})"
        if self.loss is not None:
            title += f", one forward/backward on a batch of {self.batch}"
            if self.data:
                title += f" ({self.data})"
        lines = [
            f"digraph {_quote(type(self.model).__name__)} {{",
            f'  graph [rankdir={self.rankdir}, nodesep=0.3, ranksep=0.35, fontname="{FONT}", labelloc=b];',
            f'  node [fontname="{FONT}", fontsize=13, shape=plaintext];',
            f'  edge [arrowsize=0.7, fontname="{FONT}", fontsize=11];',
        ]
        if legend:
            grad_text = ("‖∇‖: norm of each parameter's gradient dL/dW" if self.loss is not None
                         else "(pass a batch x, t to see gradient norms)")
            lines.append(
                "  label=" + _legend(title, grad_text).replace(
                    "forward value above each edge", "tensor shapes on the edges") + ";"
            )
        lines.append(f"  x [label={_quote('x')}];")
        previous, shape = "x", self.input_shape
        for i, box in enumerate(self.boxes):
            lines.append(f"  layer{i} [label={self._box(box, digits)}];")
            lines.append(f"  {previous} -> layer{i} [label={_quote(' ' + shape + ' ')}];")
            previous, shape = f"layer{i}", box.out_shape
        if self.loss_layer is not None:
            loss_name = str(getattr(self.loss_layer, "name", type(self.loss_layer).__name__))
            lines += [
                f"  loss [label={self._box(_LayerBox(loss_name, '', ''), digits)}];",
                f"  {previous} -> loss [label={_quote(' ' + shape + ' ')}];",
                f"  t [label={_quote('t')}];",
                f"  t -> loss [label={_quote(' ' + self.label_shape + ' ')}];",
            ]
            value = "L" if self.loss is None else f"L = {format_value(self.loss, digits)}"
            if self.loss is not None and self.weight_decay:
                # The loss layer's value; the model's loss adds the decay term, whose
                # gradient λW is already in the weights' gradient norms.
                value += f" + ½λ Σ‖W‖² (λ = {format_value(self.weight_decay, digits)})"
            lines += [f"  L [label={_quote(value)}];", "  loss -> L;"]
        lines.append("}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _box(box: _LayerBox, digits: int) -> str:
        title = f"<B>{_html(box.title)}</B>"
        if box.detail and "=" not in box.detail:  # short, like "784 → 50": beside the name
            title += f" {_html(box.detail)}"
        rows = [f"<TR><TD>{title}</TD></TR>"]
        if box.detail and "=" in box.detail:
            # Long argument lists wrap after every few arguments rather than widen the box.
            parts = box.detail.split(", ")
            lines = [", ".join(parts[i : i + 3]) for i in range(0, len(parts), 3)]
            text = "<BR/>".join(_html(line) for line in lines)
            rows.append(f'<TR><TD><FONT POINT-SIZE="10" COLOR="#444444">{text}</FONT></TD></TR>')
        if box.params:
            # Parameters in a table of their own, so their columns do not stretch to the
            # width of the title row.
            cells = []
            for p in box.params:
                # Graphviz refuses an empty <FONT>, so a missing norm is an empty cell.
                grad = "" if p.grad_norm is None else (
                    f'<FONT COLOR="{GRAD_COLOUR}">‖∇‖ {format_value(p.grad_norm, digits)}</FONT>')
                cells.append(
                    f'<TR><TD ALIGN="LEFT">{_html(p.name)}</TD>'
                    f'<TD ALIGN="LEFT">{_shape_text(p.shape)}</TD><TD ALIGN="LEFT">{grad}</TD></TR>'
                )
            rows.append('<TR><TD><TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
                        + "".join(cells) + "</TABLE></TD></TR>")
        return ('<<TABLE BORDER="1" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" STYLE="ROUNDED" '
                'BGCOLOR="#f5f5f5" COLOR="#555555">' + "".join(rows) + "</TABLE>>")

    def __repr__(self) -> str:
        loss = "" if self.loss is None else f", loss {format_value(self.loss)}"
        return f"ModelGraph({type(self.model).__name__}: {len(self.boxes)} layers{loss})"


def model_graph(
    model: Any,
    x: np.ndarray | None = None,
    t: np.ndarray | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    rankdir: str | None = None,
    data: str | None = None,
) -> ModelGraph:
    """Draw a network (``Sequential`` or a book net) as its layers.

    Without data the edges carry the shapes for a symbolic batch N (the sample shape comes
    from ``input_shape``, the model's constructor arguments, or its first Affine). With a
    batch ``x`` and labels ``t`` the model's own ``gradient(x, t)`` runs once, and the drawing
    shows the loss and ||dL/dW|| for every parameter; BatchNormalization's running statistics
    are restored afterwards. ``rankdir`` is "LR" (default up to 6 layers) or "TB"; ``data``
    names the batch in the caption ("digits test images").
    """
    return ModelGraph(model, x, t, input_shape=input_shape, rankdir=rankdir, data=data)

"""Backprop one node at a time: :class:`Stepper` walks a :class:`~layerwise.graph.engine.Graph`
forward node by node, then backward, and says what each step computed.

Every number comes from the graph's own node and layer objects: a forward step calls the
node's ``forward`` (``Graph.forward_node``), a backward step its ``backward``
(``Graph.backward_node``), exactly what ``Graph.forward``/``Graph.backward`` and a model's
``gradient`` run. :meth:`Stepper.check` puts every gradient beside its central-difference
estimate. :func:`network_graph` builds the graph of a whole network on a mini-batch.

``layerwise serve`` shows a Stepper in the browser; :mod:`layerwise.graph.notebook` in Jupyter.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError, StateError
from ..gradcheck.checks import relative_error
from ..gradcheck.numerical import numerical_gradient
from .dot import Graph as DrawnGraph
from .engine import Graph, Var

__all__ = [
    "AGREE", "CACHE_NAMES", "ZERO_SCALE", "CheckRow", "NodeView", "Stepper", "backward_formula", "layer_labels",
    "network_graph",
]

#: The caches a step shows, under the book's names, when a node keeps them: ReLU's mask,
#: Sigmoid's out, Affine's and a convolution's x, a convolution's col (made for the view: see
#: Convolution.col), pooling's arg_max, SoftmaxWithLoss's y and t.
CACHE_NAMES = ("x", "y", "mask", "out", "col", "arg_max", "t")

#: A check row agrees below this relative error (float64 central differences with h = 1e-4
#: reach ~1e-9 on smooth nodes; the gradcheck tests' own pass mark is 1e-7).
AGREE = 1e-6
#: Gradients below this are zero: central differences of a loss of size ~1 leave ~1e-12 of noise.
ZERO_SCALE = 1e-9
#: A node's choices, where its function has kinks: ReLU's mask (x <= 0), max pooling's arg_max.
#: When a ±h pair of evaluations changes one, the pair straddles a kink.
_KINK_CACHES = ("mask", "arg_max")

#: What each node's backward computes, as the book writes it (shown beside its numbers).
_FORMULAS = {
    "Mul": "dx = dout · y,  dy = dout · x",
    "Add": "dx = dout,  dy = dout",
    "MulConst": "dx = dout · c",
    "AddConst": "dx = dout",
    "Exp": "dx = dout · exp(x)",
    "Reciprocal": "dx = −dout / x²",
    "Relu": "dx = dout where x > 0, else 0 (the mask)",
    "Sigmoid": "dx = dout · out · (1 − out)",
    "Tanh": "dx = dout · (1 − out²)",
    "Affine": "dx = dout · Wᵀ,  dW = xᵀ · dout,  db = Σ_N dout",
    "SoftmaxWithLoss": "dx = (y − t) / N",
    "Convolution": "dx = col2im(dout · Wᵀ),  dW = colᵀ · dout,  db = Σ dout",
    "Pooling": "dx = dout sent to each window's max (arg_max)",
}


def backward_formula(node: Any) -> str:
    """The book's formula for ``node``'s backward, or "" for a node type without one here."""
    for cls in type(node).__mro__:
        if cls.__name__ in _FORMULAS:
            return _FORMULAS[cls.__name__]
    return ""


def _input_slot_names(n_inputs: int) -> list[str]:
    """The book's names for what a backward returns: dx, or dx and dy for a two-input node."""
    return ["dx", "dy"][:n_inputs] if n_inputs <= 2 else [f"dx{i + 1}" for i in range(n_inputs)]


@dataclass
class NodeView:
    """What is known about one node at the current step: its output once its forward ran,
    its caches (book names), and once its backward ran the gradient it received (``dout``),
    what it returned per input and its parameters' gradients."""

    index: int
    label: str
    kind: str
    inputs: list[str]
    output_name: str
    formula: str
    forward_done: bool
    backward_done: bool
    output: Any = None
    caches: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    dout: Any = None
    #: (name, input value it flows to, gradient): ("dx", "apple", 2.2); None where no gradient flows.
    returns: list[tuple[str, str, Any]] = field(default_factory=list)
    param_grads: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckRow:
    """One gradient beside its central-difference estimate. For arrays, ``checked`` of
    ``size`` elements were perturbed (a spot check of a large one)."""

    name: str
    analytic: Any
    numerical: Any
    relative_error: float
    checked: int
    size: int
    #: max(|analytic|, |numerical|) over the checked elements: the scale the error is relative to.
    scale: float = 1.0
    #: Checked elements whose ±h pair straddles a kink (a ReLU input at 0, a max-pooling tie):
    #: the derivative is not defined there, so they are left out of ``relative_error``.
    kinks: int = 0
    #: Why a row needs a second look ("zero", the kinks left out), or "".
    note: str = ""

    @property
    def agrees(self) -> bool:
        """The gradient matches its estimate: a relative error under ``AGREE``, or both zero up
        to rounding (a relative error of round-off noise against a zero gradient means nothing)."""
        return self.relative_error < AGREE or self.scale < ZERO_SCALE


class Stepper:
    """Steps a graph forward one node at a time, then backward one node at a time.

    ``step_forward()`` runs the next node's ``forward``; once every node has run,
    ``step_backward()`` runs the last node's ``backward`` and works towards the first. A step
    out of order raises :class:`~layerwise.errors.StateError` naming what comes next.
    ``view(i)`` is what is known about node i now; ``check()`` (after the backward pass) sets
    every gradient beside central differences. ``reset()`` starts again.
    """

    def __init__(self, graph: Graph) -> None:
        if not graph.ops:
            raise InputError("Stepper: the graph has no nodes to step through")
        self.graph = graph
        self.forward_done = 0  # nodes whose forward has run, from the first
        self.backward_done = 0  # nodes whose backward has run, from the last
        self.current: int | None = None  # the node the last step ran
        #: Each random node's generator state before its forward step (Dropout's rng), so that
        #: check() re-runs a node with the mask its backward used, not a new one.
        self._rng_states: dict[int, Any] = {}
        graph.clear_grads()  # the gradients a graph computed when it was built are stepped again

    @property
    def n_nodes(self) -> int:
        return len(self.graph.ops)

    @property
    def phase(self) -> str:
        """"forward" while forward steps remain, then "backward", then "done"."""
        if self.forward_done < self.n_nodes:
            return "forward"
        return "backward" if self.backward_done < self.n_nodes else "done"

    def step_forward(self) -> int:
        """Run the next node's forward; returns its index."""
        if self.forward_done == self.n_nodes:
            raise StateError(
                f"the forward pass is complete ({self.n_nodes} of {self.n_nodes} nodes); "
                + ("step backward next" if self.phase == "backward" else "reset to start again")
            )
        index = self.forward_done
        rng = getattr(self.graph.ops[index].node, "rng", None)
        if isinstance(rng, np.random.Generator):
            self._rng_states[index] = copy.deepcopy(rng.bit_generator.state)
        self.graph.forward_node(index)
        self.forward_done += 1
        self.current = index
        return index

    def step_backward(self) -> int:
        """Run the backward of the last node not yet stepped back through; returns its index."""
        if self.forward_done < self.n_nodes:
            raise StateError(
                f"step backward needs the whole forward pass first: {self.forward_done} of "
                f"{self.n_nodes} nodes have run forward"
            )
        if self.backward_done == self.n_nodes:
            raise StateError("the backward pass is complete; reset to start again")
        if self.backward_done == 0:
            self.graph.seed_backward()
        index = self.n_nodes - 1 - self.backward_done
        self.graph.backward_node(index)
        self.backward_done += 1
        self.current = index
        return index

    def run(self) -> None:
        """Every remaining step, forward then backward."""
        while self.phase == "forward":
            self.step_forward()
        while self.phase == "backward":
            self.step_backward()

    def reset(self) -> None:
        self.forward_done = self.backward_done = 0
        self.current = None
        self.graph.clear_grads()

    # -- what is known --------------------------------------------------------------------
    def node_index(self, key: int | str) -> int:
        """A node by index or by label/output name; InputError naming the choices otherwise."""
        ops = self.graph.ops
        if isinstance(key, int) and not isinstance(key, bool):
            if 0 <= key < len(ops):
                return key
        else:
            for i, op in enumerate(ops):
                if key in (op.label, op.output.name):
                    return i
        names = ", ".join(op.output.name for op in ops)
        raise InputError(f"no node {key!r} in this graph; its nodes are 0..{len(ops) - 1} ({names})")

    def view(self, key: int | str) -> NodeView:
        index = self.node_index(key)
        op = self.graph.ops[index]
        node = op.node
        ran_forward = index < self.forward_done
        ran_backward = index >= self.n_nodes - self.backward_done
        v = NodeView(index, op.label, type(node).__name__, [x.name for x in op.inputs], op.output.name,
                     backward_formula(node), ran_forward, ran_backward)
        v.params = dict(getattr(node, "params", {}) or {})
        if ran_forward:
            v.output = op.output.value
            for name in CACHE_NAMES:
                value = getattr(node, name, None)
                if isinstance(value, np.ndarray | float | int | np.generic) and not isinstance(value, bool):
                    v.caches[name] = value
        if ran_backward:
            v.dout = op.output.grad
            for slot, (name, var) in enumerate(zip(_input_slot_names(len(op.inputs)), op.inputs, strict=True)):
                v.returns.append((name, var.name, self.graph.edge(index, slot).grad))
            v.param_grads = {f"d{k}": g for k, g in (getattr(node, "grads", {}) or {}).items()}
        return v

    def views(self) -> list[NodeView]:
        return [self.view(i) for i in range(self.n_nodes)]

    # -- the check ------------------------------------------------------------------------
    def check(self, h: float = 1e-4, max_elements: int = 64, seed: int = 0) -> list[CheckRow]:
        """Every gradient of the finished backward pass beside central differences of the
        graph's outputs (summed, as backward seeds each output with 1).

        Checked: every value that receives a gradient (inputs and intermediate values, by
        re-running the nodes after it) and every parameter of every node. Arrays larger than
        ``max_elements`` are spot-checked at that many positions drawn with ``seed``. Run it
        in float64: float32's 7 digits cannot resolve a difference quotient.
        """
        if self.phase != "done":
            raise StateError(f"check needs the finished backward pass; {self._progress()}")
        graph = self.graph
        rng = np.random.default_rng(seed)
        producer = {id(op.output): i for i, op in enumerate(graph.ops)}
        outputs = graph.outputs
        rows: list[CheckRow] = []
        try:
            for var in graph.vars.values():
                if var.grad is None or any(var is o for o in outputs) or not _is_float(var.value):
                    continue
                start = producer.get(id(var), -1) + 1
                rows.append(self._check_value(var.name, var.grad, _Slot(var), start, outputs, h,
                                              max_elements, rng))
            for i, op in enumerate(graph.ops):
                grads = getattr(op.node, "grads", {}) or {}
                for key in getattr(op.node, "params", {}) or {}:
                    if key in grads:
                        rows.append(self._check_value(f"{op.label}.{key}", grads[key], _Slot(op.node.params, key),
                                                      i, outputs, h, max_elements, rng))
        finally:
            for i in range(self.n_nodes):  # values and caches back to the unperturbed pass
                self._rerun(i)
        for row in rows:
            notes = []
            if row.kinks:
                notes.append(f"{row.kinks} of {row.checked} elements left out: within h of a kink (a ReLU input "
                             "at 0, tied values in a max-pooling window), where the derivative is not defined")
            if row.scale < ZERO_SCALE:
                notes.append("zero: both are below 1e-9, round-off noise")
            row.note = "; ".join(notes)
        return rows

    def _kink_signature(self, start: int) -> int:
        """A fingerprint of every kinked node's choices from node ``start`` on."""
        parts = []
        for op in self.graph.ops[start:]:
            for name in _KINK_CACHES:
                cache = getattr(op.node, name, None)
                if isinstance(cache, np.ndarray):
                    parts.append(cache.tobytes())
        return hash(tuple(parts))

    def _rerun(self, index: int) -> None:
        """Node ``index``'s forward again, with the random draws of its forward step."""
        state = self._rng_states.get(index)
        if state is not None:
            self.graph.ops[index].node.rng.bit_generator.state = copy.deepcopy(state)
        self.graph.forward_node(index)

    def _check_value(self, name: str, analytic: Any, slot: _Slot, start: int, outputs: list[Var], h: float,
                     max_elements: int, rng: np.random.Generator) -> CheckRow:
        signatures: list[int] = []

        def total() -> float:
            for i in range(start, self.n_nodes):
                self._rerun(i)
            signatures.append(self._kink_signature(start))
            return float(sum(np.sum(o.value) for o in outputs))

        value = slot.get()
        if isinstance(value, np.ndarray) and value.ndim > 0:
            work = np.array(value, dtype=np.float64 if value.dtype.kind != "f" else value.dtype, copy=True,
                            order="C")  # numerical_gradient perturbs it in place through a flat view
            slot.set(work)
            try:
                picked = None if work.size <= max_elements else \
                    np.sort(rng.choice(work.size, max_elements, replace=False))
                numerical = numerical_gradient(lambda _: total(), work, h, indices=picked)
            finally:
                slot.set(value)
                total()  # the values after this one back to the unperturbed pass
            a = np.asarray(analytic).reshape(-1)
            n = numerical.reshape(-1)
            if picked is not None:
                a, n = a[picked], n[picked]
            # numerical_gradient evaluates +h then -h for each element in turn (then one restore).
            pairs = np.array(signatures[: 2 * a.size]).reshape(a.size, 2)
            smooth = pairs[:, 0] == pairs[:, 1]
            a_s, n_s = a[smooth], n[smooth]
            scale = float(max(np.max(np.abs(a_s)), np.max(np.abs(n_s)))) if a_s.size else 0.0
            return CheckRow(name, analytic, numerical, relative_error(a_s, n_s), a.size, work.size, scale,
                            int(a.size - smooth.sum()))
        x = float(value)
        try:
            slot.set(x + h)
            plus = total()
            slot.set(x - h)
            minus = total()
        finally:
            slot.set(value)
            total()
        numerical = (plus - minus) / (2 * h)
        if signatures[0] != signatures[1]:
            return CheckRow(name, analytic, numerical, 0.0, 1, 1, 0.0, kinks=1)
        return CheckRow(name, analytic, numerical, relative_error(np.float64(analytic), np.float64(numerical)), 1, 1,
                        max(abs(float(analytic)), abs(numerical)))

    def _progress(self) -> str:
        return (f"{self.forward_done} of {self.n_nodes} nodes have run forward, "
                f"{self.backward_done} backward")

    def __repr__(self) -> str:
        return f"Stepper({self.graph.title!r}: {self.phase}; {self._progress()})"


class _Slot:
    """Where a checked value lives: a Var's value, or one entry of a parameter dict."""

    def __init__(self, owner: Any, key: str | None = None) -> None:
        self.owner, self.key = owner, key

    def get(self) -> Any:
        return self.owner.value if self.key is None else self.owner[self.key]

    def set(self, value: Any) -> None:
        if self.key is None:
            self.owner.value = value
        else:
            self.owner[self.key] = value


def _is_float(value: Any) -> bool:
    if isinstance(value, np.ndarray | np.generic):
        return value.dtype.kind == "f"
    return isinstance(value, float | int) and not isinstance(value, bool)


def layer_labels(layers: Iterable[Any]) -> list[str]:
    """The book's names for a network's layers: Affine1, Relu1, Affine2, ... (each kind counted)."""
    counts: dict[str, int] = {}
    labels = []
    for layer in layers:
        kind = str(getattr(layer, "name", type(layer).__name__))
        counts[kind] = counts.get(kind, 0) + 1
        labels.append(f"{kind}{counts[kind]}")
    return labels


def network_graph(model: Iterable[Any], x: np.ndarray, t: np.ndarray, *, dtype: Any = np.float64,
                  title: str | None = None) -> Graph:
    """The graph of a network on a mini-batch: x → each layer → its loss layer (with t) → loss.

    The layers are copies of ``model``'s (the model is not touched), in ``dtype`` (float64 by
    default, the book's, so that :meth:`Stepper.check` can resolve central differences), and
    every layer computes its input gradient (a model's first layer normally skips it). The
    forward pass runs in training mode, as in ``model.gradient``; so the gradients equal
    ``model.gradient(x, t)`` of a float64 copy of the model (without weight decay).
    """
    loss_layer = getattr(model, "loss_layer", None)
    if loss_layer is None:
        raise InputError(f"network_graph: {type(model).__name__} has no loss_layer to end the graph with")
    layers = copy.deepcopy([*list(model), loss_layer])
    dtype = np.dtype(dtype)
    for layer in layers:
        for store in (getattr(layer, "params", {}), getattr(layer, "grads", {}), getattr(layer, "buffers", {})):
            for key in list(store or {}):
                store[key] = np.asarray(store[key], dtype=dtype)
        if hasattr(layer, "needs_input_grad"):
            layer.needs_input_grad = True
    x = np.asarray(x, dtype=dtype)
    g = DrawnGraph(title=title or f"{type(model).__name__} on a batch of {len(x)}")
    h = g.input("x", x)
    labels = g.input("t", np.asarray(t))
    for label, layer in zip(layer_labels(layers[:-1]), layers[:-1], strict=True):
        h = g.apply(layer, h, name=label, label=label)
    loss_name = str(getattr(layers[-1], "name", type(layers[-1]).__name__))
    g.apply(layers[-1], h, labels, name="loss", label=loss_name)
    return g

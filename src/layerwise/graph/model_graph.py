"""A whole network drawn as its layers: :func:`model_graph` and the :class:`ModelGraph` it makes.

Boxes in order, one per layer, with its constructor arguments; the tensor shapes on the edges
(for a symbolic batch N, or the batch given); each parameter with its shape and, after one
forward/backward on a batch, its gradient norm ||dL/dW||; the loss at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dot import FONT, GRAD_COLOUR, Drawing, dot_quote, html_text, legend_label
from .engine import format_value

__all__ = ["ModelGraph", "model_graph"]


def _shape_text(shape: Sequence[Any]) -> str:
    """(N, 784) with a symbolic batch axis; (50,) for one axis."""
    inner = ", ".join(str(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


def _norm(a: Any) -> float:
    """Euclidean norm accumulated in float64 (a float32 sum of squares loses digits)."""
    return float(np.sqrt(np.sum(np.square(np.asarray(a), dtype=np.float64))))


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
        layers = list(model)  # a Sequential iterates over its layers (the book's nets too)
        self.loss_layer = getattr(model, "loss_layer", None)
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
                if buffers:
                    layer.buffers.update(buffers)
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
            f"digraph {dot_quote(type(self.model).__name__)} {{",
            f'  graph [rankdir={self.rankdir}, nodesep=0.3, ranksep=0.35, fontname="{FONT}", labelloc=b];',
            f'  node [fontname="{FONT}", fontsize=13, shape=plaintext];',
            f'  edge [arrowsize=0.7, fontname="{FONT}", fontsize=11];',
        ]
        if legend:
            grad_text = ("‖∇‖: norm of each parameter's gradient dL/dW" if self.loss is not None
                         else "(pass a batch x, t to see gradient norms)")
            lines.append(f"  label={legend_label(title, grad_text, 'tensor shapes on the edges')};")
        lines.append(f"  x [label={dot_quote('x')}];")
        previous, shape = "x", self.input_shape
        for i, box in enumerate(self.boxes):
            lines.append(f"  layer{i} [label={self._box(box, digits)}];")
            lines.append(f"  {previous} -> layer{i} [label={dot_quote(' ' + shape + ' ')}];")
            previous, shape = f"layer{i}", box.out_shape
        if self.loss_layer is not None:
            loss_name = str(getattr(self.loss_layer, "name", type(self.loss_layer).__name__))
            lines += [
                f"  loss [label={self._box(_LayerBox(loss_name, '', ''), digits)}];",
                f"  {previous} -> loss [label={dot_quote(' ' + shape + ' ')}];",
                f"  t [label={dot_quote('t')}];",
                f"  t -> loss [label={dot_quote(' ' + self.label_shape + ' ')}];",
            ]
            value = "L" if self.loss is None else f"L = {format_value(self.loss, digits)}"
            if self.loss is not None and self.weight_decay:
                # The loss layer's value; the model's loss adds the decay term, whose
                # gradient λW is already in the weights' gradient norms.
                value += f" + ½λ Σ‖W‖² (λ = {format_value(self.weight_decay, digits)})"
            lines += [f"  L [label={dot_quote(value)}];", "  loss -> L;"]
        lines.append("}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _box(box: _LayerBox, digits: int) -> str:
        title = f"<B>{html_text(box.title)}</B>"
        if box.detail and "=" not in box.detail:  # short, like "784 → 50": beside the name
            title += f" {html_text(box.detail)}"
        rows = [f"<TR><TD>{title}</TD></TR>"]
        if box.detail and "=" in box.detail:
            # Long argument lists wrap after every few arguments rather than widen the box.
            parts = box.detail.split(", ")
            lines = [", ".join(parts[i : i + 3]) for i in range(0, len(parts), 3)]
            text = "<BR/>".join(html_text(line) for line in lines)
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
                    f'<TR><TD ALIGN="LEFT">{html_text(p.name)}</TD>'
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

"""The step-through in Jupyter: a :class:`Stepper` that shows itself inline.

As the last line of a cell, a :class:`Stepper` shows buttons (Step forward, Step backward,
Reset, Check) above a table of what each node has computed so far, when ipywidgets is
installed. Without ipywidgets, and in a front end without the widget manager (nbconvert, a
static notebook viewer), it shows the same table as static HTML, as it was when displayed.
Nothing here needs a server: every click calls the stepper's own ``step_forward`` or
``step_backward`` in the kernel.

:func:`step_through` makes one from a graph, a book example's name or a model and a mini-batch.
Like :mod:`~layerwise.graph.dot` over the engine, this module only adds showing to
:class:`layerwise.graph.stepper.Stepper`; the stepping and the numbers stay there.
"""

from __future__ import annotations

import html
from typing import Any

from ..errors import InputError, LayerwiseError
from . import stepper
from .dot import GRAD_COLOUR
from .engine import Graph, format_value
from .examples import EXAMPLES, example
from .stepper import AGREE, CheckRow, NodeView, network_graph

__all__ = ["CheckRows", "Controls", "Stepper", "check_table_html", "step_through"]

#: Background of the row of the node the last step ran.
CURRENT_COLOUR = "#fff3c4"
# Inline styles, not a <style> block: they survive every notebook viewer and sanitizer.
_CELL = 'style="border:1px solid #ddd; padding:2px 6px; text-align:left; vertical-align:top"'
_TABLE = 'style="border-collapse:collapse; font-size:90%"'


def _text(value: Any) -> str:
    """A value as escaped HTML text: numbers short (``format_value``), everything else as str."""
    if isinstance(value, str):
        return html.escape(value)
    return html.escape(format_value(value))


def _grad(text: str) -> str:
    # Gradients in the pictures' red, so the table reads like the drawn graphs.
    return f'<span style="color:{GRAD_COLOUR}">{text}</span>'


def _lines(items: list[str]) -> str:
    return "<br>".join(items)


class CheckRows(list[CheckRow]):
    """The rows of :meth:`Stepper.check`: a plain list, shown in Jupyter as a table."""

    def _repr_html_(self) -> str:
        return check_table_html(self)


def check_table_html(rows: list[CheckRow]) -> str:
    """The gradient check as an HTML table: each gradient (backprop) beside its
    central-difference estimate, their relative error, and how many elements were perturbed."""
    head = "".join(f"<th {_CELL}>{h}</th>" for h in
                   ("value", "backprop", "numerical", "relative error", "checked / size", "note"))
    body = []
    for r in rows:
        # A failed check must stand out even in a long table (CheckRow.agrees: the page's rule).
        err = html.escape(format_value(r.relative_error, digits=2))
        if not r.agrees:
            err = f'<span style="color:#b00020; font-weight:bold">{err} (over {format_value(AGREE)})</span>'
        body.append(
            f"<tr><td {_CELL}>{html.escape(r.name)}</td><td {_CELL}>{_grad(_text(r.analytic))}</td>"
            f"<td {_CELL}>{_text(r.numerical)}</td><td {_CELL}>{err}</td>"
            f"<td {_CELL}>{r.checked} / {r.size}</td><td {_CELL}>{html.escape(r.note)}</td></tr>"
        )
    if not body:
        body.append(f'<tr><td {_CELL} colspan="6">no gradient to check</td></tr>')
    return f"<table {_TABLE}><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


class Stepper(stepper.Stepper):
    """A :class:`layerwise.graph.stepper.Stepper` that shows itself in Jupyter. ::

        s = step_through("apple")    # or Stepper(graph), step_through(net, x_batch, t_batch)
        s                            # buttons and the table (ipywidgets), else the table
        s.step_forward(); s          # the table after one step: apple_price = 200
        s.run(); s.check()           # every gradient beside central differences, as a table

    ``to_html()`` (also ``_repr_html_``) is the table of the current state: each node's
    output and caches once its forward has run, the gradient it received (dout) and what its
    backward returned (dx, dy, dW, db) once that has run; the node of the last step is
    highlighted. ``widget()`` is the buttons and the table as ipywidgets.
    """

    def check(self, h: float = 1e-4, max_elements: int = 64, seed: int = 0) -> CheckRows:
        """:meth:`layerwise.graph.stepper.Stepper.check`, its rows shown as a table in Jupyter."""
        return CheckRows(super().check(h, max_elements, seed))

    # -- the static table -----------------------------------------------------------------
    def hint(self) -> str:
        """What to call next, in a sentence."""
        if self.forward_done == 0:
            return "call .run() or .step_forward()"
        if self.phase == "forward":
            return f"next: .step_forward() runs node {self.forward_done}"
        if self.phase == "backward":
            return f"next: .step_backward() runs node {self.n_nodes - 1 - self.backward_done}"
        return ".check() compares every gradient with central differences; .reset() starts again"

    def to_html(self) -> str:
        """The forward and backward pass as far as it has been stepped, as an HTML table."""
        graph = self.graph
        parts = [f"<div><b>{html.escape(graph.title or 'computational graph')}</b><br>"]
        inputs = ", ".join(f"{html.escape(v.name)} = {_text(v.value)}" for v in graph.inputs)
        if inputs:
            parts.append(f"inputs: {inputs}<br>")
        parts.append(f"{html.escape(self.phase)}: {html.escape(self._progress())}; "
                     f"<i>{html.escape(self.hint())}</i></div>")
        head = "".join(f"<th {_CELL}>{h}</th>" for h in
                       ("#", "node", "forward output", "caches", "backward: dout", "backward returns"))
        rows = [self._row_html(v) for v in self.views()]
        parts.append(f"<table {_TABLE}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self.to_html()

    def _row_html(self, v: NodeView) -> str:
        current = v.index == self.current
        node = [f"<b>{html.escape(v.label)}</b> ({html.escape(v.kind)})",
                f"{html.escape(', '.join(v.inputs))} → {html.escape(v.output_name)}"]
        node += [f"{html.escape(k)}: {_text(p)}" for k, p in v.params.items()]
        if v.formula:
            node.append(f'<small style="color:#666">{html.escape(v.formula)}</small>')
        forward = f"{html.escape(v.output_name)} = {_text(v.output)}" if v.forward_done else ""
        caches = _lines([f"{html.escape(k)} = {_text(c)}" for k, c in v.caches.items()])
        dout = returns = ""
        if v.backward_done:
            dout = _grad(_text(v.dout))
            returned = [f"{html.escape(name)} = {_grad(_text(g)) if g is not None else 'none'} → {html.escape(to)}"
                        for name, to, g in v.returns]
            returned += [f"{html.escape(k)} = {_grad(_text(g))}" for k, g in v.param_grads.items()]
            returns = _lines(returned)
        cells = [str(v.index) + (" ▶" if current else ""), _lines(node), forward, caches, dout, returns]
        # The row of the last step stands out, so a click's effect is found at a glance.
        attrs = f' class="current" style="background:{CURRENT_COLOUR}"' if current else ""
        return f"<tr{attrs}>" + "".join(f"<td {_CELL}>{c}</td>" for c in cells) + "</tr>"

    # -- the buttons ----------------------------------------------------------------------
    def widget(self) -> Controls:
        """Buttons and the table as ipywidgets (raises ImportError without ipywidgets)."""
        return Controls(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # The static table is always in the bundle: a viewer that cannot run widgets shows it.
        bundle: dict[str, Any] = {"text/plain": repr(self), "text/html": self.to_html()}
        try:
            import ipywidgets  # noqa: F401  (imported here: keeps ipywidgets an optional dependency)
        except ImportError:
            return bundle
        # Frontends with the widget manager show the buttons; the others fall back to text/html.
        return {**(self.widget()._repr_mimebundle_() or {}), **bundle}


class Controls:
    """The step-through as ipywidgets: Step forward, Step backward, Reset and Check buttons
    over an HTML area that shows the stepper's table after every click.

    A button whose step would be out of order is disabled; a click that is out of order all the
    same (``button.click()`` from code) shows the stepper's error message instead of raising.
    ``buttons`` maps each button's text to the button, ``output`` is the HTML area, ``box`` the
    whole; in Jupyter a ``Controls`` shows as its box.
    """

    def __init__(self, target: Stepper) -> None:
        import ipywidgets as widgets  # imported here: keeps ipywidgets an optional dependency

        self.stepper = target
        self.checked: CheckRows | None = None
        self.message = ""
        actions = {
            "Step forward": target.step_forward,
            "Step backward": target.step_backward,
            "Reset": target.reset,
            "Check": self._check,
        }
        self.buttons = {name: widgets.Button(description=name) for name in actions}
        for name, button in self.buttons.items():
            button.on_click(lambda _button, name=name, action=actions[name]: self._click(name, action))
        self.output = widgets.HTML()
        self.box = widgets.VBox([widgets.HBox(list(self.buttons.values())), self.output])
        self.refresh()

    def _check(self) -> None:
        self.checked = self.stepper.check()

    def _click(self, name: str, action: Any) -> None:
        self.message = ""
        if name != "Check":
            self.checked = None  # a step changes the values; an old check would no longer match
        try:
            action()
        except LayerwiseError as exc:
            # Out of order (StateError) or a bad value: say so in the page, never a traceback.
            self.message = f"{name}: {exc}"
        self.refresh()

    def refresh(self) -> None:
        """Show the stepper's current state (also after steps made from code) and enable
        only the buttons whose step comes next."""
        s = self.stepper
        self.buttons["Step forward"].disabled = s.phase != "forward"
        self.buttons["Step backward"].disabled = s.phase != "backward"
        self.buttons["Reset"].disabled = s.forward_done == 0
        self.buttons["Check"].disabled = s.phase != "done"
        parts = []
        if self.message:
            parts.append(f'<div style="color:#b00020">{html.escape(self.message)}</div>')
        parts.append(s.to_html())
        if self.checked is not None:
            parts.append(f"<div><b>gradient check</b> (central differences, h = 1e-4)</div>"
                         f"{check_table_html(self.checked)}")
        self.output.value = "".join(parts)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return self.box._repr_mimebundle_(**kwargs) or {}


def step_through(obj: Any, x: Any = None, t: Any = None) -> Stepper:
    """A notebook :class:`Stepper` for a graph, a book example or a network.

    ``obj`` is a :class:`~layerwise.graph.engine.Graph`; the name of a book example
    (``"apple"``, ``"apple-orange"``, ``"sigmoid"``; for ``"sigmoid"``, ``x`` is its input);
    or a model (its layers and a ``loss_layer``) with a mini-batch ``x`` and labels ``t``,
    stepped in float64 on copies of its layers (:func:`~layerwise.graph.stepper.network_graph`).
    """
    if isinstance(obj, Graph):
        if x is not None or t is not None:
            raise InputError("step_through: a graph already holds its inputs; x and t are for a model")
        return Stepper(obj)
    if isinstance(obj, str):
        if t is not None or (x is not None and obj != "sigmoid"):
            raise InputError(f"step_through: the example {obj!r} takes no x or t (only 'sigmoid' takes an x)")
        if obj == "sigmoid" and x is not None:
            return Stepper(example(obj, float(x)))
        return Stepper(example(obj))
    if getattr(obj, "loss_layer", None) is None or not hasattr(obj, "layers"):
        raise InputError(
            f"step_through: expected a Graph, an example name ({', '.join(EXAMPLES)}) or a model with "
            f"layers and a loss_layer, got {type(obj).__name__}"
        )
    if x is None or t is None:
        missing = " and ".join(name for name, v in (("x", x), ("t", t)) if v is None)
        raise InputError(f"step_through: a model is stepped on a mini-batch x and its labels t; {missing} missing")
    return Stepper(network_graph(obj, x, t))

"""Drawing: DOT text, and pictures rendered from it by Graphviz's ``dot`` program.

- :func:`render` runs ``dot -T<fmt>`` (SVG, PNG, PDF); it raises
  :class:`~layerwise.errors.GraphvizNotFoundError` when ``dot`` is not installed and
  :class:`~layerwise.errors.GraphvizError` when it fails. DOT text needs nothing.
- :class:`Drawing` is anything with ``to_dot()``: it adds ``to_svg``, ``to_png``, ``save``
  (the format from the file's extension, written atomically) and the Jupyter reprs.
- :class:`Graph` is the engine's :class:`~layerwise.graph.engine.Graph` as a Drawing: its
  ``to_dot`` follows the book's figures, nodes as circles labelled ×, +, exp, /, each edge
  with its forward value above the line and its gradient (dL/d·) below it, in red. Its legend,
  tooltips and font follow the graph's ``lang`` (:mod:`layerwise.graph.captions`).
- The DOT-text helpers (quoting, HTML labels, the caption) are shared with
  :mod:`layerwise.graph.model_graph`.
"""

from __future__ import annotations

import html
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..errors import GraphvizError, GraphvizNotFoundError, InputError
from ..io import atomic_write
from . import engine
from .captions import FONTS, caption, check_language, font
from .engine import Var, format_value

__all__ = ["FONT", "GRAD_COLOUR", "Drawing", "Graph", "dot_quote", "html_text", "legend_label", "render"]

#: Colour of gradients (the backward pass); forward values are drawn in black.
GRAD_COLOUR = "#d62728"
#: Font list of English pictures: Graphviz hands it to fontconfig (PNG) and writes it as CSS
#: font-family (SVG). Korean and Japanese pictures use ``captions.font(lang)``.
FONT = FONTS["en"]


# -- Graphviz -------------------------------------------------------------------------------------

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


# -- DOT text ---------------------------------------------------------------------------------------

def html_text(text: str) -> str:
    """``text`` escaped for a Graphviz HTML label."""
    return html.escape(text, quote=True)


def dot_quote(text: str) -> str:
    """``text`` as a DOT double-quoted string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def legend_label(title: str | None, grad_text: str, what_is_above: str = "forward value above each edge",
                 sep: str = ", ") -> str:
    """The caption under a picture: its ``title`` in bold, then what the edges carry (the
    gradient part, ``grad_text``, in the gradients' red), as an HTML label; ``sep`` joins
    the two parts (Japanese joins them with 、)."""
    lines = []
    if title:
        lines.append(f"<B>{html_text(title)}</B>")
    grad = f'<FONT COLOR="{GRAD_COLOUR}">{html_text(grad_text)}</FONT>'
    lines.append(f"{html_text(what_is_above)}{html_text(sep)}{grad}")
    return '<<FONT POINT-SIZE="11">' + "<BR/>".join(lines) + "</FONT>>"


def _edge_label(above: str, below: str, id_: str, tooltip: str) -> str:
    """A label node that sits *on* an edge: ``above`` over a rule, ``below`` under it.

    The edge enters the node at its west side and leaves at its east side; both points are
    at the node's vertical middle, which is where the rule between the two equal rows lies,
    so the line reads as one edge with a value above it and a gradient below it, as in the
    book's figures.
    """
    top = html_text(above) or "&#160;"
    bottom = html_text(below) or "&#160;"
    table = (
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">'
        f"<TR><TD>{top}</TD></TR><HR/>"
        f'<TR><TD><FONT COLOR="{GRAD_COLOUR}">{bottom}</FONT></TD></TR></TABLE>>'
    )
    return f"  {id_} [shape=plaintext, margin=0, label={table}, tooltip={dot_quote(tooltip)}];"


def _connect(tail: str, label_node: str, head: str) -> list[str]:
    # The first half has no arrowhead: together the halves read as a single arrow.
    return [f"  {tail} -> {label_node}:w [arrowhead=none];", f"  {label_node}:e -> {head};"]


# -- the computational graph, drawn ---------------------------------------------------------------

class Graph(engine.Graph, Drawing):
    """A computational graph (:class:`layerwise.graph.engine.Graph`: building, forward and
    backward) that draws itself: ``to_dot()``, ``to_svg()``, ``to_png()``, ``save(path)``,
    and an SVG picture when it is the last line of a Jupyter cell. ::

        g = Graph()
        apple, apple_num, tax = g.input("apple", 100), g.input("apple_num", 2), g.input("tax", 1.1)
        price = g.mul(g.mul(apple, apple_num), tax, name="price")
        g.backward()
        apple.grad, apple_num.grad, tax.grad     # 2.2, 110, 200 (up to round-off)
        g.save("apple.svg")                      # or g.to_dot(), or just `g` in Jupyter

    ``lang`` (``en``, ``ko``, ``ja``) is the language of the legend and the tooltips, and picks
    a font with the language's glyphs; the title, section captions and labels are the
    builder's (:mod:`layerwise.graph.examples` takes them from :mod:`~layerwise.graph.captions`).
    """

    def __init__(self, title: str | None = None, lang: str = "en") -> None:
        super().__init__(title)
        self.lang = check_language(lang)

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
            emit(i.section, f"  {input_id[id(i.var)]} [shape=plaintext, label={dot_quote(i.var.label)}];")
        for op in self.ops:
            emit(op.section, f"  {op_id[id(op)]} [shape=circle, fontsize=16, label={dot_quote(op.label)}];")

        def source(var: Var) -> str:
            return input_id[id(var)] if var.op is None else op_id[id(var.op)]

        for k, edge in enumerate(self.edges):
            label_node = f"e{k}"
            if edge.dst is None:
                head = output_id[id(edge.src)]
                section = edge.src.op.section if edge.src.op else None
                frm, to = (edge.src.op.label if edge.src.op else ""), edge.src.label
                emit(section, f"  {head} [shape=plaintext, label={dot_quote(edge.src.label)}];")
            else:
                head, section = op_id[id(edge.dst)], edge.dst.section
                frm, to = edge.src.label, edge.dst.label
            value, grad = format_value(edge.value, digits), format_value(edge.grad, digits)
            tip = caption(self.lang, "tooltip.edge", src=frm, dst=to, value=value)
            if grad:
                tip += caption(self.lang, "tooltip.grad", grad=grad)
            emit(section, _edge_label(value, grad, label_node, tip))
            emit(section, *_connect(source(edge.src), label_node, head))

        fontname = font(self.lang)
        lines = [
            f"digraph {dot_quote(self.title or 'graph')} {{",
            # ordering=in keeps each node's inputs top to bottom in the order they were given.
            f'  graph [rankdir=LR, ordering=in, nodesep=0.25, ranksep=0.15, fontname="{fontname}", '
            "labelloc=b];",
            f'  node [fontname="{fontname}", fontsize=14, width=0.45, height=0.45, margin=0.04];',
            f'  edge [arrowsize=0.7, fontname="{fontname}"];',
        ]
        if legend:
            words = {part: caption(self.lang, f"legend.{part}") for part in ("above", "sep", "grad")}
            lines.append(f"  label={legend_label(self.title, words['grad'], words['above'], words['sep'])};")
        lines += body[None]
        # dot stacks the boxes of a left-to-right graph upwards in the order they are written;
        # writing them last first puts the first section on top.
        for s in reversed(range(len(self.sections))):
            title = self.sections[s]
            lines += [
                f"  subgraph cluster_{s} {{",
                f'    label={dot_quote(title)}; style="rounded,dashed"; color="#999999"; labelloc=t;',
                *("  " + line for line in body.get(s, [])),
                "  }",
            ]
        lines.append("}")
        return "\n".join(lines) + "\n"

"""The book's computational graphs, built, run forward and backward, ready to draw.

- :func:`apple_graph`: buying apples (ch. 5.4), two multiply nodes.
- :func:`apple_orange_graph`: apples and oranges (ch. 5.4.2), an add node between multiplies.
- :func:`sigmoid_graph`: Sigmoid taken apart into ×(-1), exp, +1 and / (ch. 5.5.2), next to
  the fused Sigmoid layer.
- :func:`example`: one of them by the name the command line uses (``EXAMPLES``);
  :func:`example_title`: its title.

Each takes ``lang`` (``en``, ``ko``, ``ja``): the title, the section captions and the labels of
the inputs and outputs are then in the words of the book's English, Korean or Japanese edition
(:mod:`layerwise.graph.captions`). The values' names stay English (``g["apple"]`` in every
language); only what the picture shows changes.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InputError
from .captions import caption
from .dot import Graph
from .engine import Var, format_value

__all__ = ["EXAMPLES", "apple_graph", "apple_orange_graph", "example", "example_title", "sigmoid_graph"]


def _label(g: Graph, *values: Var) -> None:
    """Show each value under its ``label.<name>`` caption in the graph's language."""
    for var in values:
        var.label = caption(g.lang, f"label.{var.name}")


def apple_graph(apple: float = 100, apple_num: float = 2, tax: float = 1.1, lang: str = "en") -> Graph:
    """The book's first backprop example (ch. 5.4): 2 apples at 100 each, tax 1.1.

    forward: price = apple × apple_num × tax = 220.
    backward from 1: d_apple = 2.2, d_apple_num = 110, d_tax = 200.
    """
    title = caption(lang, "apple.title", apple=f"{apple:g}", apple_num=f"{apple_num:g}", tax=f"{tax:g}")
    g = Graph(title=title, lang=lang)
    a, n, t = g.input("apple", apple), g.input("apple_num", apple_num), g.input("tax", tax)
    apple_price = g.mul(a, n, name="apple_price")
    price = g.mul(apple_price, t, name="price")
    _label(g, a, n, t, apple_price, price)
    g.backward()
    return g


def apple_orange_graph(
    apple: float = 100, apple_num: float = 2, orange: float = 150, orange_num: float = 3, tax: float = 1.1,
    lang: str = "en",
) -> Graph:
    """The book's second example (ch. 5.4.2): apples and oranges, then tax.

    forward: price = (apple × apple_num + orange × orange_num) × tax = 715.
    backward from 1: d_apple_num = 110, d_apple = 2.2, d_orange = 3.3, d_orange_num = 165,
    d_tax = 650.
    """
    title = caption(lang, "apple_orange.title", apple=f"{apple:g}", apple_num=f"{apple_num:g}",
                    orange=f"{orange:g}", orange_num=f"{orange_num:g}", tax=f"{tax:g}")
    g = Graph(title=title, lang=lang)
    a, an = g.input("apple", apple), g.input("apple_num", apple_num)
    o, on = g.input("orange", orange), g.input("orange_num", orange_num)
    t = g.input("tax", tax)
    apple_price = g.mul(a, an, name="apple_price")
    orange_price = g.mul(o, on, name="orange_price")
    all_price = g.add(apple_price, orange_price, name="all_price")
    price = g.mul(all_price, t, name="price")
    _label(g, a, an, o, on, t, apple_price, orange_price, all_price, price)
    g.backward()
    return g


def sigmoid_graph(x: float = 1.0, lang: str = "en") -> Graph:
    """Sigmoid taken apart (ch. 5.5.2) next to the fused Sigmoid layer, at ``x``.

    Decomposed: x -> ×(-1) -> exp -> +1 -> / -> y, each step a node of its own.
    Fused: one Sigmoid node, whose backward is dout · y(1 - y). Backward from 1 gives the
    same dL/dx on both inputs, ``g["x"].grad == g["x_fused"].grad`` up to round-off.
    x and y are mathematics, the same in every language; the captions are in ``lang``.
    """
    g = Graph(title=caption(lang, "sigmoid.title", x=format_value(x)), lang=lang)
    with g.section(caption(lang, "sigmoid.decomposed")):
        xv = g.input("x", x)
        g.reciprocal(g.add_const(g.exp(g.mul_const(xv, -1)), 1), name="y")
    with g.section(caption(lang, "sigmoid.fused")):
        xf = g.input("x_fused", x, label="x")
        yf = g.sigmoid(xf, name="y_fused")
        yf.label = "y"
    g.backward()
    return g


#: The ready-made graphs by the names the command line uses.
EXAMPLES: dict[str, Callable[..., Graph]] = {
    "apple": apple_graph,
    "apple-orange": apple_orange_graph,
    "sigmoid": sigmoid_graph,
}


def example(name: str, x: float = 1.0, lang: str = "en") -> Graph:
    """A ready-made graph by name: ``apple``, ``apple-orange`` or ``sigmoid`` (at ``x``), its
    words in ``lang`` (``en``, ``ko``, ``ja``)."""
    if name not in EXAMPLES:
        raise InputError(f"no example graph {name!r}; choose from {', '.join(EXAMPLES)}")
    return sigmoid_graph(x, lang=lang) if name == "sigmoid" else EXAMPLES[name](lang=lang)


def example_title(name: str, lang: str = "en") -> str:
    """The title of the ready-made graph ``name`` with its default values, in ``lang``."""
    # The title shows the values, which the builder formats: building the tiny graph is the one
    # place that knows them (microseconds).
    return example(name, lang=lang).title or name

"""The book's computational graphs (layerwise.graph.examples): the numbers on every edge."""

from __future__ import annotations

import math

import pytest
from graph_pictures import dot_edges

from layerwise import graph as G
from layerwise.graph import format_value


def test_apple_graph_values_and_gradients():
    g = G.apple_graph()
    assert g["price"].value == pytest.approx(220)
    assert g["apple"].grad == pytest.approx(2.2)
    assert g["apple_num"].grad == pytest.approx(110)
    assert g["tax"].grad == pytest.approx(200)
    assert dot_edges(g.to_dot()) == [
        ("apple", "×", "100", "2.2"),
        ("apple_num", "×", "2", "110"),
        ("×", "×", "200", "1.1"),
        ("tax", "×", "1.1", "200"),
        ("×", "price", "220", "1"),
    ]


def test_apple_orange_graph_values_and_gradients():
    g = G.apple_orange_graph()
    assert g["price"].value == pytest.approx(715)
    expected = {"apple_num": 110, "apple": 2.2, "orange": 3.3, "orange_num": 165, "tax": 650}
    for name, grad in expected.items():
        assert g[name].grad == pytest.approx(grad)
    assert dot_edges(g.to_dot()) == [
        ("apple", "×", "100", "2.2"),
        ("apple_num", "×", "2", "110"),
        ("orange", "×", "150", "3.3"),
        ("orange_num", "×", "3", "165"),
        ("×", "+", "200", "1.1"),
        ("×", "+", "450", "1.1"),
        ("+", "×", "650", "1.1"),
        ("tax", "×", "1.1", "650"),
        ("×", "price", "715", "1"),
    ]


def test_sigmoid_graph_draws_the_four_steps_and_the_fused_node():
    g = G.sigmoid_graph(1.0)
    y = 1 / (1 + math.exp(-1.0))
    dydx = y * (1 - y)
    edges = dot_edges(g.to_dot())
    f = format_value
    assert edges == [
        ("x", "×(-1)", "1", f(dydx)),
        ("×(-1)", "exp", "-1", f(-dydx)),
        ("exp", "+1", f(math.exp(-1)), f(-dydx / math.exp(-1.0))),
        ("+1", "/", f(1 + math.exp(-1)), f(-1 / (1 + math.exp(-1)) ** 2)),
        ("x", "sigmoid", "1", f(dydx)),
        ("/", "y", f(y), "1"),  # the arrows leaving the outputs come last
        ("sigmoid", "y", f(y), "1"),
    ]
    assert "decomposed" in g.to_dot() and "fused Sigmoid layer" in g.to_dot()


@pytest.mark.parametrize("x", [-30.0, -4.0, -1.0, -0.25, 0.0, 0.5, 2.0, 7.0, 30.0])
def test_sigmoid_decomposed_gradient_equals_fused(x):
    g = G.sigmoid_graph(x)
    assert float(g["y"].value) == pytest.approx(float(g["y_fused"].value), rel=1e-14, abs=1e-300)
    fused, decomposed = float(g["x_fused"].grad), float(g["x"].grad)
    # Equal to round-off on the scale of the largest slope (1/4): for x >> 0 the fused
    # y(1 - y) cancels in 1 - y (x = 30: 9.348e-14 against the exact 9.358e-14), an absolute
    # error near 1e-17 that the four-node chain does not make.
    assert decomposed == pytest.approx(fused, rel=1e-12, abs=1e-15)
    exact = math.exp(-abs(x)) / (1 + math.exp(-abs(x))) ** 2
    assert decomposed == pytest.approx(exact, rel=1e-12)

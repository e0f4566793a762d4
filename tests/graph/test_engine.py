"""The graph engine (layerwise.graph.engine): building graphs, forward and backward through
real node and layer objects, one calling convention for all of them, and the short text of a
value; and the engine does not import the drawing code."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from graph_pictures import dot_edges

import layerwise
from layerwise import graph as G
from layerwise.errors import InputError, StateError
from layerwise.graph import Graph, format_value
from layerwise.graph.engine import input_grads
from layerwise.layers import Affine, Dropout, SoftmaxWithLoss
from layerwise.nodes import Mul

# -- building graphs ----------------------------------------------------------------------------

def test_arithmetic_on_vars_builds_the_same_sigmoid():
    g = Graph()
    x = g.input("x", 0.3)
    y = 1 / (1 + (-x).exp())
    g.backward()
    assert [op.label for op in g.ops] == ["×(-1)", "exp", "+1", "/"]
    s = 1 / (1 + math.exp(-0.3))
    assert y.value == pytest.approx(s) and x.grad == pytest.approx(s * (1 - s))


def test_a_value_used_twice_gets_both_gradients():
    g = Graph()
    x = g.input("x", 3.0)
    g.mul(x, x, name="sq")  # d(x²)/dx = 2x, one x from each input edge
    g.backward()
    assert x.grad == pytest.approx(6.0)
    assert [e.grad for e in g.edges[:2]] == [3.0, 3.0]


def test_subtraction_and_division_of_vars():
    g = Graph()
    a, b = g.input("a", 6.0), g.input("b", 4.0)
    q = (a - b) / b  # (a - b) / b = 0.5;  dq/da = 1/b,  dq/db = -a/b²
    g.backward()
    assert q.value == pytest.approx(0.5)
    assert a.grad == pytest.approx(0.25) and b.grad == pytest.approx(-6 / 16)


def test_array_values_broadcast_and_format_compactly():
    x = np.arange(6.0).reshape(2, 3)
    b = np.array([1.0, 2.0, 3.0])
    x_before, b_before = x.copy(), b.copy()
    g = Graph()
    xv, bv = g.input("x", x), g.input("b", b)
    out = g.add(xv, bv, name="out")
    g.exp(out, name="y")
    g.backward()
    np.testing.assert_allclose(bv.grad, np.exp(x + b).sum(axis=0))
    assert xv.grad.shape == (2, 3) and bv.grad.shape == (3,)
    np.testing.assert_array_equal(x, x_before)  # nothing the caller owns was written to
    np.testing.assert_array_equal(b, b_before)
    edges = dot_edges(g.to_dot())
    assert edges[0][:3] == ("x", "+", "(2, 3) [0 1 2 …]")
    assert edges[1][:3] == ("b", "+", "(3,) [1 2 3]")
    assert edges[1][3] == format_value(np.exp(x + b).sum(axis=0))


def test_a_loss_layer_as_a_node():
    g = Graph()
    s, t = g.input("scores", np.array([[2.0, 1.0, 0.1]])), g.input("t", np.array([0]))
    g.apply(SoftmaxWithLoss(), s, t, name="L")
    g.backward()
    p = np.exp([2.0, 1.0, 0.1]) / np.exp([2.0, 1.0, 0.1]).sum()
    np.testing.assert_allclose(s.grad, [p - [1, 0, 0]])
    assert t.grad is None  # labels get no gradient
    assert dot_edges(g.to_dot())[1][3] == ""


def test_forward_again_with_new_inputs():
    g = G.apple_graph()
    g.forward(apple=150)
    assert g["price"].value == pytest.approx(330) and g["apple"].grad is None
    g.backward()
    assert g["apple_num"].grad == pytest.approx(165)
    with pytest.raises(InputError):
        g.forward(price=1)


def test_misuse_is_refused():
    g = Graph()
    a, b = g.input("a", 1.0), g.input("b", 2.0)
    node = Mul()
    g.apply(node, a, b)
    with pytest.raises(StateError, match="already in the graph"):
        g.apply(node, a, b)
    with pytest.raises(InputError, match="taken"):
        g.input("a", 3.0)
    with pytest.raises(InputError):
        g.apply(Mul(), a, 2.0)
    with pytest.raises(InputError):
        Graph().apply(Mul(), a, b)  # values of another graph
    with pytest.raises(KeyError, match="no value named"):
        g["zzz"]


# -- numbers ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("value", "text"),
    [
        (220.00000000000003, "220"),
        (110.00000000000001, "110"),
        (3.3000000000000003, "3.3"),
        (715.0000000000001, "715"),
        (0.7310585786300049, "0.7311"),
        (-0.19661193324148185, "-0.1966"),
        (-0.0, "0"),
        (2, "2"),
        (np.float32(0.5), "0.5"),
        (np.array(1.25), "1.25"),
        (1.5e-05, "1.5e-5"),
        (123456.7, "123457"),
        (1e8, "1e8"),
        (float("nan"), "nan"),
        (float("-inf"), "-inf"),
        (None, ""),
    ],
)
def test_format_value_scalars(value, text):
    assert format_value(value) == text


def test_format_value_arrays_show_shape_and_a_few_values():
    assert format_value(np.arange(12.0).reshape(3, 4)) == "(3, 4) [0 1 2 …]"
    assert format_value(np.array([1.5, -2.0])) == "(2,) [1.5 -2]"
    big = np.full((100, 784), 1 / 3, dtype=np.float32)
    assert format_value(big) == "(100, 784) [0.3333 0.3333 0.3333 …]"
    assert len(format_value(np.random.default_rng(0).standard_normal((64, 1, 28, 28)))) < 50


# -- the engine on its own ------------------------------------------------------------------------

def test_one_calling_convention_for_nodes_layers_and_loss_layers():
    """A node (a tuple of gradients), a layer (dx alone; forward in training mode) and a loss
    layer (dx; its labels get None) in one graph give what calling them by hand gives."""
    rng = np.random.default_rng(0)
    x, s = rng.standard_normal((4, 3)), rng.standard_normal(3)
    W, b = rng.standard_normal((3, 5)), rng.standard_normal(5)
    t = np.array([0, 4, 2, 1])

    mul, affine, dropout, loss = Mul(), Affine(W.copy(), b.copy()), Dropout(0.5, seed=7), SoftmaxWithLoss()
    dropped = dropout.forward(affine.forward(mul.forward(x, s)))
    L = loss.forward(dropped, t)
    dx, ds = mul.backward(affine.backward(dropout.backward(loss.backward(1.0))))

    g = Graph()
    xv, sv, tv = g.input("x", x), g.input("s", s), g.input("t", t)
    h = g.apply(Affine(W.copy(), b.copy()), g.mul(xv, sv), name="h")
    d = g.apply(Dropout(0.5, seed=7), h, name="d")
    g.apply(SoftmaxWithLoss(), d, tv, name="L")
    g.backward()

    assert g["L"].value == L
    assert (d.value == 0).any()  # the layer ran in training mode: some units dropped
    np.testing.assert_array_equal(d.value, dropped)
    np.testing.assert_array_equal(xv.grad, dx)
    np.testing.assert_array_equal(sv.grad, ds)
    assert tv.grad is None
    graph_affine = g.ops[1].node
    np.testing.assert_array_equal(graph_affine.dW, affine.dW)
    np.testing.assert_array_equal(graph_affine.db, affine.db)


def test_input_grads_reads_what_backward_returned():
    dx, dy = np.ones(2), np.zeros(2)
    assert input_grads((dx, dy), 2) == (dx, dy)
    assert input_grads(dx, 1) == (dx,)
    assert input_grads(dx, 2) == (dx, None)
    assert input_grads(2.5, 3) == (2.5, None, None)


def test_the_engine_does_not_import_the_drawing_code():
    """micrograd's way: the engine computes, drawing stays outside. Importing
    layerwise.graph.engine on its own (its parent packages stubbed, so their __init__ files,
    which import everything, do not run) loads no other module of layerwise.graph."""
    src = Path(layerwise.__file__).parent
    code = textwrap.dedent(f"""
        import sys, types
        for name, path in (("layerwise", {str(src)!r}), ("layerwise.graph", {str(src / "graph")!r})):
            package = types.ModuleType(name)
            package.__path__ = [path]
            sys.modules[name] = package
        from layerwise.graph import engine
        g = engine.Graph()
        g.mul(g.input("a", 2.0), g.input("b", 3.0))
        g.backward()
        assert g["a"].grad == 3.0 and not hasattr(g, "to_dot")
        print(sorted(m for m in sys.modules if m.startswith("layerwise.graph.")))
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "['layerwise.graph.engine']"


# -- one node at a time -------------------------------------------------------------------------

def _network(seed=0):
    rng = np.random.default_rng(seed)
    x, t = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    W1, b1 = rng.standard_normal((3, 5)), rng.standard_normal(5)
    W2, b2 = rng.standard_normal((5, 3)), rng.standard_normal(3)
    g = Graph()
    xv, tv = g.input("x", x), g.input("t", t)
    h = g.apply(Affine(W1, b1), xv, name="h")
    r = g.apply(layerwise.ReLU(), h, name="r")
    s = g.apply(Affine(W2, b2), r, name="s")
    g.apply(SoftmaxWithLoss(), s, tv, name="L")
    return g


def test_backward_is_seed_then_backward_node_from_the_last():
    """Graph.backward is built on seed_backward and backward_node; called by hand they give
    the same gradients, and each backward_node returns what the node sent back."""
    g1, g2 = _network(), _network()
    g1.backward()
    g2.seed_backward()
    assert g2["L"].grad == 1.0 and g2["x"].grad is None
    returned = [g2.backward_node(i) for i in range(len(g2.ops) - 1, -1, -1)]
    for name in ("x", "h", "r", "s"):
        np.testing.assert_array_equal(g1[name].grad, g2[name].grad)
    for op1, op2 in zip(g1.ops, g2.ops, strict=True):
        for key in getattr(op1.node, "grads", {}):
            np.testing.assert_array_equal(op1.node.grads[key], op2.node.grads[key])
    assert g2["t"].grad is None
    loss_returned = returned[0]
    assert len(loss_returned) == 2 and loss_returned[1] is None  # (dx, nothing for the labels)
    np.testing.assert_array_equal(loss_returned[0], g2["s"].grad)
    assert [e.grad is not None for e in g1.edges] == [e.grad is not None for e in g2.edges]


def test_backward_node_out_of_order_is_refused():
    g = _network()
    g.seed_backward()
    with pytest.raises(StateError, match="no gradient reached 'r' yet"):
        g.backward_node(1)  # the ReLU, before the Affine after it has run backward


def test_seed_backward_with_a_given_dout_and_array_outputs():
    g = Graph()
    x = g.input("x", np.array([1.0, 2.0]))
    g.exp(x, name="y")
    g.seed_backward(np.array([2.0, 3.0]))
    g.backward_node(0)
    np.testing.assert_allclose(x.grad, np.exp([1.0, 2.0]) * [2.0, 3.0])
    g.seed_backward()  # default: ones shaped like the output; clears the gradients first
    assert x.grad is None
    np.testing.assert_array_equal(g["y"].grad, np.ones(2))


def test_forward_node_runs_one_node_on_its_inputs_current_values():
    g = G.apple_graph()
    g["apple"].value = 150
    out = g.forward_node(0)
    assert out is g["apple_price"] and out.value == 300
    assert g["price"].value == pytest.approx(220)  # the next node has not run again
    g.forward_node(1)
    assert g["price"].value == pytest.approx(330)
    g.backward()
    assert g["apple_num"].grad == pytest.approx(165) and g["apple"].grad == pytest.approx(2.2)


def test_forward_and_backward_give_the_books_numbers_as_before():
    g = G.apple_orange_graph()
    g.forward()
    g.backward()
    expected = {"apple_num": 110, "apple": 2.2, "orange": 3.3, "orange_num": 165, "tax": 650,
                "apple_price": 1.1, "orange_price": 1.1, "all_price": 1.1, "price": 1}
    assert {k: g[k].grad for k in expected} == pytest.approx(expected)

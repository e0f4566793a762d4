"""Computational-graph drawings: the numbers on every edge, DOT/SVG/PNG output, the CLI."""

from __future__ import annotations

import html
import math
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from layerwise import graph as G
from layerwise.errors import InputError, StateError
from layerwise.graph import Graph, format_value
from layerwise.models import Sequential, TwoLayerNet

SVG_NS = "{http://www.w3.org/2000/svg}"


# -- reading the DOT text back ------------------------------------------------------------------

def dot_edges(dot: str) -> list[tuple[str, str, str, str]]:
    """(from, to, value above, gradient below) for every drawn arrow, read from the DOT text.

    Plain nodes give their label; an edge's label node gives the two cells of its table; the
    two DOT edges through that label node give its ends."""
    labels = dict(re.findall(r"^\s*(\w+) \[shape=\w+, (?:fontsize=\d+, )?label=\"(.*?)\"\];", dot, re.M))
    cells = {
        m[0]: (html.unescape(m[1]), html.unescape(m[2]))
        for m in re.findall(
            r'^\s*(e\d+) \[.*?<TR><TD>(.*?)</TD></TR><HR/><TR><TD><FONT COLOR="[^"]+">(.*?)</FONT>',
            dot, re.M,
        )
    }
    tails = dict((e, t) for t, e in re.findall(r"^\s*(\w+) -> (e\d+):w", dot, re.M))
    heads = dict(re.findall(r"^\s*(e\d+):e -> (\w+);", dot, re.M))
    assert set(cells) == set(tails) == set(heads) and cells
    return [
        (labels[tails[e]], labels[heads[e]], *(s.replace("\xa0", "").strip() for s in cells[e]))
        for e in sorted(cells, key=lambda e: int(e[1:]))
    ]


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
    from layerwise.layers import SoftmaxWithLoss

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
    from layerwise.nodes import Mul

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


# -- rendering ------------------------------------------------------------------------------------

def svg_texts(svg: str) -> list[tuple[str, str | None]]:
    root = ET.fromstring(svg)
    assert root.tag == SVG_NS + "svg"
    return [("".join(t.itertext()).strip(), t.get("fill")) for t in root.iter(SVG_NS + "text")]


def test_svg_parses_and_shows_values_above_and_gradients_in_red():
    texts = svg_texts(G.apple_graph().to_svg())
    shown = [t for t, _ in texts]
    for value in ("apple", "apple_num", "tax", "price", "×", "100", "220"):
        assert value in shown
    red = {t for t, fill in texts if fill == G.GRAD_COLOUR}
    assert {"2.2", "110", "200", "1.1", "1"} <= red
    assert "220" not in red and "100" not in red


def test_svg_puts_gradients_below_values():
    root = ET.fromstring(G.apple_graph().to_svg())
    y = {}
    for t in root.iter(SVG_NS + "text"):
        y.setdefault("".join(t.itertext()).strip(), []).append(float(t.get("y")))
    # On the output arrow: 220 above, its gradient 1 below (SVG y grows downwards).
    assert min(y["1"]) > max(y["220"])


def test_png_renders():
    png = G.sigmoid_graph(0.5).to_png(dpi=72)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_save_by_extension(tmp_path):
    g = G.apple_orange_graph()
    assert g.save(tmp_path / "a.dot").read_text(encoding="utf-8") == g.to_dot()
    ET.parse(g.save(tmp_path / "a.svg"))
    assert g.save(tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InputError, match="format"):
        g.save(tmp_path / "a.jpeg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.dot", "a.png", "a.svg"]


def test_jupyter_repr_is_svg():
    g = G.apple_graph()
    svg = g._repr_svg_()
    assert isinstance(svg, str) and "<svg" in svg
    bundle = g._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"] and "Graph(" in bundle["text/plain"]


def test_without_graphviz_dot_still_works_and_svg_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(G.shutil, "which", lambda name: None)
    g = G.apple_graph()
    g.save(tmp_path / "apple.dot")
    with pytest.raises(G.GraphvizNotFoundError, match="apt-get install graphviz"):
        g.to_svg()
    with pytest.raises(FileNotFoundError):
        g.save(tmp_path / "apple.svg")
    assert not (tmp_path / "apple.svg").exists()
    assert g._repr_svg_() is None
    bundle = g._repr_mimebundle_()
    assert "image/svg+xml" not in bundle and "digraph" in bundle["text/plain"]


def test_graphviz_failure_is_reported():
    with pytest.raises(G.GraphvizError, match="syntax error"):
        G.render("digraph { a -> }", "svg")


# -- whole models ---------------------------------------------------------------------------------

def batch(n=20, d=784, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d), dtype=np.float32), rng.integers(0, classes, n)


def test_model_graph_shapes_without_data():
    net = TwoLayerNet(784, 50, 10, seed=0)
    dg = G.model_graph(net)
    dot = dg.to_dot()
    for text in ("(N, 784)", "(N, 50)", "(N, 10)", "W1", "(784, 50)", "b2", "(10,)",
                 "SoftmaxWithLoss", "ReLU", "784 → 50"):
        assert text in dot
    assert "‖∇‖ " not in dot and dg.loss is None
    assert dg.sample_shape == (784,) and dg.output_shape == (1, 10)


def test_model_graph_after_one_step_shows_loss_and_gradient_norms():
    net = TwoLayerNet(784, 30, 10, weight_init_std=0.1, seed=1)
    x, t = batch()
    dg = G.model_graph(net, x, t)
    # The same numbers straight from the model.
    grads = net.gradient(x, t)
    loss = net.loss(x, t)
    assert dg.loss == pytest.approx(loss, rel=1e-6)
    dot = dg.to_dot()
    assert f"L = {format_value(loss)}" in dot and "(20, 784)" in dot and "(20, 30)" in dot
    for name in ("W1", "b1", "W2", "b2"):
        norm = float(np.linalg.norm(grads[name].astype(np.float64)))
        assert norm > 0
        assert re.search(rf">{name}<.*?‖∇‖ {re.escape(format_value(norm))}<", dot)
    ET.fromstring(dg.to_svg())


def test_model_graph_of_a_sequential_names_parameters_like_the_model():
    from layerwise.layers import Affine, MeanSquaredError, Tanh

    rng = np.random.default_rng(0)
    model = Sequential(
        [Affine(rng.standard_normal((4, 3)), np.zeros(3)), Tanh(), Affine(rng.standard_normal((3, 2)), np.zeros(2))],
        MeanSquaredError(),
    )
    x, t = rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    dg = G.model_graph(model, x, t)
    assert [[p.name for p in b.params] for b in dg.boxes] == [["W1", "b1"], [], ["W2", "b2"]]
    assert dg.boxes[2].params[0].grad_norm == pytest.approx(np.linalg.norm(model.gradient(x, t)["W2"]))
    assert dg.loss == pytest.approx(model.loss(x, t))
    assert "(5, 2)" in dg.to_dot() and dg.rankdir == "LR"
    assert G.model_graph(model, input_shape=(4,)).input_shape == "(N, 4)"


def test_model_graph_jupyter_repr():
    assert "<svg" in G.model_graph(TwoLayerNet(8, 4, 3, seed=0))._repr_svg_()


# -- the command line -----------------------------------------------------------------------------

def cli(*args, check=True, env=None):
    return subprocess.run([sys.executable, "-m", "layerwise", "graph", *args], capture_output=True,
                          text=True, check=check, timeout=120, env=env)


def test_cli_prints_dot_to_stdout():
    out = cli("apple").stdout
    assert out.startswith("digraph") and out.rstrip().endswith("}")
    assert ("×", "price", "220", "1") in dot_edges(out)
    out = cli("sigmoid", "--x", "2").stdout
    assert ("x", "sigmoid", "2", format_value(0.10499358540350662)) in dot_edges(out)


def test_cli_writes_svg_png_and_dot(tmp_path):
    svg, png, dot = tmp_path / "ao.svg", tmp_path / "ao.png", tmp_path / "ao.dot"
    cli("apple-orange", "-o", str(svg))
    assert "715" in [t for t, _ in svg_texts(svg.read_text(encoding="utf-8"))]
    cli("apple-orange", "-o", str(png), "--dpi", "72")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = cli("apple-orange", "-o", str(dot))
    assert str(dot) in result.stdout and dot.read_text(encoding="utf-8") == cli("apple-orange").stdout


def test_cli_errors(tmp_path):
    result = cli("banana", check=False)
    assert result.returncode == 2 and "neither a ready-made graph" in result.stderr
    result = cli("apple", "--x", "2", check=False)
    assert result.returncode == 2 and "--x applies to the sigmoid graph only" in result.stderr
    # No Graphviz on PATH: DOT still works, SVG names the program and how to install it.
    env = {**os.environ, "PATH": str(tmp_path)}
    assert cli("apple", "-o", str(tmp_path / "a.dot"), env=env).returncode == 0
    result = cli("apple", "-o", str(tmp_path / "a.svg"), check=False, env=env)
    assert result.returncode == 2 and "`dot`" in result.stderr and "apt-get install graphviz" in result.stderr


def test_model_graph_of_conv_and_batchnorm_nets():
    from layerwise.models import MultiLayerNet, SimpleConvNet

    conv = SimpleConvNet(seed=0)
    dg = G.model_graph(conv)  # sample shape from the constructor's input_dim
    assert [b.out_shape for b in dg.boxes] == [
        "(N, 30, 24, 24)", "(N, 30, 24, 24)", "(N, 30, 12, 12)", "(N, 100)", "(N, 100)", "(N, 10)"]
    assert "(N, 1, 28, 28)" in dg.to_dot() and "kernel_size=5×5" in dg.to_dot()

    net = MultiLayerNet(12, [6, 6], 3, use_batchnorm=True, weight_decay_lambda=0.1, seed=0)
    before = {k: v.copy() for k, v in net.buffers.items()}
    x, t = batch(n=8, d=12, classes=3)
    dg = G.model_graph(net, x, t)
    # Drawing ran a training-mode forward, but the running statistics are as they were.
    assert before and all(np.array_equal(before[k], net.buffers[k]) for k in before)
    assert [p.name for p in dg.boxes[1].params] == ["gamma1", "beta1"]
    assert dg.rankdir == "TB" and "λ = 0.1" in dg.to_dot()
    ET.fromstring(dg.to_svg())


def test_cli_draws_a_model_file(tmp_path):
    from layerwise import io
    from layerwise.datasets import load_digits

    net = TwoLayerNet(64, 16, 10, weight_init_std=0.3, seed=3)
    path = io.save(net, tmp_path / "model.safetensors", state={"dataset": "digits", "input_shape": [64]})
    out = cli(str(path)).stdout  # no data: shapes for a batch of N
    assert "(N, 64)" in out and "(N, 16)" in out and "W2" in out and "‖∇‖" not in out

    svg = tmp_path / "model.svg"
    assert "wrote" in cli(str(path), "--batch", "20", "-o", str(svg)).stdout
    texts = [t for t, _ in svg_texts(svg.read_text(encoding="utf-8"))]
    _, (x, t) = load_digits()
    loss = net.loss(x[:20], t[:20])
    norm = np.linalg.norm(net.gradient(x[:20], t[:20])["W1"].astype(np.float64))
    assert f"L = {format_value(loss)}" in texts
    assert f"‖∇‖ {format_value(norm)}" in texts
    assert any("digits test images" in text for text in texts)

    # A file without training state: shapes from the constructor; random inputs on request.
    bare = io.save(net, tmp_path / "bare.safetensors")
    out = cli(str(bare), "--batch", "4", "--dataset", "random").stdout
    assert "(4, 64)" in out and "random inputs, seed 0" in out and "L = " in out
    png = tmp_path / "bare.png"
    cli(str(bare), "-o", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    result = cli(str(path), "--x", "1", check=False)
    assert result.returncode == 2 and "sigmoid graph only" in result.stderr
    result = cli(str(path), "--input-shape", "a,b", check=False)
    assert result.returncode == 2 and "--input-shape" in result.stderr
    not_a_model = tmp_path / "notes.txt"
    not_a_model.write_text("hello")
    result = cli(str(not_a_model), check=False)
    assert result.returncode == 2 and "notes.txt" in result.stderr

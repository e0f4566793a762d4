"""Whole networks drawn as their layers (layerwise.graph.model_graph): shapes, the loss and
each parameter's gradient norm."""

from __future__ import annotations

import re

import numpy as np
import pytest
from graph_pictures import svg_texts

from layerwise import graph as G
from layerwise.graph import format_value
from layerwise.layers import Affine, MeanSquaredError, Tanh
from layerwise.models import MultiLayerNet, Sequential, SimpleConvNet, TwoLayerNet


def batch(n=20, d=784, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d), dtype=np.float32), rng.integers(0, classes, n)


def test_model_graph_shapes_without_data():
    net = TwoLayerNet(784, 50, 10, seed=0)
    dg = G.model_graph(net)
    dot = dg.to_dot()
    for text in ("(N, 784)", "(N, 50)", "(N, 10)", "W1", "(784, 50)", "b2", "(10,)",
                 "SoftmaxWithLoss", "Relu", "784 → 50"):
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


def test_model_graph_of_a_sequential_names_parameters_like_the_model():
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


@pytest.mark.usefixtures("needs_dot")
def test_model_graph_jupyter_repr():
    assert "<svg" in G.model_graph(TwoLayerNet(8, 4, 3, seed=0))._repr_svg_()


def test_model_graph_of_conv_and_batchnorm_nets():
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


@pytest.mark.usefixtures("needs_dot")
@pytest.mark.parametrize("net", ["two-layer", "simple-convnet", "batchnorm-mlp"])
def test_model_graphs_render_to_svg(net):
    if net == "two-layer":
        dg = G.model_graph(TwoLayerNet(784, 30, 10, weight_init_std=0.1, seed=1), *batch())
    elif net == "simple-convnet":
        dg = G.model_graph(SimpleConvNet(seed=0))
    else:
        dg = G.model_graph(MultiLayerNet(12, [6, 6], 3, use_batchnorm=True, weight_decay_lambda=0.1, seed=0),
                           *batch(n=8, d=12, classes=3))
    texts = [t for t, _ in svg_texts(dg.to_svg())]
    assert "SoftmaxWithLoss" in texts
    if dg.loss is not None:
        assert any(text.startswith(f"L = {format_value(dg.loss)}") for text in texts)

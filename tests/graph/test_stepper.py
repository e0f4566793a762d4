"""Stepping a graph node by node (layerwise.graph.stepper): the book's numbers at every step,
steps out of order refused with a message, views of each node, the check against central
differences, and the graph of a real network equal to the model's own gradient."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from layerwise import graph as G
from layerwise.errors import InputError, StateError
from layerwise.graph.engine import Graph
from layerwise.graph.stepper import CheckRow, Stepper, backward_formula, layer_labels, network_graph
from layerwise.layers import Affine, Pooling, Relu, SoftmaxWithLoss
from layerwise.models import MultiLayerNet, SimpleConvNet, TwoLayerNet
from layerwise.nodes import Mul


def affine(n_in, n_out):
    return Affine(np.ones((n_in, n_out)), np.zeros(n_out))


# -- the apple graph, one step at a time --------------------------------------------------------


def test_apple_forward_steps_show_200_then_220():
    s = Stepper(G.apple_graph())
    assert s.phase == "forward" and s.n_nodes == 2 and s.current is None
    # The graph was run when it was built; a new Stepper starts with no gradients.
    assert all(v.grad is None for v in s.graph.vars.values())
    assert not s.view(0).forward_done and s.view(0).output is None

    assert s.step_forward() == 0
    v0 = s.view(0)
    assert v0.forward_done and not v0.backward_done
    assert v0.output == pytest.approx(200) and v0.caches == {"x": 100, "y": 2}
    assert v0.kind == "Mul" and v0.inputs == ["apple", "apple_num"] and v0.output_name == "apple_price"
    assert v0.formula == "dx = dout · y,  dy = dout · x"
    assert not s.view(1).forward_done and s.view(1).output is None  # not run yet

    assert s.step_forward() == 1
    assert s.view("price").output == pytest.approx(220) and s.current == 1
    assert s.phase == "backward"


def test_apple_backward_steps_send_the_books_gradients():
    s = Stepper(G.apple_graph())
    s.step_forward()
    s.step_forward()
    assert s.view(1).dout is None  # nothing has come back yet

    assert s.step_backward() == 1
    v1 = s.view(1)
    assert v1.backward_done and v1.dout == 1
    (dx_name, dx_to, dx), (dy_name, dy_to, dy) = v1.returns
    assert (dx_name, dx_to, dy_name, dy_to) == ("dx", "apple_price", "dy", "tax")
    assert dx == pytest.approx(1.1) and dy == pytest.approx(200)
    assert not s.view(0).backward_done and s.view(0).returns == []

    assert s.step_backward() == 0
    v0 = s.view(0)
    assert v0.dout == pytest.approx(1.1)
    assert [(n, to) for n, to, _ in v0.returns] == [("dx", "apple"), ("dy", "apple_num")]
    assert v0.returns[0][2] == pytest.approx(2.2) and v0.returns[1][2] == pytest.approx(110)
    assert s.phase == "done" and s.current == 0
    g = s.graph
    assert g["apple"].grad == pytest.approx(2.2) and g["apple_num"].grad == pytest.approx(110)
    assert g["tax"].grad == pytest.approx(200)


def test_steps_out_of_order_are_refused_with_a_message():
    s = Stepper(G.apple_graph())
    with pytest.raises(StateError, match=r"whole forward pass first: 0 of 2 nodes"):
        s.step_backward()
    s.step_forward()
    with pytest.raises(StateError, match=r"1 of 2 nodes have run forward"):
        s.step_backward()
    with pytest.raises(StateError, match=r"check needs the finished backward pass"):
        s.check()
    s.step_forward()
    with pytest.raises(StateError, match=r"forward pass is complete \(2 of 2 nodes\); step backward next"):
        s.step_forward()
    s.step_backward()
    with pytest.raises(StateError, match=r"2 of 2 nodes have run forward, 1 backward"):
        s.check()
    s.step_backward()
    with pytest.raises(StateError, match="backward pass is complete; reset"):
        s.step_backward()
    with pytest.raises(StateError, match="reset to start again"):
        s.step_forward()
    # A refused step changes nothing.
    assert s.phase == "done" and s.forward_done == 2 and s.backward_done == 2


def test_reset_starts_again_and_gives_the_same_numbers():
    s = Stepper(G.apple_orange_graph())
    s.run()
    first = {name: v.grad for name, v in s.graph.vars.items()}
    s.reset()
    assert s.phase == "forward" and s.forward_done == 0 and s.backward_done == 0 and s.current is None
    assert all(v.grad is None for v in s.graph.vars.values())
    assert all(not v.forward_done and not v.backward_done for v in s.views())
    s.run()
    assert {name: v.grad for name, v in s.graph.vars.items()} == first
    assert s.graph["price"].value == pytest.approx(715)
    assert s.graph["tax"].grad == pytest.approx(650)


def test_reset_in_the_middle_of_a_pass():
    s = Stepper(G.apple_graph())
    s.step_forward()
    s.step_forward()
    s.step_backward()
    s.reset()
    with pytest.raises(StateError):
        s.step_backward()
    s.run()
    assert s.graph["apple"].grad == pytest.approx(2.2)


def test_view_of_an_unknown_node_names_the_nodes():
    s = Stepper(G.apple_graph())
    for key in ("nope", 2, -1, True, 1.0):
        with pytest.raises(InputError, match=r"its nodes are 0\.\.1 \(apple_price, price\)"):
            s.view(key)
    assert s.view("apple_price").index == 0 and s.view(1).index == 1
    assert s.node_index("×") == 0  # a label finds the first node that has it


def test_an_empty_graph_is_refused():
    with pytest.raises(InputError, match="no nodes"):
        Stepper(Graph())


def test_repr_says_where_it_is():
    s = Stepper(G.apple_graph())
    s.step_forward()
    assert "forward" in repr(s) and "1 of 2 nodes have run forward" in repr(s)


def test_backward_formulas_follow_the_class_hierarchy():
    assert backward_formula(Mul()) == "dx = dout · y,  dy = dout · x"
    assert backward_formula(Relu()).startswith("dx = dout where x > 0")
    assert "dW = xᵀ · dout" in backward_formula(affine(2, 3))

    class MyMul(Mul):
        pass

    assert backward_formula(MyMul()) == backward_formula(Mul())
    assert backward_formula(object()) == ""


def test_layer_labels_count_each_kind():
    layers = [affine(2, 3), Relu(), affine(3, 2), Relu()]
    assert layer_labels(layers) == ["Affine1", "Relu1", "Affine2", "Relu2"]


# -- the check against central differences -------------------------------------------------------


@pytest.mark.parametrize("name", ["apple", "apple-orange", "sigmoid"])
def test_check_rows_of_the_book_graphs_are_tiny(name):
    s = Stepper(G.example(name, 0.7))
    s.run()
    before = {n: (v.value, v.grad) for n, v in s.graph.vars.items()}
    rows = s.check()
    assert rows and all(isinstance(r, CheckRow) for r in rows)
    for r in rows:
        assert r.relative_error < 1e-7, r
        assert r.checked == r.size == 1
        assert float(r.numerical) == pytest.approx(float(r.analytic), rel=1e-6)
    # Every value that received a gradient is checked, and the check leaves the values as they were.
    checked = {r.name for r in rows}
    assert checked == {n for n, v in s.graph.vars.items() if v.grad is not None and v not in s.graph.outputs}
    after = {n: (v.value, v.grad) for n, v in s.graph.vars.items()}
    assert after == before


def test_sigmoid_graph_decomposed_and_fused_gradients_agree():
    for x in (-3.0, 0.0, 0.7, 5.0):
        s = Stepper(G.sigmoid_graph(x))
        s.run()
        y = 1 / (1 + math.exp(-x))
        decomposed, fused = s.graph["x"].grad, s.graph["x_fused"].grad
        assert float(decomposed) == pytest.approx(y * (1 - y), rel=1e-12)
        assert float(fused) == pytest.approx(float(decomposed), rel=1e-12)
        # The last node is the fused Sigmoid layer; it keeps its output as `out`.
        last = s.view(s.n_nodes - 1)
        assert last.kind == "Sigmoid" and float(last.caches["out"]) == pytest.approx(y)


@given(apple=st.floats(0.01, 1e4), num=st.floats(0.01, 1e3), tax=st.floats(0.5, 2.0))
def test_apple_graph_backward_is_the_closed_form_products(apple, num, tax):
    s = Stepper(G.apple_graph(apple, num, tax))
    while s.phase == "forward":
        s.step_forward()
        assert s.view(s.current).output is not None
    assert s.graph["price"].value == pytest.approx(apple * num * tax, rel=1e-12)
    s.step_backward()
    (_, _, d_apple_price), (_, _, d_tax) = s.view("price").returns
    assert d_apple_price == pytest.approx(tax, rel=1e-12) and d_tax == pytest.approx(apple * num, rel=1e-12)
    s.step_backward()
    g = s.graph
    assert g["apple"].grad == pytest.approx(num * tax, rel=1e-12)
    assert g["apple_num"].grad == pytest.approx(apple * tax, rel=1e-12)
    assert g["tax"].grad == pytest.approx(apple * num, rel=1e-12)


@given(st.lists(st.sampled_from(["forward", "backward", "reset"]), max_size=12))
def test_stepping_order_invariants(moves):
    s = Stepper(G.apple_orange_graph())
    n = s.n_nodes
    for move in moves:
        before = (s.forward_done, s.backward_done)
        try:
            if move == "forward":
                assert s.step_forward() == before[0]
            elif move == "backward":
                assert s.step_backward() == n - 1 - before[1]
            else:
                s.reset()
        except StateError:
            assert (s.forward_done, s.backward_done) == before  # a refused step changes nothing
        # Backward starts only once forward is complete, and goes from the last node down.
        assert 0 <= s.forward_done <= n and 0 <= s.backward_done <= n
        assert s.backward_done == 0 or s.forward_done == n
        views = s.views()
        assert [v.forward_done for v in views] == [i < s.forward_done for i in range(n)]
        assert [v.backward_done for v in views] == [i >= n - s.backward_done for i in range(n)]
        for v in views:
            assert (v.dout is not None) == v.backward_done


# -- a real network ------------------------------------------------------------------------------


def small_batch(n=5, d=12, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, classes, n)


def test_network_graph_equals_model_gradient():
    net = TwoLayerNet(12, 7, 4, weight_init_std=0.5, seed=0)
    x, t = small_batch()
    before = copy.deepcopy(net.state_dict())
    g = network_graph(net, x, t)
    assert [op.label for op in g.ops] == ["Affine1", "Relu1", "Affine2", "SoftmaxWithLoss"]
    s = Stepper(g)
    s.run()
    grads = net.gradient(x, t)
    for label, suffix in (("Affine1", "1"), ("Affine2", "2")):
        v = s.view(label)
        np.testing.assert_allclose(v.param_grads["dW"], grads["W" + suffix], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(v.param_grads["db"], grads["b" + suffix], rtol=1e-12, atol=1e-12)
    assert float(g["loss"].value) == pytest.approx(net.loss(x, t), rel=1e-12)
    # The input gradient (a model's first layer normally skips it) equals central differences.
    def loss_of(v):
        return net.loss(v, t)

    from layerwise.gradcheck import numerical_gradient

    numeric = numerical_gradient(loss_of, x.copy())
    np.testing.assert_allclose(g["x"].grad, numeric, rtol=1e-6, atol=1e-9)
    # The model itself is not touched.
    after = net.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)


def test_network_graph_of_a_float32_model_is_float64_and_caches_show():
    net = TwoLayerNet(12, 7, 4, weight_init_std=0.5, seed=0, dtype=np.float32)
    x, t = small_batch()
    s = Stepper(network_graph(net, x.astype(np.float32), t))
    s.run()
    v = s.view("Affine1")
    assert v.output.dtype == np.float64 and v.param_grads["dW"].dtype == np.float64
    assert set(v.caches) == {"x"} and v.caches["x"].shape == (5, 12)
    assert "mask" in s.view("Relu1").caches
    loss = s.view("SoftmaxWithLoss")
    assert set(loss.caches) >= {"y", "t"} and loss.returns[1] == ("dy", "t", None)  # labels get no gradient
    assert net.params["W1"].dtype == np.float32


def test_check_on_a_network_graph_spot_checks_large_arrays():
    net = TwoLayerNet(12, 7, 4, weight_init_std=0.5, seed=0)
    x, t = small_batch()
    s = Stepper(network_graph(net, x, t))
    s.run()
    grads_before = {k: np.copy(v) for k, v in s.view("Affine1").param_grads.items()}
    rows = {r.name: r for r in s.check(max_elements=40)}
    assert set(rows) == {"x", "Affine1", "Relu1", "Affine2", "Affine1.W", "Affine1.b", "Affine2.W", "Affine2.b"}
    for r in rows.values():
        assert r.relative_error < 1e-7, (r.name, r.relative_error)
    assert rows["Affine1.W"].size == 84 and rows["Affine1.W"].checked == 40  # a spot check
    assert rows["x"].size == 60 and rows["x"].checked == 40
    assert rows["Affine2.W"].checked == rows["Affine2.W"].size == 28
    # Unchecked positions of a spot check stay 0; checked ones match.
    numerical = rows["Affine1.W"].numerical
    assert np.count_nonzero(numerical) <= 40
    # The check leaves the graph as the backward pass left it.
    for k, v in s.view("Affine1").param_grads.items():
        np.testing.assert_array_equal(v, grads_before[k])
    np.testing.assert_array_equal(s.graph["Affine1"].value, x @ net.params["W1"] + net.params["b1"])


def test_check_on_a_network_with_dropout_reuses_the_masks():
    net = MultiLayerNet(16, [10, 10], 4, use_dropout=True, dropout_ration=0.3, weight_init_std=0.5, seed=0)
    x, t = small_batch(3, 16, 4, seed=1)
    s = Stepper(network_graph(net, x, t))
    s.run()
    dropouts = [v.index for v in s.views() if v.kind == "Dropout"]
    assert len(dropouts) == 2
    masks = [np.copy(s.view(i).caches["mask"]) for i in dropouts]
    loss = float(s.graph["loss"].value)
    rows = s.check()
    assert max(r.relative_error for r in rows) < 1e-6, [(r.name, r.relative_error) for r in rows]
    # The values and masks after the check are those the backward pass used.
    for i, mask in zip(dropouts, masks, strict=True):
        np.testing.assert_array_equal(s.view(i).caches["mask"], mask)
    assert float(s.graph["loss"].value) == loss


def test_check_on_a_convnet_graph():
    net = SimpleConvNet((1, 6, 6), {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1}, hidden_size=5,
                        output_size=3, weight_init_std=0.3, seed=0)
    rng = np.random.default_rng(0)
    x, t = rng.random((2, 1, 6, 6)), np.array([0, 2])
    s = Stepper(network_graph(net, x, t))
    s.run()
    grads = copy.deepcopy(net).astype(np.float64).gradient(x, t)
    np.testing.assert_allclose(s.view("Convolution1").param_grads["dW"], grads["W1"], rtol=1e-10, atol=1e-12)
    rows = {r.name: r for r in s.check(max_elements=16)}
    # Relu1 feeds max pooling, whose windows of ReLU zeros are ties: there the function has a
    # kink, and central differences split the gradient between the tied inputs while backward
    # sends it to one (arg_max). Every other value and parameter is smooth at this point.
    del rows["Relu1"]
    assert {"x", "Convolution1", "Pooling1", "Convolution1.W", "Convolution1.b"} <= set(rows)
    for r in rows.values():
        assert r.relative_error < 1e-6, (r.name, r.relative_error)


def test_network_graph_needs_a_loss_layer():
    with pytest.raises(InputError, match="no loss_layer"):
        network_graph([affine(2, 2)], np.ones((1, 2)), np.array([0]))


def test_check_leaves_out_elements_at_a_kink_and_says_so():
    # ReLU turns a window of negatives into tied zeros: max pooling has no derivative there, so
    # the row of ReLU's output disagrees with central differences and says why.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 1, 4, 4))
    x[0, 0, :2, :2] = -1.0  # one window all negative: four tied zeros after ReLU
    W = rng.normal(size=(4, 3))
    g = Graph("relu, pooling")
    h = g.apply(Relu(), g.input("x", x), name="relu")
    h = g.apply(Pooling(2, 2, 2), h, name="pool")
    h = g.apply(Affine(W, np.zeros(3)), h, name="affine")
    g.apply(SoftmaxWithLoss(), h, g.input("t", np.array([1])), name="loss")
    stepper = Stepper(g)
    stepper.run()
    rows = {r.name: r for r in stepper.check()}
    tied = rows["relu"]
    # The tied zeros' ±h pairs change pooling's arg_max: they are left out, and said so.
    assert tied.kinks >= 1 and "max-pooling window" in tied.note
    assert tied.agrees and tied.relative_error < 1e-7
    assert rows["pool"].agrees and rows["pool"].kinks == 0 and rows["pool"].note == ""
    # The input x gets no gradient through the negative window (ReLU's mask), and x's other
    # entries are away from every kink: it agrees.
    assert rows["x"].agrees
    # A true zero gradient against round-off noise agrees, and says so.
    zero = CheckRow("z", np.zeros(3), np.full(3, 1e-13), 1.0, 3, 3, scale=1e-13)
    assert zero.agrees

"""Computational-graph nodes: the book's shopping examples and Sigmoid taken apart."""

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from layerwise import Add, AddConst, AddLayer, Exp, Mul, MulConst, MulLayer, Reciprocal, Sigmoid
from layerwise.errors import StateError
from layerwise.gradcheck import numerical_gradient, relative_error


def test_book_names_are_the_nodes():
    assert MulLayer is Mul and AddLayer is Add


def test_apple_example():
    apple, apple_num, tax = 100, 2, 1.1
    mul_apple, mul_tax = MulLayer(), MulLayer()
    apple_price = mul_apple.forward(apple, apple_num)
    price = mul_tax.forward(apple_price, tax)
    assert price == pytest.approx(220)
    dapple_price, dtax = mul_tax.backward(1)
    dapple, dapple_num = mul_apple.backward(dapple_price)
    assert (dapple, dapple_num, dtax) == pytest.approx((2.2, 110, 200))
    assert all(isinstance(v, float | int) for v in (dapple, dapple_num, dtax))


def test_apple_orange_example():
    apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1
    mul_apple, mul_orange, add, mul_tax = MulLayer(), MulLayer(), AddLayer(), MulLayer()
    all_price = add.forward(mul_apple.forward(apple, apple_num), mul_orange.forward(orange, orange_num))
    price = mul_tax.forward(all_price, tax)
    assert price == pytest.approx(715)
    dall_price, dtax = mul_tax.backward(1)
    dapple_price, dorange_price = add.backward(dall_price)
    dorange, dorange_num = mul_orange.backward(dorange_price)
    dapple, dapple_num = mul_apple.backward(dapple_price)
    assert (dapple_num, dapple, dorange, dorange_num, dtax) == pytest.approx((110, 2.2, 3.3, 165, 650))


def sigmoid_from_nodes(x):
    nodes = [MulConst(-1), Exp(), AddConst(1), Reciprocal()]
    y = x
    for node in nodes:
        y = node.forward(y)
    return y, nodes


def test_sigmoid_from_four_nodes_equals_fused_sigmoid():
    x = np.linspace(-30, 30, 2001)
    dout = np.random.default_rng(0).standard_normal(x.shape)
    y, nodes = sigmoid_from_nodes(x)
    g = dout
    for node in reversed(nodes):
        g = node.backward(g)
    fused = Sigmoid()
    y_fused = fused.forward(x)
    np.testing.assert_allclose(y, y_fused, rtol=1e-12, atol=0)
    # dL/dy * y^2 * exp(-x) == dL/dy * y * (1 - y). Where y rounds to within an ulp of 1
    # (large x), 1 - y cancels, so agreement there is absolute (1e-15), elsewhere relative 1e-12.
    fused_grad = fused.backward(dout)
    np.testing.assert_allclose(dout * y**2 * np.exp(-x), fused_grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(g, fused_grad, rtol=1e-12, atol=1e-15)
    core = np.abs(x) < 5
    np.testing.assert_allclose(g[core], fused_grad[core], rtol=1e-12, atol=0)


@given(
    arrays(np.float64, array_shapes(min_dims=1, max_dims=3, max_side=4), elements=st.floats(-3, 3)),
    st.sampled_from([Mul, Add]),
)
# Regressions: a gradient at the bottom of float64's range (hypothesis found x = 5e-324: Mul's
# dy is 5e-324, while the central difference of x·y underflows to 0, a "relative error" of 1),
# and a sum that cancels (0.1 + 0.2 - 0.3 is 5.6e-17, below the difference's rounding).
@example(np.array([5e-324]), Mul)
@example(np.array([[0.1], [0.2], [-0.3]]), Mul)
def test_binary_nodes_broadcast_gradient_sums_back(x, node_cls):
    y = np.random.default_rng(1).standard_normal(x.shape[-1:])  # broadcast along leading axes
    node = node_cls()
    out = node.forward(x, y)
    dout = np.ones_like(out)
    dx, dy = node.backward(dout)
    assert dx.shape == x.shape and dy.shape == y.shape
    yy = y.copy()
    num_dy = numerical_gradient(lambda v: float(np.sum(node_cls().forward(x, v))), yy)
    # dy sums dout·x (Mul) or dout (Add) over the broadcast rows: the error is relative to the
    # size of what is summed, and at least 1e-7 absolute, as the difference's rounding is.
    terms = np.abs(x if node_cls is Mul else np.ones_like(x)).reshape(-1, x.shape[-1]).sum(axis=0)
    assert np.all(np.abs(dy - num_dy) <= 1e-7 * np.maximum(terms, 1.0)), (dy, num_dy)
    if np.abs(dy).min() >= 1e-3:  # the library's own measure, where nothing cancels or underflows
        assert relative_error(dy, num_dy) < 1e-7


def test_binary_node_with_scalar_and_array():
    node = Mul()
    out = node.forward(np.arange(3.0), 2.0)
    dx, dy = node.backward(np.ones(3))
    np.testing.assert_array_equal(out, [0, 2, 4])
    np.testing.assert_array_equal(dx, [2, 2, 2])
    assert dy == 3.0 and isinstance(dy, float)


@pytest.mark.parametrize("node", [Exp(), Reciprocal(), MulConst(-1), AddConst(1)])
def test_unary_nodes_gradcheck(node):
    x = np.random.default_rng(2).uniform(0.5, 2.0, size=(3, 4))
    node.forward(x)
    dout = np.random.default_rng(3).standard_normal(x.shape)
    analytic = node.backward(dout)
    fresh = type(node)(node.c) if hasattr(node, "c") else type(node)()
    numerical = numerical_gradient(lambda v: float(np.sum(fresh.forward(v) * dout)), x.copy())
    assert relative_error(analytic, numerical) < 1e-7


def test_nodes_do_not_mutate_dout():
    dout = np.array([1.0, -2.0, 3.0])
    for node in (Mul(), Add()):
        node.forward(np.ones(3), np.full(3, 2.0))
        dx, dy = node.backward(dout)
        dx += 100
        dy += 100
        np.testing.assert_array_equal(dout, [1.0, -2.0, 3.0])


@pytest.mark.parametrize("node", [Mul(), Add(), Exp(), Reciprocal(), MulConst(2), AddConst(1)])
def test_backward_before_forward(node):
    with pytest.raises(StateError, match="before forward"):
        node.backward(1.0)

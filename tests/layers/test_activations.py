"""Activation layers: the book's numbers, the contract, gradient checks."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import layerwise as lw
from layerwise.errors import InputError, StateError
from layerwise.gradcheck import away_from_zero, check_layer

UNARY = [lw.ReLU, lw.Sigmoid, lw.Tanh, lw.Softmax, lw.Identity, lambda: lw.LeakyReLU(0.1)]


def test_readme_relu_example():
    x = np.array([[1.0, -0.5], [-2.0, 3.0]])
    relu = lw.Relu()
    out = relu.forward(x)
    np.testing.assert_array_equal(out, [[1, 0], [0, 3]])
    np.testing.assert_array_equal(relu.mask, [[False, True], [True, False]])
    dout = np.array([[-0.1, 4.0], [1.3, -1.1]])
    dx = relu.backward(dout)
    np.testing.assert_array_equal(dx, [[-0.1, 0], [0, -1.1]])
    np.testing.assert_array_equal(dout, [[-0.1, 4.0], [1.3, -1.1]])  # the book zeroes dout here


def test_relu_is_relu():
    assert lw.Relu is lw.ReLU


@pytest.mark.parametrize("make", UNARY)
@given(shape=array_shapes(min_dims=2, max_dims=3, max_side=5), seed=st.integers(0, 2**32 - 1))
def test_unary_layers_gradcheck(make, shape, seed):
    rng = np.random.default_rng(seed)
    errors = check_layer(make(), away_from_zero(rng, shape), seed=seed)
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("make", [*UNARY, lw.Flatten])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept_and_nothing_is_mutated(make, dtype):
    rng = np.random.default_rng(0)
    layer = make()
    x = rng.standard_normal((3, 4)).astype(dtype)
    x_before = x.copy()
    out = layer.forward(x)
    out_before = out.copy()
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout_before = dout.copy()
    dx = layer.backward(dout)
    assert out.dtype == dtype and dx.dtype == dtype
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(out, out_before)
    np.testing.assert_array_equal(dout, dout_before)


def test_sigmoid_extremes_are_finite_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (np.float32, np.float64):
            s = lw.Sigmoid()
            out = s.forward(np.array([-1000.0, 0.0, 1000.0], dtype=dtype))
            np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])
            assert np.all(np.isfinite(s.backward(np.ones(3, dtype=dtype))))


def test_softmax_layer_matches_functional():
    x = np.random.default_rng(0).standard_normal((2, 5))
    np.testing.assert_array_equal(lw.Softmax().forward(x), lw.functional.softmax(x))


@pytest.mark.parametrize("make", [*UNARY, lw.Flatten, lambda: lw.Affine(np.zeros((2, 2)), np.zeros(2)),
                                  lw.SoftmaxWithLoss, lw.MeanSquaredError])
def test_backward_before_forward_is_a_clear_error(make):
    layer = make()
    with pytest.raises(StateError, match="backward called before forward"):
        layer.backward(np.ones((2, 2)))


def test_complex_input_is_refused_by_name():
    with pytest.raises(InputError, match=r"Relu.*complex"):
        lw.ReLU().forward(np.ones(3, dtype=complex))


def test_ragged_input_is_a_named_error():
    with pytest.raises(InputError, match="Relu"):
        lw.ReLU().forward([[1.0, 2.0], [1.0, 2.0, 3.0]])

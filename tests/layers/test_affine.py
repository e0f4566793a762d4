"""Affine: the book's attributes, shapes, dtype, gradient checks."""


import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes

import layerwise as lw
from layerwise.errors import ShapeError
from layerwise.gradcheck import check_layer


@given(
    n=st.integers(1, 4), extra=array_shapes(min_dims=1, max_dims=3, max_side=4),
    out=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
)
def test_affine_gradcheck_any_rank(n, extra, out, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *extra))
    layer = lw.Affine(rng.standard_normal((int(np.prod(extra)), out)), rng.standard_normal(out))
    errors = check_layer(layer, x, seed=seed)
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < 1e-7, errors


def test_affine_book_attributes_are_params():
    W, b = np.ones((3, 2)), np.zeros(2)
    layer = lw.Affine(W, b)
    assert layer.W is layer.params["W"] and layer.b is layer.params["b"]
    layer.forward(np.ones((4, 3)))
    layer.backward(np.ones((4, 2)))
    assert layer.dW is layer.grads["W"] and layer.db is layer.grads["b"]
    np.testing.assert_array_equal(layer.dW, np.full((3, 2), 4.0))
    np.testing.assert_array_equal(layer.db, [4.0, 4.0])


def test_affine_restores_input_shape():
    layer = lw.Affine(np.ones((12, 2)), np.zeros(2))
    x = np.ones((5, 3, 2, 2))
    assert layer.forward(x).shape == (5, 2)
    assert layer.backward(np.ones((5, 2))).shape == x.shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_affine_and_loss_keep_dtype(dtype):
    rng = np.random.default_rng(0)
    affine = lw.Affine(rng.standard_normal((4, 3)).astype(dtype), np.zeros(3, dtype=dtype))
    loss = lw.SoftmaxWithLoss()
    x = rng.standard_normal((5, 4)).astype(dtype)
    scores = affine.forward(x)
    loss.forward(scores, np.array([0, 1, 2, 0, 1]))
    dscores = loss.backward(np.float64(1.0))
    dx = affine.backward(dscores)
    assert scores.dtype == dscores.dtype == dx.dtype == affine.dW.dtype == affine.db.dtype == dtype


def test_affine_shape_error_names_layer_and_shapes():
    layer = lw.Affine(np.zeros((784, 50)), np.zeros(50))
    with pytest.raises(ShapeError) as info:
        layer.forward(np.zeros((2, 5)))
    message = str(info.value)
    assert "Affine" in message and "(2, 5)" in message and "(784, 50)" in message


def test_affine_rejects_bad_construction():
    with pytest.raises(ShapeError, match="b has shape"):
        lw.Affine(np.zeros((3, 2)), np.zeros(3))

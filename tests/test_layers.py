"""Activation, Affine and loss layers: the book's numbers, the contract, gradient checks."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import layerwise as lw
from layerwise.errors import InputError, ShapeError, StateError
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


@given(n=st.integers(1, 6), c=st.integers(2, 6), scale=st.sampled_from([0.1, 1.0, 3.0]),
       onehot=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_softmax_with_loss_gradcheck(n, c, scale, onehot, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c)) * scale
    t = rng.integers(0, c, n)
    if onehot:
        t = np.eye(c)[t]
    assert max(check_layer(lw.SoftmaxWithLoss(), x, t).values()) < 1e-7


def test_mse_gradcheck():
    rng = np.random.default_rng(0)
    errors = check_layer(lw.MeanSquaredError(), rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))
    assert errors["x"] < 1e-7


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


def test_loss_backward_does_not_mutate_its_output():
    loss = lw.SoftmaxWithLoss()
    loss.forward(np.array([[1.0, 2.0, 3.0]]), np.array([2]))
    y_before = loss.y.copy()
    loss.backward()
    np.testing.assert_array_equal(loss.y, y_before)


def test_sigmoid_extremes_are_finite_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for dtype in (np.float32, np.float64):
            s = lw.Sigmoid()
            out = s.forward(np.array([-1000.0, 0.0, 1000.0], dtype=dtype))
            np.testing.assert_array_equal(out, [0.0, 0.5, 1.0])
            assert np.all(np.isfinite(s.backward(np.ones(3, dtype=dtype))))


@given(arrays(np.float64, (3, 4), elements=st.floats(-1e4, 1e4)), st.integers(0, 3))
def test_softmax_with_loss_is_finite_for_huge_logits(x, label):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss = lw.SoftmaxWithLoss()
        value = loss.forward(x, np.full(3, label))
        dx = loss.backward()
    assert np.isfinite(value) and np.all(np.isfinite(dx))


def test_softmax_with_loss_exact_beyond_the_books_cap():
    # Wrong class by a margin of 1e4: the true loss is 1e4; the book's log(y + 1e-7) says 16.1.
    loss = lw.SoftmaxWithLoss()
    value = loss.forward(np.array([[1e4, 0.0]]), np.array([1]))
    assert value == pytest.approx(1e4, rel=1e-12)
    np.testing.assert_allclose(loss.backward(), [[1.0, -1.0]])


def test_softmax_with_loss_backward_scales_by_dout():
    loss = lw.SoftmaxWithLoss()
    x, t = np.array([[1.0, 2.0], [0.5, -1.0]]), np.array([0, 1])
    loss.forward(x, t)
    np.testing.assert_allclose(loss.backward(3.0), 3.0 * loss.backward(1.0))


def test_indices_and_onehot_agree_even_when_batch_equals_classes():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 3))
    t = np.array([2, 0, 1])
    a, b = lw.SoftmaxWithLoss(), lw.SoftmaxWithLoss()
    assert a.forward(x, t) == pytest.approx(b.forward(x, np.eye(3)[t]), rel=1e-15)
    np.testing.assert_allclose(a.backward(), b.backward(), rtol=1e-15)


def test_softmax_layer_matches_functional():
    x = np.random.default_rng(0).standard_normal((2, 5))
    np.testing.assert_array_equal(lw.Softmax().forward(x), lw.functional.softmax(x))


@pytest.mark.parametrize(
    ("x", "t", "error", "words"),
    [
        (np.zeros((4, 3)), np.zeros(5, dtype=int), ShapeError, ["SoftmaxWithLoss", "5 labels", "(4, 3)"]),
        (np.zeros((4, 3)), np.array([0, 1, 3, 0]), InputError, ["label 3", "3 classes"]),
        (np.zeros((4, 3)), np.array([0, -1, 2, 0]), InputError, ["label -1"]),
        (np.zeros((4, 3)), np.zeros((4, 5)), ShapeError, ["one-hot", "(4, 5)", "(4, 3)"]),
        (np.zeros((4, 3)), np.array([0.5, 1, 2, 0]), InputError, ["whole numbers"]),
        (np.zeros((0, 3)), np.zeros(0, dtype=int), InputError, ["empty batch"]),
    ],
)
def test_loss_label_errors(x, t, error, words):
    with pytest.raises(error) as info:
        lw.SoftmaxWithLoss().forward(x, t)
    for word in words:
        assert word in str(info.value)


def test_affine_shape_error_names_layer_and_shapes():
    layer = lw.Affine(np.zeros((784, 50)), np.zeros(50))
    with pytest.raises(ShapeError) as info:
        layer.forward(np.zeros((2, 5)))
    message = str(info.value)
    assert "Affine" in message and "(2, 5)" in message and "(784, 50)" in message


def test_affine_rejects_bad_construction():
    with pytest.raises(ShapeError, match="b has shape"):
        lw.Affine(np.zeros((3, 2)), np.zeros(3))


@pytest.mark.parametrize("make", [*UNARY, lw.Flatten, lambda: lw.Affine(np.zeros((2, 2)), np.zeros(2)),
                                  lw.SoftmaxWithLoss, lw.MeanSquaredError])
def test_backward_before_forward_is_a_clear_error(make):
    layer = make()
    with pytest.raises(StateError, match="backward called before forward"):
        layer.backward(np.ones((2, 2)))


def test_complex_input_is_refused_by_name():
    with pytest.raises(InputError, match=r"Relu.*complex"):
        lw.ReLU().forward(np.ones(3, dtype=complex))


def test_boolean_labels_are_refused_not_used_as_masks():
    # Regression: boolean labels reached fancy indexing and raised IndexError.
    with pytest.raises(InputError, match="integers"):
        lw.SoftmaxWithLoss().forward(np.zeros((2, 2)), np.array([True, False]))


def test_ragged_input_is_a_named_error():
    with pytest.raises(InputError, match="Relu"):
        lw.ReLU().forward([[1.0, 2.0], [1.0, 2.0, 3.0]])


def test_softmax_with_loss_takes_a_column_of_class_indices():
    # The book's ch07 gradient check passes labels shaped (N, 1); they are class indices.
    x = np.random.default_rng(0).standard_normal((3, 5))
    column, flat = lw.SoftmaxWithLoss(), lw.SoftmaxWithLoss()
    assert column.forward(x, np.array([[1], [4], [0]])) == flat.forward(x, np.array([1, 4, 0]))
    np.testing.assert_array_equal(column.backward(), flat.backward())
    # With one class an (N, 1) array is one-hot, as before.
    one = lw.SoftmaxWithLoss()
    assert one.forward(np.zeros((2, 1)), np.ones((2, 1))) == 0.0


def test_float64_one_hot_labels_keep_a_float32_loss_float32():
    # load_mnist's one-hot labels are float64 as in the book; a float32 net stays float32.
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    layer = lw.SoftmaxWithLoss()
    layer.forward(x, np.eye(3)[[0, 1, 2, 0]])
    assert layer.backward().dtype == np.float32

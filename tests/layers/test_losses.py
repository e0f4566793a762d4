"""Loss layers: SoftmaxWithLoss and MeanSquaredError, labels, exact losses, gradient checks."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import layerwise as lw
from layerwise.errors import InputError, ShapeError
from layerwise.gradcheck import check_layer


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


def test_loss_backward_does_not_mutate_its_output():
    loss = lw.SoftmaxWithLoss()
    loss.forward(np.array([[1.0, 2.0, 3.0]]), np.array([2]))
    y_before = loss.y.copy()
    loss.backward()
    np.testing.assert_array_equal(loss.y, y_before)


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


def test_boolean_labels_are_refused_not_used_as_masks():
    # Regression: boolean labels reached fancy indexing and raised IndexError.
    with pytest.raises(InputError, match="integers"):
        lw.SoftmaxWithLoss().forward(np.zeros((2, 2)), np.array([True, False]))


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

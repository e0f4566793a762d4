"""The shared math: the book's function values, stability, dtype."""

import warnings

import numpy as np
import pytest

from layerwise import functional as F


def test_book_cross_entropy_and_mse_values():
    t = [0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
    y = [0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]
    assert F.mean_squared_error(np.array(y), np.array(t, dtype=float)) == pytest.approx(0.0975)
    assert F.cross_entropy_error(np.array(y), np.array(t)) == pytest.approx(0.510825457, abs=1e-6)
    assert F.cross_entropy_error(np.array(y), np.array(2)) == pytest.approx(-np.log(0.6))


def test_cross_entropy_of_zero_probability_is_finite_and_large():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = F.cross_entropy_error(np.array([[1.0, 0.0]]), np.array([1]))
    assert np.isfinite(value) and value > 700  # the book's 1e-7 would say 16.1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(dtype):
    x = np.array([[-1e4, 0.0, 1e4]], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for f in (F.sigmoid, F.softmax, F.log_softmax):
            out = f(x)
            assert out.dtype == dtype and np.all(np.isfinite(out))


def test_log_softmax_matches_log_of_softmax():
    x = np.random.default_rng(0).standard_normal((4, 6)) * 5
    np.testing.assert_allclose(F.log_softmax(x), np.log(F.softmax(x)), rtol=1e-12)
    np.testing.assert_allclose(F.softmax(x).sum(axis=1), 1.0, rtol=1e-15)


def test_softmax_cross_entropy_equals_composition():
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    assert F.softmax_cross_entropy(x, t) == pytest.approx(F.cross_entropy_error(F.softmax(x), t), rel=1e-12)


def test_sum_to_shape():
    g = np.ones((2, 3, 4))
    np.testing.assert_array_equal(F.sum_to_shape(g, (4,)), np.full(4, 6.0))
    np.testing.assert_array_equal(F.sum_to_shape(g, (3, 1)), np.full((3, 1), 8.0))
    assert F.sum_to_shape(g, ()) == 24.0

"""The shared math: the book's function values, stability, dtype."""

import warnings

import numpy as np
import pytest
from book_reference import SEEDS, book_col2im, book_im2col, geometries
from hypothesis import given

from layerwise import functional as F
from layerwise.errors import ShapeError
from layerwise.functional import col2im, conv_output_shape, im2col
from layerwise.layers.conv import AvgPooling, Convolution, Pooling


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


# -- im2col / col2im ----------------------------------------------------------------------
@given(geometries(max_kernel=5, max_out=5), SEEDS)
def test_im2col_and_col2im_match_the_books_layout(geom, seed):
    N, C, H, W, FH, FW, stride, pad = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    col = im2col(x, FH, FW, stride, pad)
    np.testing.assert_array_equal(col, book_im2col(x, FH, FW, stride, pad))
    c = rng.standard_normal(col.shape)
    np.testing.assert_allclose(
        col2im(c, x.shape, FH, FW, stride, pad), book_col2im(c, x.shape, FH, FW, stride, pad),
        rtol=1e-12, atol=1e-12,
    )
    # col2im is the adjoint of im2col: <im2col(x), c> == <x, col2im(c)>.
    np.testing.assert_allclose(
        np.sum(col * c), np.sum(x * col2im(c, x.shape, FH, FW, stride, pad)), rtol=1e-10
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_im2col_col2im_keep_dtype(dtype):
    x = np.ones((2, 3, 5, 5), dtype=dtype)
    col = im2col(x, 3, 3, 2, 1)
    assert col.dtype == dtype and col.shape == (2 * 3 * 3, 27)
    assert col2im(col, x.shape, 3, 3, 2, 1).dtype == dtype


def test_output_size_that_is_not_an_integer_is_an_error():
    # (6 - 3) / 2 + 1 = 2.5: the book silently floors to 2 and ignores the last row.
    with pytest.raises(ShapeError, match=r"Convolution.*not an integer.*\(2, 1, 6, 6\).*stride 2"):
        Convolution(np.zeros((1, 1, 3, 3)), np.zeros(1), stride=2).forward(np.zeros((2, 1, 6, 6)))
    with pytest.raises(ShapeError, match=r"Pooling.*width is not an integer.*\(1, 1, 4, 5\)"):
        Pooling(2, 2, stride=2).forward(np.zeros((1, 1, 4, 5)))
    with pytest.raises(ShapeError, match="im2col"):
        im2col(np.zeros((1, 1, 6, 6)), 3, 3, 2)


def test_kernel_larger_than_padded_input_is_an_error():
    with pytest.raises(ShapeError, match=r"Convolution.*5x5 kernel is larger than the padded input 4x4"):
        Convolution(np.zeros((1, 1, 5, 5)), np.zeros(1), pad=1).forward(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ShapeError, match=r"AvgPooling.*3x3 kernel is larger"):
        AvgPooling(3, 3, stride=1).forward(np.zeros((1, 1, 2, 5)))


def test_col2im_rejects_a_col_of_the_wrong_shape():
    with pytest.raises(ShapeError, match=r"col2im: col has shape \(3, 9\), expected \(9, 9\)"):
        col2im(np.zeros((3, 9)), (1, 1, 3, 3), 3, 3, 1, 1)


def test_conv_output_shape():
    assert conv_output_shape((100, 1, 28, 28), 5, 5) == (24, 24)
    assert conv_output_shape((1, 1, 7, 8), 3, 2, stride=2, pad=1) == (4, 5)
    with pytest.raises(ShapeError, match="4-D"):
        conv_output_shape((28, 28), 5, 5)

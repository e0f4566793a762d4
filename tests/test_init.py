"""Weight initialisers: the book's strings map to the book's formulas, exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from layerwise.errors import InputError, ShapeError
from layerwise.init import (
    INIT_SCHEMES,
    fan_in_out,
    glorot_normal,
    glorot_uniform,
    he_normal,
    init_weight,
    normal,
    xavier_normal,
)


def book_draw(std, shape, seed=0):
    """What the book's MultiLayerNet computes: scale * randn(...), with a seeded Generator."""
    return std * np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize(
    ("scheme", "std"),
    [
        ("relu", math.sqrt(2 / 784)),
        ("he", math.sqrt(2 / 784)),
        ("ReLU", math.sqrt(2 / 784)),
        ("sigmoid", math.sqrt(1 / 784)),
        ("xavier", math.sqrt(1 / 784)),
        ("Xavier", math.sqrt(1 / 784)),
        (0.01, 0.01),
        (1, 1.0),
        ("0.05", 0.05),
        (np.float32(0.5), float(np.float32(0.5))),
    ],
)
def test_book_schemes_are_the_books_formulas(scheme, std):
    W = init_weight((784, 50), scheme, np.random.default_rng(0), dtype=np.float64)
    np.testing.assert_array_equal(W, book_draw(std, (784, 50)))


def test_conv_fan_in_is_channels_times_filter_area():
    assert fan_in_out((16, 3, 5, 5)) == (75, 400)
    assert fan_in_out((784, 50)) == (784, 50)
    shape = (16, 3, 3, 3)
    W = init_weight(shape, "he", np.random.default_rng(1), dtype=np.float64)
    np.testing.assert_array_equal(W, book_draw(math.sqrt(2 / 27), shape, seed=1))
    W = xavier_normal(shape, np.random.default_rng(1), np.float64)
    np.testing.assert_array_equal(W, book_draw(math.sqrt(1 / 27), shape, seed=1))


def test_glorot_variants():
    W = glorot_normal((30, 20), np.random.default_rng(2), np.float64)
    np.testing.assert_array_equal(W, book_draw(math.sqrt(2 / 50), (30, 20), seed=2))
    U = init_weight((300, 200), "glorot_uniform", np.random.default_rng(3))
    np.testing.assert_array_equal(U, glorot_uniform((300, 200), np.random.default_rng(3)))
    limit = math.sqrt(6 / 500)
    assert U.dtype == np.float32 and np.abs(U).max() <= limit
    assert np.abs(U).max() > 0.99 * limit  # the whole interval is used
    assert abs(U.std() - limit / math.sqrt(3)) < 0.01 * limit  # std of U(-a, a) is a/√3


def test_statistics_of_he_for_a_large_draw():
    W = he_normal((1000, 500), np.random.default_rng(4))
    assert abs(W.std() / math.sqrt(2 / 1000) - 1) < 0.01
    assert abs(W.mean()) < 0.001


def test_dtype_default_float32_and_same_weights_across_dtypes():
    W32 = init_weight((20, 10), "he", np.random.default_rng(5))
    W64 = init_weight((20, 10), "he", np.random.default_rng(5), dtype=np.float64)
    assert W32.dtype == np.float32 and W64.dtype == np.float64
    np.testing.assert_array_equal(W32, W64.astype(np.float32))


def test_seed_and_generator_are_accepted_and_reproducible():
    a = init_weight((4, 3), 0.1, 7)
    b = init_weight((4, 3), 0.1, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert normal((2, 2), 0.0, 0).tolist() == [[0.0, 0.0], [0.0, 0.0]]


@pytest.mark.parametrize("scheme", ["kaiming", "", "lecun", None, True, [0.1]])
def test_unknown_scheme_is_input_error_listing_choices(scheme):
    with pytest.raises(InputError) as info:
        init_weight((3, 3), scheme, 0)
    if isinstance(scheme, str):
        assert repr(scheme) in str(info.value) and "relu, he, sigmoid, xavier" in str(info.value)


@pytest.mark.parametrize("std", [-0.1, float("nan"), float("inf"), "-1"])
def test_bad_std_is_input_error(std):
    with pytest.raises(InputError, match="std"):
        init_weight((3, 3), std, 0)


def test_bad_shapes_and_rng():
    with pytest.raises(ShapeError, match="fan-in"):
        he_normal((10,), 0)
    with pytest.raises(ShapeError):
        init_weight((3, 0), 0.1, 0)
    with pytest.raises(InputError, match="rng"):
        init_weight((3, 3), 0.1, "seed")


@given(
    scheme=st.sampled_from([*INIT_SCHEMES, 0.01]),
    shape=st.one_of(
        st.tuples(st.integers(1, 30), st.integers(1, 30)),
        st.tuples(st.integers(1, 8), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5)),
    ),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_property_shape_dtype_finite(scheme, shape, dtype):
    W = init_weight(shape, scheme, np.random.default_rng(0), dtype=dtype)
    assert W.shape == shape and W.dtype == dtype and np.all(np.isfinite(W))

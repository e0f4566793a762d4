"""kernels.fused equals the Convolution, ReLU and max pooling kernels one after another."""

import numpy as np
import pytest
from book_reference import SEEDS
from hypothesis import assume, given
from hypothesis import strategies as st

from layerwise.errors import ShapeError
from layerwise.kernels import fused, threads
from layerwise.kernels.activations import relu, relu_grad
from layerwise.kernels.conv import conv_input_grad, im2col, im2col_dot, im2col_weight_grad
from layerwise.kernels.pool import is_channels_last, max_pool, max_pool_backward


@st.composite
def tiled_geometries(draw):
    """(N, C, H, W, F, stride, pad, pool): a convolution whose output pool×pool windows tile."""
    F, stride, pad, pool = draw(st.integers(1, 5)), draw(st.integers(1, 2)), draw(st.integers(0, 2)), draw(
        st.integers(1, 3))
    PH, PW = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    OH, OW = PH * pool, PW * pool
    H, W = (OH - 1) * stride + F - 2 * pad, (OW - 1) * stride + F - 2 * pad
    assume(H >= 1 and W >= 1 and pad < F)
    return draw(st.integers(1, 3)), draw(st.sampled_from([1, 2, 3])), H, W, F, stride, pad, pool


def layers_forward(x, W, b, stride, pad, pool):
    """What Convolution, Relu and Pooling compute, one kernel after another."""
    FN, _, F, _ = W.shape
    N = len(x)
    OH, OW = (x.shape[2] + 2 * pad - F) // stride + 1, (x.shape[3] + 2 * pad - F) // stride + 1
    col_W = W.transpose(0, 2, 3, 1).reshape(FN, -1).T
    y = im2col_dot(x, col_W, b, F, F, stride, pad).reshape(N, OH, OW, FN).transpose(0, 3, 1, 2)
    h, mask = relu(y)
    out, arg_max = max_pool(h, pool, pool, pool)
    return col_W, out, mask, arg_max


@given(tiled_geometries(), st.integers(1, 4), SEEDS, st.booleans())
def test_forward_and_backward_equal_the_three_layers(geom, FN, seed, keep_cols):
    N, C, H, Wd, F, stride, pad, pool = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, H, Wd, C)).transpose(0, 3, 1, 2)  # channels-last, as between layers
    W, b = rng.standard_normal((FN, C, F, F)), rng.standard_normal(FN)
    col_W, out, mask, arg_max = layers_forward(x, W, b, stride, pad, pool)

    made = fused.conv_relu_pool(x, col_W, b, F, F, stride, pad, pool, keep_cols=keep_cols)
    np.testing.assert_allclose(made.out, out, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(made.mask, mask)
    np.testing.assert_array_equal(made.arg_max, arg_max)
    np.testing.assert_array_equal(made.passed, out.transpose(0, 2, 3, 1) > 0)
    assert (made.cols is not None) is keep_cols
    # the layers' layouts: channels-last arrays seen as NCHW
    for a in (made.out, made.mask, made.arg_max):
        assert a.transpose(0, 2, 3, 1).flags.c_contiguous

    dout = rng.standard_normal(out.shape)
    d = relu_grad(max_pool_backward(dout, arg_max, mask.shape, pool, pool, pool, channels_last=True), mask)
    rows = d.transpose(0, 2, 3, 1).reshape(-1, FN)
    dW, db, dx = fused.conv_relu_pool_backward(dout, x, W, made.passed, made.arg_max, stride, pad, pool,
                                               cols=made.cols)
    np.testing.assert_allclose(dW, im2col_weight_grad(rows, x, F, F, stride, pad), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(db, rows.sum(axis=0), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, conv_input_grad(rows, W, x.shape, stride, pad), rtol=1e-10, atol=1e-10)
    without_dx = fused.conv_relu_pool_backward(dout, x, W, made.passed, made.arg_max, stride, pad, pool, False)
    assert without_dx[2] is None
    np.testing.assert_array_equal(without_dx[0], dW)


@given(tiled_geometries(), SEEDS)
def test_col_in_pooling_order_is_im2col_with_its_rows_reordered_and_a_ones_column(geom, seed):
    N, C, H, Wd, F, stride, pad, pool = geom
    x = np.random.default_rng(seed).standard_normal((N, C, H, Wd))
    col = im2col(x, F, F, stride, pad)
    OH, OW = (H + 2 * pad - F) // stride + 1, (Wd + 2 * pad - F) // stride + 1
    PH, PW = OH // pool, OW // pool
    # rows (n, ph, i, pw, j) -> (i, j, n, ph, pw)
    reordered = col.reshape(N, PH, pool, PW, pool, -1).transpose(2, 4, 0, 1, 3, 5).reshape(col.shape)
    got = fused.pooled_order_col(x, F, F, stride, pad, pool)
    np.testing.assert_array_equal(got[:, :-1], reordered)
    np.testing.assert_array_equal(got[:, -1], 1.0)


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    W, b = rng.standard_normal((3, 1, 3, 3)).astype(np.float32), np.zeros(3, np.float32)
    made = fused.conv_relu_pool(x, W.reshape(3, -1).T, b, 3, 3, 1, 1, 2)
    assert made.out.dtype == np.float32 and made.mask.dtype == bool and made.arg_max.dtype == np.uint8
    dW, db, dx = fused.conv_relu_pool_backward(np.ones(made.out.shape, np.float32), x, W, made.passed, made.arg_max,
                                               1, 1, 2)
    assert dW.dtype == db.dtype == dx.dtype == np.float32


@pytest.mark.parametrize(
    ("x_shape", "W_shape", "stride", "pad", "pool", "expected"),
    [
        ((2, 1, 28, 28), (30, 1, 5, 5), 1, 0, 2, True),  # SimpleConvNet: 24x24 in 2x2 windows
        ((2, 16, 7, 7), (16, 16, 3, 3), 1, 1, 2, False),  # a 7x7 output leaves a row over
        ((2, 3, 11, 11), (4, 3, 3, 3), 1, 0, 3, True),  # 9x9 in 3x3 windows
        ((2, 3, 11, 11), (4, 2, 3, 3), 1, 0, 3, False),  # channels disagree
        ((2, 3, 2, 2), (4, 3, 3, 3), 1, 1, 3, False),  # an output smaller than the window
    ],
)
def test_applies_only_where_the_windows_tile_the_output(x_shape, W_shape, stride, pad, pool, expected):
    assert fused.applies(x_shape, W_shape, stride, pad, pool) is expected


def test_weights_that_do_not_fit_are_refused_by_name():
    with pytest.raises(ShapeError, match=r"conv_relu_pool: col_W \(8, 3\)"):
        fused.conv_relu_pool(np.zeros((1, 1, 6, 6)), np.zeros((8, 3)), np.zeros(3), 3, 3, 1, 0, 2)
    with pytest.raises(ShapeError, match="that 3x3 windows tile"):
        fused.conv_relu_pool(np.zeros((1, 1, 6, 6)), np.zeros((9, 3)), np.zeros(3), 3, 3, 1, 0, 3)


# -- the ReLU and the pooling together (the convolution before them computed on its own) ----------


@given(
    n=st.integers(1, 4), c=st.integers(1, 5), ph=st.integers(1, 4), pw=st.integers(1, 4), pool=st.integers(1, 3),
    layout=st.sampled_from(["channels-last", "NCHW"]), dout_layout=st.sampled_from(["channels-last", "NCHW"]),
    zeros=st.booleans(), dtype=st.sampled_from([np.float64, np.float32]), seed=SEEDS,
)
def test_relu_pool_equals_the_relu_and_the_pooling(n, c, ph, pw, pool, layout, dout_layout, zeros, dtype, seed):
    # Windows of values all <= 0 (the ReLU's zeros tie: the first position takes the window),
    # exact zeros (ties at 0 and at the max), either memory layout of y and of dout.
    rng = np.random.default_rng(seed)
    shape = (n, c, ph * pool, pw * pool)
    values = rng.standard_normal(shape)
    if zeros:
        values = np.round(values)  # many exact zeros and ties
    y = (np.ascontiguousarray(values.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2) if layout == "channels-last"
         else np.ascontiguousarray(values)).astype(dtype)
    h, mask = relu(y)
    out, arg_max = max_pool(h, pool, pool, pool)
    made = fused.relu_pool(y, pool)
    np.testing.assert_array_equal(made.out, out)
    np.testing.assert_array_equal(made.mask, mask)
    np.testing.assert_array_equal(made.arg_max, arg_max)
    np.testing.assert_array_equal(made.passed, out > 0)
    for got, expected in ((made.out, out), (made.mask, mask), (made.arg_max, arg_max)):
        assert same_layout(got, expected) and got.dtype == expected.dtype

    d = rng.standard_normal((n, ph, pw, c) if dout_layout == "channels-last" else (n, c, ph, pw)).astype(dtype)
    dout = d.transpose(0, 3, 1, 2) if dout_layout == "channels-last" else d
    channels_last = is_channels_last(y)  # as the Pooling layer keeps it
    expected_dx = relu_grad(max_pool_backward(dout, arg_max, shape, pool, pool, pool, channels_last=channels_last),
                            mask)
    dx = fused.relu_pool_backward(dout, made.passed, made.arg_max, shape, pool, channels_last)
    np.testing.assert_array_equal(dx, expected_dx)  # -0.0 == 0.0
    assert same_layout(dx, expected_dx) and dx.dtype == expected_dx.dtype


def same_layout(a, b):
    """The same memory layout: equal strides along every axis longer than one."""
    return a.shape == b.shape and all(s == t for s, t, n in zip(a.strides, b.strides, a.shape, strict=True) if n > 1)


def test_relu_pool_on_two_owned_threads_is_the_same(monkeypatch):
    # Small arrays split too (a pass of one value is worth splitting), and the split is checked
    # to happen: the mask pass, the pooling and the routing backward each in two parts.
    monkeypatch.setattr(threads, "run_threads", lambda: (2, True))
    monkeypatch.setattr(threads, "_min_elements", 1)
    parts = []
    real_parts = threads._Parts
    monkeypatch.setattr(threads, "_Parts", lambda fn, items: parts.append(len(list(items))) or real_parts(fn, items))
    rng = np.random.default_rng(3)
    y = rng.standard_normal((6, 8, 8, 5)).transpose(0, 3, 1, 2)
    dout = rng.standard_normal((6, 4, 4, 5)).transpose(0, 3, 1, 2)
    one = fused.relu_pool(y, 2)
    dx_one = fused.relu_pool_backward(dout, one.passed, one.arg_max, y.shape, 2, True)
    assert parts == []
    with threads.owned_threads():
        two = fused.relu_pool(y, 2)
        dx_two = fused.relu_pool_backward(dout, two.passed, two.arg_max, y.shape, 2, True)
    assert parts == [2, 2, 2]
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(dx_two, dx_one)

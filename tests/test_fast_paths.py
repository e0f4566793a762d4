"""Every fast path equals the plain computation it replaces (see the comments at each one)."""

import numpy as np
import pytest
from conftest import assert_close_for_dtype
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import layerwise as lw
from layerwise.functional import log_softmax, softmax
from layerwise.kernels.softmax_loss import softmax_loss

SPECIAL = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, 1e-45, -1e-45, 3e38, -3e38]


def _same(a: np.ndarray, b: np.ndarray) -> None:
    """Equal values, dtype, and sign of every zero (np.array_equal alone treats -0.0 == 0.0)."""
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


# -- ReLU: np.maximum forward, multiply-by-mask backward, instead of np.where ------------------

floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=32), st.sampled_from(SPECIAL))


@settings(max_examples=60, deadline=None)
@given(x=arrays(np.float32, array_shapes(min_dims=1, max_dims=4, max_side=6), elements=floats),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_relu_forward_equals_where(x, dtype):
    x = x.astype(dtype)
    out = lw.ReLU().forward(x)
    _same(out, np.where(x <= 0, np.zeros((), dtype), x))  # NaN stays NaN in both


@settings(max_examples=60, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64]))
def test_relu_backward_equals_where_for_finite_dout(data, dtype):
    shape = data.draw(array_shapes(min_dims=1, max_dims=4, max_side=6))
    x = data.draw(arrays(np.float32, shape, elements=floats)).astype(dtype)
    finite = st.one_of(st.floats(allow_nan=False, allow_infinity=False, width=32),
                       st.sampled_from([0.0, -0.0, -1.0, 1e-45, -1e-45]))
    dout = data.draw(arrays(np.float32, shape, elements=finite)).astype(dtype)
    relu = lw.ReLU()
    relu.forward(x)
    kept = dout.copy()
    dx = relu.backward(dout)
    # Every zero comes out +0.0: where blocked, as the select gives; where dout itself was -0.0,
    # the select would keep -0.0 (equal in value; + 0 normalises both).
    _same(dx, np.where(x <= 0, np.zeros((), dtype), dout) + 0)
    _same(dout, kept)  # dout untouched


def test_relu_keeps_the_memory_layout_of_a_conv_output():
    # A Convolution returns a transposed view (N, C, H, W) of an (N, H, W, C) array; ReLU's
    # output, mask and gradient keep that layout, so nothing downstream has to transpose.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 5, 3)).astype(np.float32).transpose(0, 3, 1, 2)
    dout = rng.standard_normal((2, 4, 5, 3)).astype(np.float32).transpose(0, 3, 1, 2)
    relu = lw.ReLU()
    out = relu.forward(x)
    dx = relu.backward(dout)
    assert out.strides == x.strides and dx.strides == dout.strides
    _same(out, np.where(x <= 0, np.float32(0), x))
    _same(dx, np.where(x <= 0, np.float32(0), dout))


def test_relu_integer_dout_keeps_its_dtype():
    relu = lw.ReLU()
    relu.forward(np.array([1.0, -1.0]))
    dx = relu.backward(np.array([3, 4]))
    assert dx.dtype.kind == "i"
    np.testing.assert_array_equal(dx, [3, 0])


# -- SoftmaxWithLoss: one exp, no log-softmax array, argmax for the row max --------------------

def _plain(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
    return softmax(x), float(-np.sum(log_softmax(x)[np.arange(len(t)), t]) / len(t))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), c=st.integers(1, 12), scale=st.sampled_from([1e-3, 1.0, 30.0, 1e4]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_fused_softmax_loss_equals_log_softmax_gather(n, c, scale, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * scale).astype(dtype)
    x[rng.random((n, c)) < 0.2] = x.max()  # ties for the row max
    t = rng.integers(0, c, n).astype(np.uint8)
    y, loss = softmax_loss(x, t)
    y_ref, loss_ref = _plain(x, t)
    assert y.dtype == dtype
    assert_close_for_dtype(y, y_ref, dtype)  # the same max and exp; the row sums differ in order
    # Only the order of the final sum differs: log Σ - Σ shifted[t] vs -Σ (shifted[t] - log Σ).
    assert np.isfinite(loss)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert float(loss) == pytest.approx(loss_ref, rel=tol, abs=tol)


def test_fused_softmax_loss_non_finite_logits_give_nan_like_the_plain_path():
    x = np.array([[1.0, np.nan, 2.0], [np.inf, 0.0, 1.0], [-np.inf, 0.0, 1.0]], dtype=np.float32)
    t = np.array([0, 1, 2])
    for row in range(3):
        with np.errstate(invalid="ignore"):  # inf - inf, in both paths
            _, loss = softmax_loss(x[row : row + 1], t[row : row + 1])
            _, loss_ref = _plain(x[row : row + 1], t[row : row + 1])
        # The fused softmax of a row with +inf is one-hot where the plain one is NaN (inf - inf),
        # so only the loss is compared: not finite in both, or (for -inf) the same finite value.
        assert np.isfinite(loss) == np.isfinite(loss_ref)
        if np.isfinite(loss):
            assert loss == pytest.approx(loss_ref, rel=1e-6)


def test_softmax_with_loss_layer_uses_the_fused_path_consistently():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 5)).astype(np.float32) * 50
    t = rng.integers(0, 5, 7)
    layer = lw.SoftmaxWithLoss()
    loss_idx = layer.forward(x, t)
    dx_idx = layer.backward()
    loss_hot = layer.forward(x, np.eye(5, dtype=np.float32)[t])  # one-hot: the plain path
    dx_hot = layer.backward()
    assert loss_idx == pytest.approx(loss_hot, rel=1e-6)
    np.testing.assert_allclose(dx_idx, dx_hot, rtol=0, atol=1e-8)
    assert dx_idx.dtype == np.float32


# -- Affine: x·W then b added in place ---------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 8), d=st.integers(1, 9), o=st.integers(1, 7),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_affine_forward_equals_matmul_plus_bias(n, d, o, dtype, seed):
    rng = np.random.default_rng(seed)
    x, W, b = (rng.standard_normal(s).astype(dtype) for s in ((n, d), (d, o), (o,)))
    out = lw.Affine(W, b).forward(x)
    assert out.dtype == dtype
    # Affine multiplies with np.dot, the plain expression with np.matmul: NumPy may hand the same
    # product to another BLAS routine (gemv for one row, gemm for several), equal to rounding.
    assert_close_for_dtype(out, x @ W + b, dtype, terms=d + 1)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_evaluation_mode_forward_then_backward_equals_training_mode(data):
    # Evaluation mode skips ReLU's mask and max pooling's arg_max; a backward after it
    # derives them from the cached input: the same output and the same dx as training mode.
    from layerwise.layers import Pooling, ReLU

    n, c = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    ph, pw, stride = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    pad = data.draw(st.integers(0, min(ph, pw) // 2))
    oh, ow = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    h, w = (oh - 1) * stride + ph - 2 * pad, (ow - 1) * stride + pw - 2 * pad  # the stride fits
    if min(h, w) < 1:
        return
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(-3, 4, (n, c, h, w)).astype(np.float64)  # small integers: many ties
    for make in (ReLU, lambda: Pooling(ph, pw, stride, pad)):
        trained, evaluated = make(), make()
        out_t, out_e = trained.forward(x, train=True), evaluated.forward(x, train=False)
        _same(out_e, out_t)
        dout = rng.standard_normal(out_t.shape)
        _same(evaluated.backward(dout), trained.backward(dout))


# -- sums over a short axis as products with a vector of ones ----------------------------------

@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 300), o=st.integers(1, 12), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**32 - 1))
def test_bias_gradients_equal_the_batch_sum(n, o, dtype, seed):
    rng = np.random.default_rng(seed)
    affine = lw.Affine(rng.standard_normal((3, o)).astype(dtype), np.zeros(o, dtype))
    affine.forward(rng.standard_normal((n, 3)).astype(dtype))
    dout = rng.standard_normal((n, o)).astype(dtype)
    affine.backward(dout)
    tol = 1e-5 if dtype == np.float32 else 1e-12  # only the order of the additions differs
    assert affine.db.dtype == dtype and affine.db.shape == (o,)
    np.testing.assert_allclose(affine.db, dout.astype(np.float64).sum(axis=0), rtol=tol, atol=tol * n)

    conv = lw.Convolution(rng.standard_normal((o, 2, 3, 3)).astype(dtype), np.zeros(o, dtype), pad=1)
    out = conv.forward(rng.standard_normal((2, 2, 5, 4)).astype(dtype))
    d = rng.standard_normal(out.shape).astype(dtype)
    conv.backward(d)
    assert conv.db.dtype == dtype
    np.testing.assert_allclose(conv.db, d.astype(np.float64).sum(axis=(0, 2, 3)), rtol=tol, atol=tol * 40)


def test_softmax_rows_sum_through_the_ones_vector_like_sum():
    from layerwise.kernels.softmax_loss import _parts

    x = np.random.default_rng(3).standard_normal((4, 6, 7))  # rows of a 3-D array
    _, e, rest = _parts(x)
    plain = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(e, plain, rtol=1e-15)
    np.testing.assert_allclose(rest[..., 0], plain.sum(axis=-1) - 1, rtol=1e-13, atol=1e-15)


def test_small_caches_are_read_only_and_bounded():
    from layerwise.kernels import caches
    from layerwise.kernels.caches import CACHED_SHAPES as _CACHED_SHAPES
    from layerwise.kernels.caches import ones as _ones
    from layerwise.kernels.caches import row_starts as _row_starts

    ones, starts = _ones(5, np.float32), _row_starts(4, 3)
    np.testing.assert_array_equal(starts, [0, 3, 6, 9])
    for a in (ones, starts):
        with pytest.raises(ValueError):
            a[0] = 7
    for n in range(1, 3 * _CACHED_SHAPES):  # a caller cycling through batch sizes
        _ones(n, np.float64), _row_starts(n, 2)
    assert len(caches._ones) <= _CACHED_SHAPES and len(caches._row_starts) <= _CACHED_SHAPES
    np.testing.assert_array_equal(_ones(3, np.float32), np.ones(3, np.float32))


# -- predict's finiteness check: a sum of squares, a plain sum for other layouts ---------------

@pytest.mark.parametrize("layout", ["C", "F"])
def test_predict_finiteness_check_refuses_non_finite_and_passes_huge_finite(layout):
    net = lw.TwoLayerNet(6, 4, 3, seed=0)
    x = np.asarray(np.random.default_rng(0).random((5, 6), dtype=np.float32), order=layout)
    x[3, 2], x[3, 3] = 3e38, 3e38  # finite; their sum overflows, so the quick check looks closer
    with np.errstate(over="ignore"):  # the sum, then the network itself, overflow
        net.predict(x)  # no error: every value is finite
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy(order=layout)
        y[4, 1] = bad
        with pytest.raises(lw.InputError, match="sample 4 contains NaN or infinity"):
            net.predict(y)


# -- im2col of one channel: filled column by column (column-major col) ---------------------------

@pytest.mark.parametrize("stride, pad", [(1, 0), (2, 2), (4, 0)])
def test_one_channel_im2col_equals_the_window_copy(stride, pad):
    from layerwise.functional import conv_output_shape
    from layerwise.kernels.conv import _channels_last_windows, im2col

    x = np.random.default_rng(stride + pad).standard_normal((3, 1, 13, 13))
    OH, OW = conv_output_shape(x.shape, 5, 5, stride, pad, "test")
    windows = _channels_last_windows(x, 5, 5, stride, pad, OH, OW)  # the general path's view
    col = im2col(x, 5, 5, stride, pad)
    _same(col, np.ascontiguousarray(windows).reshape(3 * OH * OW, 25))
    assert col.flags.f_contiguous
    assert col.shape == (3 * OH * OW, 25)

"""kernels.activations equals the plain ReLU expressions (np.maximum, np.where)."""

import numpy as np
from book_reference import same as _same
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import layerwise as lw
from layerwise.kernels.activations import SMALL, ZERO_ROW, max_zero, relu

SPECIAL = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, 1e-45, -1e-45, 3e38, -3e38]


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


@settings(max_examples=40, deadline=None)
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64, np.int32]),
       layout=st.sampled_from(["C", "channels-last view", "every other column", "reversed"]))
def test_max_zero_equals_np_maximum_bit_for_bit(data, dtype, layout):
    # Sizes around the zero row's length: a body of whole rows, a tail, a tail alone.
    size = data.draw(st.sampled_from([1, 7, ZERO_ROW - 1, ZERO_ROW, ZERO_ROW + 5, 3 * ZERO_ROW + 17]))
    integer = np.issubdtype(dtype, np.integer)
    values = data.draw(arrays(dtype, 64, elements=st.integers(-(2**31), 2**31 - 1) if integer else floats))
    seed = data.draw(st.integers(0, 2**32 - 1))
    flat = np.random.default_rng(seed).choice(values, size=2 * size + 8)
    x = {
        "C": flat[:size].reshape(size, 1),
        "channels-last view": flat[: size // 4 * 4 or 4].reshape(-1, 2, 2).transpose(0, 2, 1),
        "every other column": flat[: 2 * size].reshape(size, 2)[:, 0],  # not dense: the scalar loop
        "reversed": flat[:size][::-1],
    }[layout]
    assert layout != "channels-last view" or not x.flags.c_contiguous
    out = np.empty_like(x)
    max_zero(x, out)
    _same(out, np.maximum(x, 0))
    assert out.strides == np.empty_like(x).strides


def test_relu_of_large_arrays_equals_np_maximum_in_every_layout():
    rng = np.random.default_rng(1)
    values = np.array([*SPECIAL, np.nan, -np.nan], np.float32)
    for shape in [(SMALL + 3,), (100, 16, 28, 28), (7, 3, 40, 41)]:
        x = rng.choice(values, size=shape)
        for view in (x, x.transpose(0, *range(x.ndim - 1, 0, -1)) if x.ndim > 1 else x[::-1]):
            out, mask = relu(view, keep_mask=True)
            _same(out, np.maximum(view, 0))
            _same(mask, view <= 0)
            assert out.strides == np.empty_like(view).strides


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

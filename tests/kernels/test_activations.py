"""kernels.activations equals the plain ReLU expressions (np.maximum, np.where)."""

import numpy as np
import pytest
from book_reference import same as _same
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

import layerwise as lw
from layerwise.kernels import threads
from layerwise.kernels.activations import ZERO_ROW, ZERO_ROW_MIN_SIZE, max_zero, relu, relu_in_place

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


def _bits(a: np.ndarray) -> np.ndarray:
    """a's values as unsigned integers of its width: NaN payloads and signs compared too."""
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


MAX_ZERO_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.uint64]


@settings(max_examples=80, deadline=None)
@given(data=st.data(), dtype=st.sampled_from(MAX_ZERO_DTYPES),
       layout=st.sampled_from(["C", "channels-last view", "shifted start", "in place"]))
def test_max_zero_equals_np_maximum_bit_for_bit(data, dtype, layout):
    # Sizes around the zero row's length: a body of whole rows, a tail, a tail alone. Every
    # layout here is dense, so max_zero compares against its row of zeros.
    size = data.draw(st.sampled_from([4, 8, ZERO_ROW - 4, ZERO_ROW, ZERO_ROW + 8, 3 * ZERO_ROW + 20]))
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = data.draw(arrays(dtype, 64, elements=st.integers(int(info.min), int(info.max))))
    else:
        payloads = np.array([0x7FC00001, 0xFFC00002, 0x7F800001, 0x80000000], np.uint32).view(np.float32)
        with np.errstate(over="ignore", invalid="ignore"):  # float16 turns 3e38 into inf
            values = np.concatenate([data.draw(arrays(np.float32, 60, elements=floats)), payloads]).astype(dtype)
    flat = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).choice(values, size=size + 1)
    x = {
        "C": flat[:size].reshape(-1, 4),
        "channels-last view": flat[:size].reshape(-1, 2, 2).transpose(0, 2, 1),  # dense, not C order
        "shifted start": flat[1:],  # not aligned to the row of zeros
        "in place": flat[:size].copy(),
    }[layout]
    expected = np.maximum(x, 0)
    out = x if layout == "in place" else np.empty_like(x)
    max_zero(x, out)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    np.testing.assert_array_equal(_bits(out), _bits(expected))


@pytest.mark.parametrize("case", ["strided", "reversed", "other shape", "overlapping", "complex", "bool out"])
def test_max_zero_gives_np_maximums_result_or_error_where_it_cannot_take_the_row(case):
    n = ZERO_ROW + 9
    buf = np.random.default_rng(2).standard_normal(2 * n).astype(np.float32)
    x, out = {
        "strided": (buf[::2], np.empty(n, np.float32)),
        "reversed": (buf[:n][::-1], np.empty(n, np.float32)),
        "other shape": (buf[:n - 1].reshape(1, -1), np.empty((3, n - 1), np.float32)),  # broadcast into out
        "overlapping": (buf[:n], buf[1 : n + 1]),  # out one element ahead of x in the same buffer
        "complex": (buf[:n].astype(np.complex64), np.empty(n, np.complex64)),
        "bool out": (buf[:n], np.empty(n, bool)),
    }[case]
    expected_in, expected_out = x.copy(), out.copy()
    try:
        np.maximum(expected_in, 0, out=expected_out)
    except TypeError as error:  # NumPy refuses: max_zero must refuse the same way
        with pytest.raises(type(error)):
            max_zero(x, out)
        return
    max_zero(x, out)
    np.testing.assert_array_equal(out, expected_out)


def test_relu_of_large_arrays_equals_np_maximum_in_every_layout():
    rng = np.random.default_rng(1)
    values = np.array([*SPECIAL, np.nan, -np.nan], np.float32)
    for shape in [(ZERO_ROW_MIN_SIZE + 3,), (100, 16, 28, 28), (7, 3, 40, 41)]:
        x = rng.choice(values, size=shape)
        for view in (x, x.transpose(0, *range(x.ndim - 1, 0, -1)) if x.ndim > 1 else x[::-1]):
            out, mask = relu(view, keep_mask=True)
            np.testing.assert_array_equal(_bits(out), _bits(np.maximum(view, 0)))
            _same(mask, view <= 0)
            assert view.ndim == 1 or out.strides == view.strides  # a channels-last view stays channels-last


@pytest.mark.parametrize("owned", [1, 2])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32])
def test_relu_in_place_is_np_maximum_into_x_bit_for_bit(monkeypatch, owned, dtype):
    monkeypatch.setattr(threads, "run_threads", lambda: (owned, True))
    rng = np.random.default_rng(3)
    payloads = np.array([0x7FC00001, 0xFFC00002, 0x80000000], np.uint32).view(np.float32)
    values = np.concatenate([np.array([*SPECIAL, np.nan], np.float32), payloads])
    # Below the zero row's size, above it, and above the size split across the owned threads.
    for shape in [(3,), (ZERO_ROW_MIN_SIZE - 1,), (50, 100), (100, 16, 28, 28)]:
        with np.errstate(over="ignore", invalid="ignore"):  # float16 and int32 take what they can
            x = rng.choice(values, size=shape).astype(dtype) if dtype != np.int32 else \
                rng.integers(-5, 5, size=shape, dtype=np.int32)
        # dense in C order, and a channels-last view (dense, not C order), each of its own values
        for view in (x.copy(), x.copy().transpose(0, *range(x.ndim - 1, 0, -1)) if x.ndim > 1 else x.copy()):
            expected = np.maximum(view, 0)
            with threads.owned_threads():
                result = relu_in_place(view)
            assert result is view
            np.testing.assert_array_equal(_bits(view), _bits(expected))


def test_relu_of_a_bool_array_is_np_maximums_at_every_size():
    # Regression: between ZERO_ROW_MIN_SIZE and SPLIT_MIN_ELEMENTS values relu wrote into a bool
    # array of x's dtype, and np.maximum's int64 result could not be cast into it.
    for size in (10, ZERO_ROW_MIN_SIZE + 1, 200_000):
        x = np.arange(size) % 3 == 0
        out, mask = relu(x)
        _same(out, np.maximum(x, 0))
        _same(mask, x <= 0)


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

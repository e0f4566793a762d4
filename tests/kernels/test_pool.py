"""kernels.pool equals the book's pooling on im2col rows (argmax, ties, padding, overlaps)."""

import numpy as np
import pytest
from book_reference import SEEDS, book_max_pool, book_max_pool_backward, torch_pool
from hypothesis import given, settings
from hypothesis import strategies as st

from layerwise.kernels.pool import max_pool, max_pool_backward
from layerwise.layers.conv import AvgPooling, Pooling


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_ties_go_to_the_first_position_like_torch(dtype):
    # Small integers: most windows hold ties, many of them for the max.
    rng = np.random.default_rng(4)
    for shape, ph, pw, stride, pad in [
        ((3, 2, 6, 8), 2, 2, 2, 0), ((3, 2, 6, 8), 3, 3, 1, 1), ((3, 2, 6, 9), 2, 3, 2, 1)
    ]:
        x = rng.integers(0, 3, shape).astype(dtype)
        layer = Pooling(ph, pw, stride, pad)
        out = layer.forward(x)
        dout = rng.standard_normal(out.shape).astype(dtype)
        ref_out, ref_dx = torch_pool("max", x, dout, ph, pw, stride, pad)
        np.testing.assert_array_equal(out, ref_out)
        np.testing.assert_allclose(layer.backward(dout), ref_dx, rtol=1e-6, atol=1e-6)


def test_tie_example_by_hand():
    x = np.array([[[[5.0, 5.0, 1.0, 2.0], [5.0, 5.0, 2.0, 2.0]]]])  # windows: all-5s, and 1,2,2,2
    layer = Pooling(2, 2, stride=2)
    np.testing.assert_array_equal(layer.forward(x), [[[[5.0, 2.0]]]])
    dx = layer.backward(np.array([[[[10.0, 20.0]]]]))
    np.testing.assert_array_equal(dx, [[[[10.0, 0.0, 0.0, 20.0], [0.0, 0.0, 0.0, 0.0]]]])


@settings(max_examples=30)
@given(
    n=st.integers(1, 3), c=st.integers(1, 4), oh=st.integers(1, 4), ow=st.integers(1, 4),
    ph=st.integers(1, 3), pw=st.integers(1, 3), stride=st.integers(1, 3),
    levels=st.sampled_from([1, 2, 1000]), dtype=st.sampled_from([np.float32, np.float64]), seed=SEEDS,
)
def test_max_pool_matches_the_books_argmax_algorithm_ties_included(
    n, c, oh, ow, ph, pw, stride, levels, dtype, seed
):
    rng = np.random.default_rng(seed)
    # Few levels -> many ties; channels-last memory, as a Convolution's output has.
    H, W = (oh - 1) * stride + ph, (ow - 1) * stride + pw
    x = rng.integers(-levels, levels, (n, H, W, c)).astype(dtype).transpose(0, 3, 1, 2)
    out, arg_max = max_pool(x, ph, pw, stride)
    ref_out, ref_arg = book_max_pool(x, ph, pw, stride)
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(arg_max.transpose(0, 2, 3, 1).ravel(), ref_arg)
    dout = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_allclose(
        max_pool_backward(dout, arg_max, x.shape, ph, pw, stride),
        book_max_pool_backward(dout, ref_arg, x.shape, ph, pw, stride),
        rtol=1e-12, atol=1e-12,
    )


@settings(max_examples=30)
@given(
    n=st.integers(1, 3), c=st.integers(1, 4), oh=st.integers(1, 4), ow=st.integers(1, 4),
    k=st.integers(1, 3), levels=st.sampled_from([1, 2, 1000]),
    dtype=st.sampled_from([np.float32, np.float64]), seed=SEEDS,
)
def test_fast_path_equals_general_path(n, c, oh, ow, k, levels, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(-levels, levels, (n, c, oh * k, ow * k)).astype(dtype)  # ties galore
    layer = Pooling(k, k, stride=k)  # windows tile the input: the fast path
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    fast = layer.backward(dout)
    for channels_last in (False, True):
        general = max_pool_backward(
            dout, layer.arg_max, x.shape, k, k, k, 0,
            channels_last=channels_last, tiled_fast_path=False,
        )
        assert fast.dtype == general.dtype == dtype
        np.testing.assert_array_equal(fast, general)
    # Every window routes its whole gradient to exactly one position (windows tile: no sums).
    np.testing.assert_array_equal(np.sort(fast[fast != 0]), np.sort(dout.ravel()))


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 owned threads"])
def owned(request, monkeypatch):
    """Run the block on 1 thread, or with layerwise owning 2 (large passes then run in parts)."""
    from layerwise.kernels import threads

    monkeypatch.setattr(threads, "run_threads", lambda: (request.param, True))
    with threads.owned_threads():
        yield request.param


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3), c=st.integers(1, 5), oh=st.integers(1, 4), ow=st.integers(1, 4),
    k=st.integers(1, 3), levels=st.sampled_from([1, 2, 1000]),
    dtype=st.sampled_from([np.float32, np.float64, np.int32, np.uint8]), seed=SEEDS,
)
def test_tiled_rows_equal_the_strided_views_bit_for_bit(n, c, oh, ow, k, levels, dtype, seed):
    # Windows tiling a channels-last x take the dense rows (_tiled_offsets); the strided views
    # are the path every other geometry takes, checked against the book above.
    rng = np.random.default_rng(seed)
    x = rng.integers(0 if dtype == np.uint8 else -levels, levels + 1, (n, oh * k, ow * k, c))
    x = x.astype(dtype).transpose(0, 3, 1, 2)  # ties galore, channels-last as after a Convolution
    for with_arg_max in (True, False):
        out, arg_max = max_pool(x, k, k, k, with_arg_max=with_arg_max)
        ref_out, ref_arg = max_pool(x, k, k, k, with_arg_max=with_arg_max, tiled_fast_path=False)
        assert out.dtype == ref_out.dtype and out.strides == ref_out.strides
        np.testing.assert_array_equal(out, ref_out)
        if with_arg_max:
            assert arg_max.dtype == ref_arg.dtype and arg_max.strides == ref_arg.strides
            np.testing.assert_array_equal(arg_max, ref_arg)
        else:
            assert arg_max is None and ref_arg is None


@pytest.mark.parametrize("shape", [(100, 30, 24, 24), (7, 16, 28, 28), (3, 64, 8, 8)])
def test_tiled_rows_in_parts_equal_the_book(owned, shape):
    # Large enough to run in parts on the owned threads; -0.0 against 0.0, NaN and ties kept.
    rng = np.random.default_rng(11)
    N, C, H, W = shape
    x = np.round(rng.standard_normal((N, H, W, C)), 1).astype(np.float32)
    x[0, :2, :2, 0] = [[-0.0, 0.0], [0.0, -0.0]]
    x[-1, 2, 3, -1] = np.nan
    x = x.transpose(0, 3, 1, 2)
    out, arg_max = max_pool(x, 2, 2, 2)
    strided_out = max_pool(x, 2, 2, 2, tiled_fast_path=False)[0]
    np.testing.assert_array_equal(out.view(np.uint32), strided_out.view(np.uint32))  # the same bits
    ref_out, ref_arg = book_max_pool(x, 2, 2, 2)
    np.testing.assert_array_equal(out, ref_out)
    windows = ~np.isnan(ref_out).transpose(0, 2, 3, 1).ravel()  # a NaN window's position: unspecified
    np.testing.assert_array_equal(arg_max.transpose(0, 2, 3, 1).ravel()[windows], ref_arg[windows])
    np.testing.assert_array_equal(max_pool(x, 2, 2, 2, with_arg_max=False)[0], out)


@pytest.mark.parametrize("stride, pad", [(2, 0), (1, 1)])
def test_pooling_out_and_dx_take_the_inputs_memory_layout(stride, pad):
    rng = np.random.default_rng(8)
    nchw = rng.standard_normal((2, 3, 6, 6))
    nhwc = np.ascontiguousarray(nchw.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # as after a conv
    dout = rng.standard_normal(Pooling(2, 2, stride, pad).output_shape(nchw.shape))
    outs, arg_maxes, results = [], [], []
    for x in (nchw, nhwc):
        layer = Pooling(2, 2, stride, pad)
        outs.append(layer.forward(x))
        arg_maxes.append(layer.arg_max)
        results.append(layer.backward(dout))
    for pair in (outs, arg_maxes, results):
        assert pair[0].strides[1] > pair[0].strides[2] > pair[0].strides[3]  # NCHW
        assert pair[1].strides[2] > pair[1].strides[3] > pair[1].strides[1]  # NHWC
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(arg_maxes[0], arg_maxes[1])
    np.testing.assert_array_equal(results[0], results[1])


def test_padding_never_wins_a_max_window():
    # All inputs negative: a zero pad would win every border window (the wrong answer).
    x = -1.0 - np.arange(16.0).reshape(1, 1, 4, 4)
    layer = Pooling(2, 2, stride=2, pad=1)
    out = layer.forward(x)
    assert out.shape == (1, 1, 3, 3)  # the book's Pooling crashes here
    assert np.all(out < 0)
    np.testing.assert_array_equal(out, torch_pool("max", x, np.ones(out.shape), 2, 2, 2, 1)[0])
    dx = layer.backward(np.ones(out.shape))
    assert dx.sum() == 9.0  # every window's gradient lands on a real input


def test_avg_pooling_counts_padding_in_the_average():
    x = np.ones((1, 1, 2, 2))
    out = AvgPooling(2, 2, stride=2, pad=1).forward(x)
    np.testing.assert_array_equal(out, np.full((1, 1, 2, 2), 0.25))  # one real 1 in four

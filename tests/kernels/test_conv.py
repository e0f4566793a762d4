"""kernels.conv equals the book's im2col (columns reordered) and col2im of d·W."""

import numpy as np
import pytest
from book_reference import SEEDS, book_col2im, geometries
from book_reference import same as _same
from hypothesis import given
from hypothesis import strategies as st

from layerwise.errors import ShapeError
from layerwise.functional import conv_output_shape, im2col
from layerwise.kernels import conv as conv_kernels
from layerwise.kernels.conv import conv_input_grad


@given(geometries(max_kernel=4, max_out=4), SEEDS)
def test_channels_last_im2col_and_conv_input_grad_agree_with_the_books_order(geom, seed):
    N, C, H, W, FH, FW, stride, pad = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    book = im2col(x, FH, FW, stride, pad)
    fast = conv_kernels.im2col(x, FH, FW, stride, pad)
    # Same windows, columns (fh, fw, c) instead of (c, fh, fw).
    np.testing.assert_array_equal(
        fast.reshape(-1, FH, FW, C).transpose(0, 3, 1, 2).reshape(book.shape), book
    )
    FN = int(rng.integers(1, 4))
    Wt, d = rng.standard_normal((FN, C, FH, FW)), rng.standard_normal((book.shape[0], FN))
    np.testing.assert_allclose(
        conv_input_grad(d, Wt, x.shape, stride, pad),
        book_col2im(d @ Wt.reshape(FN, -1), x.shape, FH, FW, stride, pad),
        rtol=1e-12, atol=1e-12,
    )


def test_conv_input_grad_rejects_a_d_of_the_wrong_shape():
    with pytest.raises(ShapeError, match=r"conv_input_grad: d has shape \(4, 2\), expected \(8, 2\)"):
        conv_input_grad(np.zeros((4, 2)), np.zeros((2, 1, 3, 3)), (2, 1, 4, 4), 1, 0)


@pytest.mark.parametrize("stride, pad", [(1, 0), (2, 2), (4, 0)])
def test_one_channel_im2col_equals_the_window_copy(stride, pad):
    from layerwise.kernels.conv import _channels_last_windows, im2col

    x = np.random.default_rng(stride + pad).standard_normal((3, 1, 13, 13))
    OH, OW = conv_output_shape(x.shape, 5, 5, stride, pad, "test")
    windows = _channels_last_windows(x, 5, 5, stride, pad, OH, OW)  # the general path's view
    col = im2col(x, 5, 5, stride, pad)
    _same(col, np.ascontiguousarray(windows).view(x.dtype).reshape(3 * OH * OW, 25))
    assert col.flags.f_contiguous
    assert col.shape == (3 * OH * OW, 25)


@pytest.mark.parametrize(
    ("C", "FN", "F", "pad", "stride", "correlation"),
    [
        (4, 4, 3, 1, 1, True),  # DeepConvNet's conv2, conv6 shapes
        (4, 2, 3, 2, 1, True),  # pad = F - 1: dout is not padded again (conv4's pad 2)
        (3, 3, 3, 0, 1, True),
        (2, 2, 5, 4, 1, True),
        (4, 1, 3, 1, 1, True),  # FN = 1: dout has one channel (im2col's one-channel path)
        (2, 4, 3, 1, 1, True),  # FN = 2·C: still by correlation
        (2, 5, 3, 1, 1, False),  # FN > 2·C: per offset
        (3, 3, 3, 3, 1, False),  # pad > F - 1
        (3, 3, 3, 1, 2, False),  # stride 2
    ],
)
def test_both_ways_of_the_input_gradient_equal_col2im(C, FN, F, pad, stride, correlation):
    rng = np.random.default_rng(C * 100 + FN * 10 + pad)
    x_shape = (3, C, 9, 7)  # H != W; with stride 2 and pad 1: 5 × 4 outputs
    OH, OW = conv_output_shape(x_shape, F, F, stride, pad, "test")
    Wt, d = rng.standard_normal((FN, C, F, F)), rng.standard_normal((3 * OH * OW, FN))
    assert conv_kernels.by_correlation(Wt.shape, stride, pad) is correlation
    expected = book_col2im(d @ Wt.reshape(FN, -1), x_shape, F, F, stride, pad)
    np.testing.assert_allclose(conv_input_grad(d, Wt, x_shape, stride, pad), expected, rtol=1e-12, atol=1e-12)
    # and the other way too, where it applies, gives the same
    other = conv_kernels._input_grad_per_offset(d, Wt, x_shape, stride, pad, OH, OW)
    np.testing.assert_allclose(other, expected, rtol=1e-12, atol=1e-12)
    if stride == 1 and pad <= F - 1:
        turned = conv_kernels._input_grad_by_correlation(d, Wt, x_shape, pad, OH, OW)
        np.testing.assert_allclose(turned, expected, rtol=1e-12, atol=1e-12)


def test_the_correlation_way_keeps_float32():
    rng = np.random.default_rng(7)
    x_shape = (2, 8, 6, 6)
    Wt, d = rng.standard_normal((8, 8, 3, 3)), rng.standard_normal((2 * 36, 8))
    assert conv_kernels.by_correlation(Wt.shape, 1, 1)
    dx32 = conv_input_grad(d.astype(np.float32), Wt.astype(np.float32), x_shape, 1, 1)
    assert dx32.dtype == np.float32
    np.testing.assert_allclose(dx32, conv_input_grad(d, Wt, x_shape, 1, 1), rtol=1e-4, atol=1e-4)


# -- a few images at a time: im2col_dot, im2col_weight_grad, conv_input_grad in chunks ----------


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 owned threads"])
def owned(request, monkeypatch):
    """Run the block on 1 thread, or with layerwise owning 2 (chunks then go to the pool)."""
    from layerwise.kernels import threads

    monkeypatch.setattr(threads, "run_threads", lambda: (request.param, True))
    with threads.owned_threads():
        yield request.param


@given(
    geometries(max_kernel=3, max_out=4), SEEDS,
    st.sampled_from([1, 200, 2_000, 10**9]),  # chunk budget: one image per chunk .. the whole batch
)
def test_chunked_forward_and_weight_grad_equal_the_plain_products(geom, seed, budget):
    N, C, H, W, FH, FW, stride, pad = geom
    N += 3  # several images, so that small budgets make several chunks
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    FN = int(rng.integers(1, 4))
    col_W, b = rng.standard_normal((FH * FW * C, FN)), rng.standard_normal(FN)
    col = conv_kernels.im2col(x, FH, FW, stride, pad)
    d = rng.standard_normal((col.shape[0], FN))
    with _chunk_budget(budget):
        out = conv_kernels.im2col_dot(x, col_W, b, FH, FW, stride, pad)
        dW = conv_kernels.im2col_weight_grad(d, x, FH, FW, stride, pad)
    np.testing.assert_allclose(out, col @ col_W + b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dW, d.T @ col, rtol=1e-12, atol=1e-12)


def _chunk_budget(budget: int):
    """conv_chunk_bytes() returning ``budget`` inside the block."""
    from unittest import mock

    from layerwise.kernels import cache_sizes

    return mock.patch.object(cache_sizes, "conv_chunk_bytes", lambda: budget)


@pytest.mark.parametrize(("C", "FN", "pad", "stride"), [(4, 4, 1, 1), (4, 2, 2, 1), (2, 3, 1, 1), (3, 3, 1, 2)])
@pytest.mark.parametrize("budget", [1, 3_000, 10**9])
def test_chunked_passes_equal_the_plain_ones_on_owned_threads(owned, C, FN, pad, stride, budget):
    rng = np.random.default_rng(C + FN + pad + stride)
    x = rng.standard_normal((7, C, 9, 7)).astype(np.float32)  # float32 as in training; 7 images
    Wt, b = rng.standard_normal((FN, C, 3, 3)).astype(np.float32), rng.standard_normal(FN).astype(np.float32)
    col_W = Wt.transpose(0, 2, 3, 1).reshape(FN, -1).T
    col = conv_kernels.im2col(x, 3, 3, stride, pad)
    d = rng.standard_normal((col.shape[0], FN)).astype(np.float32)
    with _chunk_budget(budget):
        out = conv_kernels.im2col_dot(x, col_W, b, 3, 3, stride, pad)
        dW = conv_kernels.im2col_weight_grad(d, x, 3, 3, stride, pad)
        dx = conv_input_grad(d, Wt, x.shape, stride, pad)
    assert out.dtype == dW.dtype == dx.dtype == np.float32
    np.testing.assert_allclose(out, col @ col_W + b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dW, d.T @ col, rtol=1e-5, atol=1e-4)
    expected = book_col2im(d.astype(np.float64) @ Wt.reshape(FN, -1), x.shape, 3, 3, stride, pad)
    np.testing.assert_allclose(dx, expected, rtol=1e-5, atol=1e-5)


def test_the_chunks_hold_the_budget(owned):
    from layerwise.kernels import cache_sizes

    seen = []
    with mock_in_chunks(seen):
        conv_kernels.im2col_dot(np.zeros((10, 2, 5, 5)), np.zeros((18, 3)), np.zeros(3), 3, 3, 1, 1)
    (n, size), = seen
    per_image = 25 * 18 * 8  # col's bytes per image: 5×5 windows of 3×3×2 float64 values
    assert n == 10 and size == max(1, min(10, cache_sizes.conv_chunk_bytes() // per_image))


def mock_in_chunks(seen):
    from unittest import mock

    real = conv_kernels.in_chunks
    return mock.patch.object(conv_kernels, "in_chunks", lambda fn, n, size: seen.append((n, size)) or real(fn, n, size))


def test_an_empty_batch_gives_empty_products_and_a_zero_gradient():
    x, col_W = np.zeros((0, 2, 5, 5)), np.ones((18, 3))
    assert conv_kernels.im2col_dot(x, col_W, np.zeros(3), 3, 3, 1, 1).shape == (0, 3)
    np.testing.assert_array_equal(conv_kernels.im2col_weight_grad(np.zeros((0, 3)), x, 3, 3, 1, 1), np.zeros((3, 18)))


def test_im2col_weight_grad_names_a_d_of_the_wrong_shape():
    with pytest.raises(ShapeError, match=r"im2col_weight_grad: d has shape \(5, 3\), expected \(50, FN\)"):
        conv_kernels.im2col_weight_grad(np.zeros((5, 3)), np.zeros((2, 2, 5, 5)), 3, 3, 1, 1)


def test_the_chunked_kernels_name_wrong_shapes():
    x = np.zeros((2, 2, 5, 5))
    with pytest.raises(ShapeError, match=r"im2col_dot: col_W has shape \(9, 3\) and b \(3,\), expected \(18, FN\)"):
        conv_kernels.im2col_dot(x, np.zeros((9, 3)), np.zeros(3), 3, 3, 1, 1)
    with pytest.raises(ShapeError, match=r"im2col_dot"):
        conv_kernels.im2col_dot(np.zeros(5), np.zeros((18, 3)), np.zeros(3), 3, 3, 1, 1)
    with pytest.raises(ShapeError, match=r"im2col_weight_grad: d has shape \(\)"):
        conv_kernels.im2col_weight_grad(np.zeros(()), x, 3, 3, 1, 1)


@given(st.integers(0, 3000), st.integers(1, 80), st.sampled_from([np.float32, np.float64]), SEEDS)
def test_add_to_rows_adds_the_row_to_every_row_exactly(rows, width, dtype, seed):
    rng = np.random.default_rng(seed)
    out = rng.standard_normal((rows, width)).astype(dtype)
    row = rng.standard_normal(width).astype(dtype)
    expected = out + row
    conv_kernels.add_to_rows(out, row)
    np.testing.assert_array_equal(out, expected)


def test_add_to_rows_takes_the_wide_path_for_a_convolutions_chunk():
    """The wide view (rows of 1,024 values and the rows left over) on a chunk of DeepConvNet's
    second layer, 7,061 rows of 16: equal to the broadcast add, bit for bit."""
    rng = np.random.default_rng(0)
    out = rng.standard_normal((7061, 16)).astype(np.float32)
    row = rng.standard_normal(16).astype(np.float32)
    assert out.size >= conv_kernels.WIDE_ADD_MIN_ELEMENTS and 7061 % 64
    expected = out + row
    conv_kernels.add_to_rows(out, row)
    np.testing.assert_array_equal(out, expected)


def test_the_window_view_is_read_only_and_equals_the_sliding_window_view():
    """Each element of the view is one window row (FW pixels' channels) as a single value."""
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 6))
    for stride, pad in [(1, 0), (1, 1), (2, 1), (3, 1)]:
        OH, OW = conv_output_shape(x.shape, 3, 2, stride, pad)
        windows = conv_kernels._channels_last_windows(x, 3, 2, stride, pad, OH, OW)
        img = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))).transpose(0, 2, 3, 1)
        plain = np.lib.stride_tricks.sliding_window_view(img, (3, 2), axis=(1, 2))
        plain = plain[:, ::stride, ::stride][:, :OH, :OW].transpose(0, 1, 2, 4, 5, 3)
        assert windows.shape == (2, OH, OW, 3) and windows.dtype.itemsize == 2 * 3 * x.itemsize
        np.testing.assert_array_equal(np.ascontiguousarray(windows).view(x.dtype).reshape(plain.shape), plain)
        assert not windows.flags.writeable

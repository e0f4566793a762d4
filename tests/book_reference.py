"""Independent oracles the tests share: the book's im2col/col2im and Pooling written as the book
writes them, PyTorch's pooling, Hypothesis strategies for convolution geometries, and a bitwise
comparison that also sees the sign of zeros."""

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import assume
from hypothesis import strategies as st

SEEDS = st.integers(0, 2**32 - 1)


def book_im2col(x, FH, FW, stride=1, pad=0):
    N, C, H, W = x.shape
    OH, OW = (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((N, C, FH, FW, OH, OW), dtype=x.dtype)
    for y in range(FH):
        for x_ in range(FW):
            col[:, :, y, x_, :, :] = img[:, :, y : y + stride * OH : stride, x_ : x_ + stride * OW : stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * OH * OW, -1)


def book_col2im(col, x_shape, FH, FW, stride=1, pad=0):
    N, C, H, W = x_shape
    OH, OW = (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1
    col = col.reshape(N, OH, OW, C, FH, FW).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((N, C, H + 2 * pad + stride - 1, W + 2 * pad + stride - 1), dtype=col.dtype)
    for y in range(FH):
        for x_ in range(FW):
            img[:, :, y : y + stride * OH : stride, x_ : x_ + stride * OW : stride] += col[:, :, y, x_]
    return img[:, :, pad : H + pad, pad : W + pad]


@st.composite
def geometries(draw, max_kernel=4, max_out=4, max_pad=2):
    """(N, C, H, W, FH, FW, stride, pad) where the stride divides the padded span exactly."""
    FH, FW = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, max_pad))
    OH, OW = draw(st.integers(1, max_out)), draw(st.integers(1, max_out))
    H, W = (OH - 1) * stride + FH - 2 * pad, (OW - 1) * stride + FW - 2 * pad
    assume(H >= 1 and W >= 1)
    return draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W, FH, FW, stride, pad


def book_max_pool(x, ph, pw, stride):
    """The book's Pooling algorithm (im2col rows + np.argmax), as an independent oracle."""
    N, C, H, W = x.shape
    OH, OW = (H - ph) // stride + 1, (W - pw) // stride + 1
    rows = book_im2col(x, ph, pw, stride).reshape(-1, ph * pw)
    arg_max = np.argmax(rows, axis=1)
    out = np.max(rows, axis=1).reshape(N, OH, OW, C).transpose(0, 3, 1, 2)
    return out, arg_max


def book_max_pool_backward(dout, arg_max, x_shape, ph, pw, stride):
    d = dout.transpose(0, 2, 3, 1)
    dmax = np.zeros((d.size, ph * pw), dtype=dout.dtype)
    dmax[np.arange(arg_max.size), arg_max] = d.ravel()
    return book_col2im(dmax.reshape(d.size // x_shape[1], -1), x_shape, ph, pw, stride)


def torch_pool(kind, x, dout, ph, pw, stride, pad):
    tx = torch.tensor(x, requires_grad=True)
    if kind == "max":
        out = F.max_pool2d(tx, (ph, pw), stride, pad)
    else:
        out = F.avg_pool2d(tx, (ph, pw), stride, pad, count_include_pad=True)
    out.backward(torch.from_numpy(dout))
    return out.detach().numpy(), tx.grad.numpy()


def same(a: np.ndarray, b: np.ndarray) -> None:
    """Equal values, dtype, and sign of every zero (np.array_equal alone treats -0.0 == 0.0)."""
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))

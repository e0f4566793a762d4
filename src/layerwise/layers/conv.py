"""Convolution and pooling layers on NCHW images (the book's sections 7.4 and 7.5), in the
book's im2col formulation. The array work lives in ``kernels.conv`` and ``kernels.pool``, one
visible call away; these classes hold the parameters, check shapes and keep the caches."""

from __future__ import annotations

import numpy as np

from ..checks import check_dout, check_window, conv_output_shape
from ..errors import InputError, ShapeError
from ..kernels.caches import ones
from ..kernels.conv import conv_forward, conv_input_grad, conv_weight_grad, im2col
from ..kernels.pool import avg_pool, avg_pool_backward, is_channels_last, max_pool, max_pool_backward
from .base import Layer, book_attribute

__all__ = ["AvgPooling", "Convolution", "Pooling"]


class Convolution(Layer):
    """Convolution (section 7.4.3): cross-correlation, as in the book and every framework.

    W (FN, C, FH, FW), b (FN,), x (N, C, H, W) -> out (N, FN, OH, OW),
    OH = (H + 2·pad - FH) / stride + 1 (likewise OW).

    forward:  col = im2col(x),  col_W = W as a (C·FH·FW, FN) matrix,  out = col·col_W + b
    backward: with d = dout as (N·OH·OW, FN) rows,
              db = Σ_rows d,  dW = dᵀ·col (reshaped to W's shape),  dx = col2im(d·col_Wᵀ)

    ``W``, ``b``, ``dW``, ``db`` are the book's names; ``x`` and ``col_W`` the book's caches.
    Deliberate differences:
    - col's columns and col_W's rows are ordered (fh, fw, c), not (c, fh, fw) (the same when
      C == 1), the order ``kernels.conv`` fills fastest (its docstring says why); the weights
      and the results are the book's.
    - The products run a few images at a time, and training keeps ``x`` but not ``col``: col
      is FH·FW times larger than x, and made in cache-sized chunks it never leaves the cache
      (``kernels.conv.im2col_dot`` has the measurements). Backward makes col again, chunk by
      chunk, for dW. ``col`` is still there to look at, made on demand.
    - A stride-1 3×3 convolution with many channels may compute out, dW and dx by Winograd's
      F(2×2, 3×3) or F(4×4, 3×3) instead, where this machine measured it faster
      (``kernels.winograd``): the same sums, formed with fewer multiplications, equal up to
      float rounding. Training's forward then keeps x's transformed tiles for dW (while they
      fit ``kernels.cache_sizes.kept_bytes``).
    Set ``needs_input_grad = False`` on a network's first layer to skip dx. The output is a
    transposed view of the product, as in the book.
    """

    W = book_attribute("params", "W")
    b = book_attribute("params", "b")
    dW = book_attribute("grads", "W")
    db = book_attribute("grads", "b")

    def __init__(self, W: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0) -> None:
        super().__init__()
        W, b = np.asarray(W), np.asarray(b)
        if W.ndim != 4:
            raise ShapeError(f"Convolution: W must be 4-D (FN, C, FH, FW), got shape {W.shape}")
        if b.shape != (W.shape[0],):
            raise ShapeError(
                f"Convolution: b has shape {b.shape}, expected ({W.shape[0]},) for W {W.shape}"
            )
        if 0 in W.shape:
            raise ShapeError(f"Convolution: W has an empty axis, shape {W.shape}")
        check_window(W.shape[2], W.shape[3], stride, pad, "Convolution")
        self.stride, self.pad = int(stride), int(pad)
        self.params = {"W": W, "b": b}
        self.grads = {"W": np.zeros(W.shape, W.dtype), "b": np.zeros(b.shape, b.dtype)}
        self.needs_input_grad = True
        self.x: np.ndarray | None = None
        self.col_W: np.ndarray | None = None
        self._shown_col: np.ndarray | None = None  # col, once a reader asked for it
        self._tiles: dict[tuple, np.ndarray] | None = None  # Winograd's transformed x, kept by a forward for dW

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        x = self._input(x)
        W, b = self.params["W"], self.params["b"]
        FN, _, FH, FW = W.shape
        OH, OW = self._out_hw(x.shape)
        col_W = W.transpose(0, 2, 3, 1).reshape(FN, -1).T  # rows (fh, fw, c), like col's columns
        self._tiles = {} if train else None
        out = conv_forward(x, col_W, b, FH, FW, self.stride, self.pad, self._tiles)  # im2col(x)·col_W + b: kernels.conv
        self.x, self.col_W, self._shown_col = x, col_W, None
        return out.reshape(x.shape[0], OH, OW, FN).transpose(0, 3, 1, 2)

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        self._need(self.x)
        dout = np.asarray(dout)
        FN, C, FH, FW = self.params["W"].shape
        OH, OW = self._out_hw(self.x.shape)
        check_dout(self.name, dout, (self.x.shape[0], FN, OH, OW))
        # Rows (n, oh, ow) like col: free when dout has this layer's output layout (after ReLU
        # and Pooling), one copy when dout is C-contiguous NCHW.
        d = dout.transpose(0, 2, 3, 1).reshape(-1, FN)
        self.grads["b"] = np.dot(ones(d.shape[0], d.dtype), d)  # Σ_rows d, as 1ᵀ·d (kernels.caches)
        dW = conv_weight_grad(d, self.x, FH, FW, self.stride, self.pad, self._tiles)  # dᵀ·col: kernels.conv
        self._tiles = None  # the kept tiles go with the step
        self.grads["W"] = np.ascontiguousarray(dW.reshape(FN, FH, FW, C).transpose(0, 3, 1, 2))
        if not self.needs_input_grad:
            return None
        W = self.col_W.T.reshape(FN, FH, FW, C).transpose(0, 3, 1, 2)  # the W forward used
        return conv_input_grad(d, W, self.x.shape, self.stride, self.pad)  # col2im(d·col_Wᵀ)

    @property
    def col(self) -> np.ndarray | None:
        """The book's cache, im2col(x), made on demand for a reader (once per forward: the
        graph views read it on every request): training does not keep it
        (``kernels.conv.im2col_dot`` says why) but makes it again, in chunks, for dW."""
        if self.x is None:
            return None
        if self._shown_col is None:
            self._shown_col = im2col(self.x, *self.params["W"].shape[2:], self.stride, self.pad)
        return self._shown_col

    def _out_hw(self, x_shape: tuple[int, ...]) -> tuple[int, int]:
        _, C, FH, FW = self.params["W"].shape
        if len(x_shape) != 4:
            raise ShapeError(f"Convolution: input must be 4-D (N, C, H, W), got shape {x_shape}")
        if x_shape[1] != C:
            raise ShapeError(
                f"Convolution: input has {x_shape[1]} channels (x.shape={x_shape}) "
                f"but W expects {C} (W.shape={self.params['W'].shape})"
            )
        return conv_output_shape(x_shape, FH, FW, self.stride, self.pad, "Convolution")

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        OH, OW = self._out_hw(tuple(input_shape))
        return (input_shape[0], self.params["W"].shape[0], OH, OW)

    def workspace_size(self, input_shape: tuple[int, ...]) -> int:
        # The input and the output, which a predict chunk keeps in cache across the layer. Not
        # col: forward makes it a few images at a time whatever the batch (kernels.conv). Sized
        # by col, DeepConvNet's chunks on 2 threads were 18 images; by input and output, 83,
        # and 10,000 images at batch 1000 took 0.85 s instead of 0.97 (kernels.tuning).
        return int(np.prod(input_shape)) + int(np.prod(self.output_shape(input_shape)))

    def config(self) -> dict:
        FN, C, FH, FW = self.params["W"].shape
        return {
            "in_channels": int(C),
            "out_channels": int(FN),
            "kernel_size": [int(FH), int(FW)],
            "stride": self.stride,
            "pad": self.pad,
        }

    @classmethod
    def from_config(cls, config: dict, dtype: np.dtype | str = np.float32) -> Convolution:
        FH, FW = config["kernel_size"]
        shape = (config["out_channels"], config["in_channels"], FH, FW)
        return cls(
            np.zeros(shape, dtype=dtype),
            np.zeros(shape[0], dtype=dtype),
            stride=config.get("stride", 1),
            pad=config.get("pad", 0),
        )

    def __repr__(self) -> str:
        FN, C, FH, FW = self.params["W"].shape
        return (
            f"Convolution({C} -> {FN}, {FH}x{FW}, stride={self.stride}, pad={self.pad}, "
            f"dtype={self.params['W'].dtype})"
        )


class _Pool(Layer):
    """What max and average pooling share: the window geometry and its checks."""

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        super().__init__()
        check_window(pool_h, pool_w, stride, pad, self.name)
        if 2 * pad > min(pool_h, pool_w):
            # A window made only of padding would have no input to take (PyTorch's rule too).
            raise InputError(
                f"{self.name}: pad {pad} is more than half the {pool_h}x{pool_w} window"
            )
        self.pool_h, self.pool_w = int(pool_h), int(pool_w)
        self.stride, self.pad = int(stride), int(pad)
        self.x_shape: tuple[int, ...] | None = None

    def _out_shape(self, x_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(x_shape) != 4:
            raise ShapeError(f"{self.name}: input must be 4-D (N, C, H, W), got shape {x_shape}")
        OH, OW = conv_output_shape(
            x_shape, self.pool_h, self.pool_w, self.stride, self.pad, self.name
        )
        return (x_shape[0], x_shape[1], OH, OW)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return self._out_shape(tuple(input_shape))

    def config(self) -> dict:
        return {
            "pool_h": self.pool_h, "pool_w": self.pool_w, "stride": self.stride, "pad": self.pad
        }


class Pooling(_Pool):
    """Max pooling over pool_h×pool_w windows moved by ``stride``, with -inf padding.

    forward: out[n, c, i, j] = max of the window at (i·stride, j·stride) of the padded x,
             keeping ``arg_max``: the max's position inside its window (0 .. pool_h·pool_w-1,
             row by row; the book's name and meaning).
    backward: each dout[n, c, i, j] goes to the position ``arg_max`` names (overlapping
             windows add up); every other position gets 0.

    Ties: the FIRST position of the window, row by row, takes the whole gradient, as the
    book's np.argmax does (and PyTorch's CPU kernel). Padding is -inf, so it never wins a
    window; the book's Pooling forgets ``pad`` when it sizes its output and crashes with
    pad > 0. Windows that tile the input (stride == pool_h == pool_w, pad == 0) take a fast
    path in backward (see ``kernels.pool.max_pool_backward``). Caches: ``arg_max`` and the
    input's shape (not the input itself). out, arg_max and dx have the input's memory layout
    (channels-last after a Convolution), which saves every pass a transpose.

    Evaluation mode (``train=False``) computes the max alone, a quarter of the work, and keeps
    a reference to x instead: a backward after it (a saliency map, say) finds ``arg_max``
    from x then, the same positions a training-mode forward would have recorded.
    """

    def __init__(self, pool_h: int, pool_w: int, stride: int = 2, pad: int = 0) -> None:
        super().__init__(pool_h, pool_w, stride, pad)
        self.arg_max: np.ndarray | None = None
        self._x: np.ndarray | None = None
        self._channels_last = False

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        x = self._input(x)
        self._out_shape(x.shape)
        out, self.arg_max = max_pool(x, self.pool_h, self.pool_w, self.stride, self.pad, with_arg_max=train)
        self._x = None if train else x
        self.x_shape = x.shape
        # dx will take x's memory layout: channels-last after a Convolution (see backward).
        self._channels_last = is_channels_last(x)
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self.arg_max is None and self._x is not None:
            _, self.arg_max = max_pool(self._x, self.pool_h, self.pool_w, self.stride, self.pad)
            self._x = None
        self._need(self.arg_max)
        dout = np.asarray(dout)
        check_dout(self.name, dout, self._out_shape(self.x_shape))
        return max_pool_backward(
            dout, self.arg_max, self.x_shape, self.pool_h, self.pool_w, self.stride, self.pad,
            channels_last=self._channels_last,
        )


class AvgPooling(_Pool):
    """Average pooling over pool_h×pool_w windows moved by ``stride``.

    forward: out[n, c, i, j] = (1 / (pool_h·pool_w)) Σ window at (i·stride, j·stride).
    backward: every position of a window receives dout / (pool_h·pool_w); overlaps add.

    Zero padding COUNTS in the average (the divisor is always pool_h·pool_w), PyTorch's
    default ``count_include_pad=True``: a corner window with pad 1 averages its real values
    with zeros. Only the input's shape is cached.
    """

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        x = self._input(x)
        self._out_shape(x.shape)
        self.x_shape = x.shape
        return avg_pool(x, self.pool_h, self.pool_w, self.stride, self.pad)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._need(self.x_shape)
        dout = np.asarray(dout)
        check_dout(self.name, dout, self._out_shape(self.x_shape))
        return avg_pool_backward(
            dout, self.x_shape, self.pool_h, self.pool_w, self.stride, self.pad
        )

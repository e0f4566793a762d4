"""Runs of layers computed as one: in a training step a Convolution, the Relu after it and the
max Pooling after that (``kernels.fused``); in evaluation a Relu over the new output of the
Affine or Convolution before it, in place (``inference_forward``).

Plain expression (checked in tests/models/test_fusion.py): ``ConvReluPool(conv, relu,
pool).forward(x)`` is ``pool.forward(relu.forward(conv.forward(x)))`` and leaves the
three layers' caches as those calls do (``x`` and ``col_W``, ``mask``, ``arg_max``); its
``backward(dout)`` is ``conv.backward(relu.backward(pool.backward(dout)))`` and sets the
convolution's grads as that does. Equal to float rounding (see ``kernels.fused``).

Only in training mode (evaluation keeps other caches, see ``Relu`` and ``Pooling``), for
the book's layer classes themselves with their own forward and backward, and for windows
that tile the convolution's output; otherwise the three layers run as layers. A convolution
that computes by Winograd on this machine (``kernels.conv.use_winograd``) runs as its layer,
and the ReLU and the pooling after it together (``kernels.fused.relu_pool``).

Why: the run's arrays of the convolution's output size are made and read once instead of six
times, and its pooling reads dense blocks (``kernels.fused`` has the measurements).
SimpleConvNet's first three layers are such a run. DeepConvNet's three runs have
convolutions by Winograd on the Zen 4 VM (with SkylakeX and with Haswell kernels); there the
ReLU and the pooling together took 0.75-0.79 of the layers' time, 1.2-1.5 ms of a training
step, and the Trainer's steps 0.98 / 0.97 of the time on 1 / 2 threads with SkylakeX kernels,
0.93 / 1.01 with Haswell's (benchmarks/results/2026-12-06-kept-tiles/relu_pool-*.txt,
before_after-relu-pool-*.txt).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..checks import check_dout
from ..kernels.activations import relu_in_place
from ..kernels.cache_sizes import core_cache_bytes, kept_bytes
from ..kernels.conv import use_winograd
from ..kernels.fused import (
    Forward,
    ReluPool,
    applies,
    conv_relu_pool,
    conv_relu_pool_backward,
    relu_pool,
    relu_pool_backward,
)
from ..kernels.pool import is_channels_last
from ..layers import Affine, Convolution, Layer, Pooling, Relu

__all__ = ["ConvReluPool", "inference_forward", "steps_from", "training_steps"]


class ConvReluPool:
    """A Convolution, the Relu after it and the max Pooling after that, as one step."""

    def __init__(self, conv: Convolution, relu: Relu, pool: Pooling) -> None:
        self.conv, self.relu, self.pool = conv, relu, pool
        #: The last fused forward's caches (x, mask, arg_max) and all it gave, for the backward.
        self._made: tuple[np.ndarray, np.ndarray, np.ndarray, Forward | ReluPool] | None = None

    @property
    def layers(self) -> tuple[Convolution, Relu, Pooling]:
        return self.conv, self.relu, self.pool

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        conv, relu, pool = self.conv, self.relu, self.pool
        x = conv._input(x)
        if not train or not self._tiled(x):
            return pool.forward(relu.forward(conv.forward(x, train), train), train)
        if not self._fused(x):  # the convolution (or its dW) by Winograd: the ReLU and the pooling together
            y = conv.forward(x, train)
            made = relu_pool(y, pool.pool_h)
            self._made = (x, made.mask, made.arg_max, made)
            relu.mask, relu.x = made.mask, None
            pool.arg_max, pool._x, pool.x_shape, pool._channels_last = made.arg_max, None, y.shape, is_channels_last(y)
            return made.out
        W, b = conv.params["W"], conv.params["b"]
        FN, _, FH, FW = W.shape
        OH, OW = conv._out_hw(x.shape)  # a bad x reported as the Convolution would
        col_W = W.transpose(0, 2, 3, 1).reshape(FN, -1).T  # rows (fh, fw, c), as Convolution's
        keep_cols = x.shape[0] * OH * OW * (col_W.shape[0] + 1) * x.itemsize <= kept_bytes()
        made = conv_relu_pool(x, col_W, b, FH, FW, conv.stride, conv.pad, pool.pool_h, keep_cols)
        self._made = (x, made.mask, made.arg_max, made)
        relu.mask, pool.arg_max = made.mask, made.arg_max
        conv.x, conv.col_W, conv._shown_col, conv._tiles = x, col_W, None, None  # no Winograd tiles for this x
        relu.x = None
        pool._x, pool.x_shape = None, (x.shape[0], FN, OH, OW)
        pool._channels_last = FN > 1 and OH * OW > 1  # the layout the Convolution's output has
        return made.out

    def backward(self, dout: np.ndarray) -> np.ndarray | None:
        conv, relu, pool = self.conv, self.relu, self.pool
        made, self._made = self._made, None  # the kept cols go with the step
        if made is None or not all(a is b for a, b in zip((conv.x, relu.mask, pool.arg_max), made, strict=False)):
            # forward ran as layers, or a layer ran forward again since: the layers' own backward
            return conv.backward(relu.backward(pool.backward(dout)))
        dout = np.asarray(dout)
        pool._need(pool.arg_max)
        check_dout(pool.name, dout, pool._out_shape(pool.x_shape))
        if isinstance(made[3], ReluPool):
            dx = relu_pool_backward(dout, made[3].passed, pool.arg_max, pool.x_shape, pool.pool_h, pool._channels_last)
            return conv.backward(dx)
        FN, C, FH, FW = conv.params["W"].shape
        W = conv.col_W.T.reshape(FN, FH, FW, C).transpose(0, 3, 1, 2)  # the W forward used
        dW, db, dx = conv_relu_pool_backward(dout, conv.x, W, made[3].passed, pool.arg_max, conv.stride, conv.pad,
                                             pool.pool_h, conv.needs_input_grad, made[3].cols)
        conv.grads["W"] = np.ascontiguousarray(dW.reshape(FN, FH, FW, C).transpose(0, 3, 1, 2))
        conv.grads["b"] = db
        return dx

    def _tiled(self, x: np.ndarray) -> bool:
        """Float values, and pooling windows that tile the convolution's output."""
        conv = self.conv
        W = conv.params["W"]
        return np.result_type(x, W).kind == "f" and applies(x.shape, W.shape, conv.stride, conv.pad, self.pool.pool_h)

    def _fused(self, x: np.ndarray) -> bool:
        """The convolution computes by im2col here, so all three layers run together."""
        conv = self.conv
        W = conv.params["W"]
        dtype = np.result_type(x, W)
        return (
            use_winograd(x, W.shape, conv.stride, conv.pad, dtype) is None
            and use_winograd(x, W.shape, conv.stride, conv.pad, dtype, "weight gradient") is None
        )


def _plain(layer: Layer, cls: type) -> bool:
    """``layer`` is exactly ``cls``, with the class's own forward and backward."""
    own = vars(layer)
    return type(layer) is cls and "forward" not in own and "backward" not in own


def training_steps(layers: Sequence[Layer]) -> list[Layer | ConvReluPool]:
    """``layers`` with every Convolution, Relu, Pooling run whose pooling tiles (stride equal
    to its square window, no padding) as one ``ConvReluPool``."""
    steps: list[Layer | ConvReluPool] = []
    k = 0
    while k < len(layers):
        run = layers[k : k + 3]
        if (len(run) == 3 and _plain(run[0], Convolution) and _plain(run[1], Relu) and _plain(run[2], Pooling)
                and run[2].pool_h == run[2].pool_w == run[2].stride and run[2].pad == 0):
            steps.append(ConvReluPool(*run))
            k += 3
        else:
            steps.append(layers[k])
            k += 1
    return steps


def steps_from(steps: Sequence[Layer | ConvReluPool], first: int) -> list[Layer | ConvReluPool]:
    """The steps that begin at layer index ``first`` or after (a run is never cut: its
    Relu and Pooling have no parameters, and ``first`` is a layer with some)."""
    kept, index = [], 0
    for step in steps:
        if index >= first:
            kept.append(step)
        index += len(step.layers) if isinstance(step, ConvReluPool) else 1
    return kept


def inference_forward(layers: Sequence[Layer], x: np.ndarray) -> np.ndarray:
    """``for layer in layers: x = layer.forward(x, train=False)``, with each Relu that follows
    an Affine or a Convolution (the book's classes themselves, with their own forward) taking
    the maximum over that layer's output in place (``kernels.activations.relu_in_place``; its
    docstring has the measured reason) when the output is larger than the core's own cache
    (``cache_sizes.core_cache_bytes``). Those layers' outputs are always new arrays, so nothing
    the caller holds changes. The Relu then keeps the overwritten array as its ``x``:
    ``max(x, 0) <= 0`` exactly where ``x <= 0``, so a backward after it masks the same
    positions as after the layer's own forward.

    Why only then: an output that fits the core's cache gains nothing in place (a new array
    of its size is in cache too), and on 2 threads, written half by BLAS's other thread, lost:
    784-512-512-10 at batch 100 (100 x 512 float32, 200 KB an output) took 1.017 of the time
    in place, 784-50-10 at batch 100 1.033 (benchmarks/results/2026-12-06-relu-in-place/
    before_after-skylakex.txt)."""
    in_place_bytes, previous = core_cache_bytes(), None
    for layer in layers:
        if type(layer) is Relu and x.nbytes > in_place_bytes and _over_new_output(previous, layer):
            x = relu_in_place(x)
            layer.x, layer.mask = x, None  # as Relu.forward(train=False) leaves them
        else:
            x = layer.forward(x, train=False)
        previous = layer
    return x


def _over_new_output(previous: Layer | None, relu: Relu) -> bool:
    """``relu`` may overwrite its input in place: it comes right after an Affine or a
    Convolution, and all three are the classes themselves (their outputs are new arrays)."""
    return (previous is not None and (_plain(previous, Affine) or _plain(previous, Convolution))
            and _plain(relu, Relu))


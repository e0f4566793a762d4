"""The benchmarked networks, and the matrix products one training step of each performs.

Each network is built by layerwise (so the initial weights come from layerwise's own
initialisers); the PyTorch twin copies those weights (see ``torch_nets.py``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from layerwise.layers import Affine
from layerwise.models import DeepConvNet, MultiLayerNet, Sequential, SimpleConvNet, TwoLayerNet


@dataclass(frozen=True)
class NetSpec:
    """One benchmark configuration: architecture, optimizer, batch size."""

    key: str
    title: str
    build: Callable[[int], Sequential]  # seed -> float32 model
    optimizer: str  # a layerwise.optim.make_optimizer name
    lr: float
    batch_size: int
    flatten: bool  # (N, 784) inputs, else (N, 1, 28, 28)
    #: Train on the first this many training images ("epoch" = that many / batch_size steps):
    #: a whole epoch of DeepConvNet is ~1 minute per implementation. None: all 60,000.
    train_images: int | None = None


NETS: dict[str, NetSpec] = {
    spec.key: spec
    for spec in (
        NetSpec(
            "mlp-small", "784-50-10 MLP (std 0.01), SGD lr 0.1, batch 100",
            lambda seed: TwoLayerNet(784, 50, 10, weight_init_std=0.01, seed=seed, dtype=np.float32),
            "sgd", 0.1, 100, True,
        ),
        NetSpec(
            "mlp-wide", "784-512-512-10 MLP (He), Adam lr 1e-3, batch 128",
            lambda seed: MultiLayerNet(784, [512, 512], 10, weight_init_std="relu", seed=seed,
                                        dtype=np.float32),
            "adam", 1e-3, 128, True,
        ),
        NetSpec(
            "convnet", "SimpleConvNet (30 5x5, pool 2, 100, 10), Adam lr 1e-3, batch 100",
            lambda seed: SimpleConvNet((1, 28, 28), {"filter_num": 30, "filter_size": 5}, 100, 10, seed=seed,
                                        dtype=np.float32),
            "adam", 1e-3, 100, False,
        ),
        NetSpec(
            "deep-convnet", "DeepConvNet (the book's 8.1: 6 conv 3x3, 3 pool, 50, 10; inverted dropout), Adam lr "
            "1e-3, batch 100, an \"epoch\" of 200 steps (20,000 images)",
            lambda seed: DeepConvNet(seed=seed, dropout_mode="inverted", final_dropout=False, dtype=np.float32),
            "adam", 1e-3, 100, False, train_images=20_000,
        ),
    )
}
#: What ``python -m benchmarks`` measures unless --nets says otherwise (DeepConvNet takes
#: ~15 minutes more: ``--nets deep-convnet``).
DEFAULT_NETS = ("mlp-small", "mlp-wide", "convnet")


@dataclass(frozen=True)
class Gemm:
    """One matrix product (M, K) @ (K, N); ``a_t``/``b_t``: the operand is a transposed view."""

    what: str
    M: int
    K: int
    N: int
    a_t: bool = False
    b_t: bool = False
    #: The product may also run as this many products over equal parts of the batch (rows of
    #: the result, or for a weight gradient the inner sum), as ``kernels.conv`` runs a
    #: convolution's in cache-sized chunks; ``gemm_floor`` takes the faster way.
    chunks: int = 1

    def chunk(self) -> Gemm:
        """One of the ``chunks`` products: the batch axis (M, or K when M is not it) divided."""
        if self.what.endswith("dW"):
            return Gemm(self.what, self.M, -(-self.K // self.chunks), self.N, self.a_t, self.b_t)
        return Gemm(self.what, -(-self.M // self.chunks), self.K, self.N, self.a_t, self.b_t)

    @property
    def flops(self) -> int:
        return 2 * self.M * self.K * self.N


def step_gemms(model: Sequential, batch: int, sample_shape: tuple[int, ...]) -> list[Gemm]:
    """The matrix products of one training step (forward + backward) on ``batch`` samples.

    Affine (D -> O): x·W (B, D, O); dW = xᵀ·dout (D, B, O); dx = dout·Wᵀ (B, O, D) unless the
    layer is the first one (``needs_input_grad`` False). Convolution with R = B·OH·OW output
    positions and K = C·FH·FW: col·col_W (R, K, FN); dW = doutᵀ·col (FN, R, K); dx (R, FN, K).
    Everything else (activations, pooling, im2col copies, the optimizer) is not a GEMM. A
    convolution's products note the chunks ``kernels.conv`` would cut the batch into.
    """
    from layerwise.kernels.conv import by_correlation, images_per_chunk
    from layerwise.layers.conv import Convolution

    gemms: list[Gemm] = []
    shape = (batch, *sample_shape)
    for layer in model:
        out_shape = layer.output_shape(shape)
        if isinstance(layer, Affine):
            D, O = layer.params["W"].shape
            gemms.append(Gemm(f"{layer!r} forward", batch, D, O))
            gemms.append(Gemm(f"{layer!r} dW", D, batch, O, a_t=True))
            if layer.needs_input_grad:
                gemms.append(Gemm(f"{layer!r} dx", batch, O, D, b_t=True))
        elif isinstance(layer, Convolution):
            FN, C, FH, FW = layer.params["W"].shape
            R, K = batch * out_shape[2] * out_shape[3], C * FH * FW
            itemsize = layer.params["W"].dtype.itemsize
            chunks = -(-batch // images_per_chunk(R // batch * K * itemsize, batch))
            gemms.append(Gemm(f"{layer!r} forward", R, K, FN, b_t=True, chunks=chunks))
            gemms.append(Gemm(f"{layer!r} dW", K, R, FN, a_t=True, chunks=chunks))  # colᵀ·d, as kernels.conv
            if layer.needs_input_grad:
                # conv_input_grad's chunks hold the unfolded dout (correlation) or the per-offset
                # products, a different size from col
                per_image = (math.prod(shape[1:]) * FH * FW * FN // C
                             if by_correlation(layer.params["W"].shape, layer.stride, layer.pad) else R // batch * K)
                dx_chunks = -(-batch // images_per_chunk(per_image * itemsize, batch))
                gemms.append(Gemm(f"{layer!r} dx", R, FN, K, chunks=dx_chunks))
        shape = out_shape
    return gemms


def step_copies(model: Sequential, batch: int, sample_shape: tuple[int, ...],
                forward_only: bool = False) -> list[tuple[str, int]]:
    """The arrays one training step must at least write once and read once besides its GEMMs'
    operands, as (what, values): every layer's output (forward) and input gradient (backward;
    not the first layer's), and for a Convolution its unfolded input ``col`` (R x K) and, when
    layerwise computes dx by correlation (``kernels.conv.by_correlation``), the unfolded dout.
    A lower bound on the memory traffic of any im2col-based step. ``forward_only``: those of
    a prediction (the outputs and each ``col``)."""
    from layerwise.kernels.conv import by_correlation
    from layerwise.layers.conv import Convolution

    copies: list[tuple[str, int]] = []
    shape = (batch, *sample_shape)
    for index, layer in enumerate(model):
        out_shape = layer.output_shape(shape)
        copies.append((f"{layer!r} out", math.prod(out_shape)))
        if index > 0 and not forward_only:
            copies.append((f"{layer!r} dx", math.prod(shape)))
        if isinstance(layer, Convolution):
            FN, C, FH, FW = layer.params["W"].shape
            copies.append((f"{layer!r} col", batch * out_shape[2] * out_shape[3] * C * FH * FW))
            if (layer.needs_input_grad and not forward_only
                    and by_correlation(layer.params["W"].shape, layer.stride, layer.pad)):
                copies.append((f"{layer!r} dx col", math.prod(shape) * FH * FW * FN // C))
        shape = out_shape
    return copies


def copy_floor(copies: list[tuple[str, int]], steps: float, reps: int, threads: int = 1,
               dtype: np.dtype = np.float32, batch: int = 1) -> float:
    """Seconds that ``steps`` steps would take doing nothing but one ``np.copyto`` of each of
    ``copies`` (a read and a write of each array), on ``threads`` Python threads in equal parts
    (NumPy's copies release the GIL) or on one, whichever is faster; the best of 3 x ``reps``
    steps, scaled to ``steps``.

    An array of ``batch`` samples larger than a convolution's chunk (``kernels.conv``'s
    ``images_per_chunk``) is copied as that many chunks of the chunk's size, each the same
    cache-sized pair of buffers: the traffic of an implementation that makes and uses its
    arrays a few images at a time, in cache. (Copying DeepConvNet's step as whole arrays took
    1.4x as long, 16.1 against 11.5 ms: several are larger than the last-level cache;
    benchmarks/results/2026-12-05-floors/copy_floor_ways-skylakex.txt.)
    """
    import time
    from concurrent.futures import ThreadPoolExecutor

    from layerwise.kernels.conv import images_per_chunk

    itemsize = np.dtype(dtype).itemsize
    work: list[tuple[np.ndarray, np.ndarray]] = []  # (src, dst) parts in step order, each copied once
    for _, n in copies:
        sizes = [n]
        if batch > 1:  # chunks of whole samples, the last one smaller
            per_sample = n // batch
            images = images_per_chunk(per_sample * itemsize, batch)
            sizes = [per_sample * images] * (batch // images) + [per_sample * (batch % images)] * (batch % images > 0)
        buffers = {size: (np.ones(size, dtype), np.empty(size, dtype)) for size in set(sizes)}
        for size in sizes:
            src, dst = buffers[size]
            bounds = [k * size // threads for k in range(threads + 1)]
            work += [(src[lo:hi], dst[lo:hi]) for lo, hi in itertools.pairwise(bounds)]

    def run(part_index: int) -> None:
        for src, dst in work[part_index::threads]:
            np.copyto(dst, src)

    def serial() -> None:
        for src, dst in work:
            np.copyto(dst, src)

    def best_seconds(step: Callable[[], None]) -> float:
        step()
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(reps):
                step()
            best = min(best, (time.perf_counter() - start) / reps)
        return best

    if threads == 1:
        return best_seconds(serial) * steps
    # The faster of the copies split across the threads and all on one: a step of small arrays
    # is quicker on one thread than handed to a pool (~50 us a step here: 784-50-10's 2-thread
    # copy floor in results/2026-12-05-floors/{skylakex,haswell} and before was mostly that).
    with ThreadPoolExecutor(threads) as pool:
        split = best_seconds(lambda: list(pool.map(run, range(threads))))
    return min(split, best_seconds(serial)) * steps


def epoch_flops(model: Sequential, n: int, batch: int, sample_shape: tuple[int, ...]) -> float:
    """GEMM FLOPs of one epoch of ``n`` samples (the last partial batch counted pro rata)."""
    per_step = sum(g.flops for g in step_gemms(model, batch, sample_shape))
    return per_step * n / batch


def inference_flops(model: Sequential, n: int, sample_shape: tuple[int, ...]) -> float:
    """GEMM FLOPs of predicting ``n`` samples (the forward products only)."""
    return sum(g.flops for g in step_gemms(model, n, sample_shape) if g.what.endswith("forward"))


def gemm_floor(gemms: list[Gemm], steps: float, reps: int, dtype: np.dtype = np.float32) -> float:
    """Seconds that ``steps`` training steps would take if they did nothing but their GEMMs.

    Each product runs through ``np.matmul(..., out=)`` on preallocated operands of the right
    shapes and layouts (transposed views where the layer uses one), one after the other as in
    a step, ``reps`` steps, best of 3 rounds per product. A product with ``chunks`` is also
    timed as one of its chunks, run over and over so that its operands are in cache, as
    ``kernels.conv`` makes them just before it multiplies; the faster of the whole product and
    ``chunks`` times a chunk counts (a whole batch's product with few output columns runs
    slower than the same product in cache-sized chunks: DeepConvNet's 16-channel layer did
    100 against 166 GFLOP/s with SkylakeX kernels). A product (or chunk) whose batch axis is
    long enough is also timed in blocks of rows of each size ``kernels.blocks`` may take, as
    one stacked ``np.matmul`` (summed over the blocks for a weight gradient), and the fastest
    counts (OpenBLAS's SkylakeX kernels run SimpleConvNet's convolution products 1.6-1.8x
    faster so). The sum per step is scaled to ``steps``.
    """
    import time

    from layerwise.kernels.blocks import MIN_ROWS, _inner_in_blocks, _rows_in_blocks
    from layerwise.kernels.tuning import BLOCK_ROWS

    rng = np.random.default_rng(0)

    def operands(g: Gemm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        a = rng.standard_normal((g.K, g.M) if g.a_t else (g.M, g.K)).astype(dtype)
        b = rng.standard_normal((g.N, g.K) if g.b_t else (g.K, g.N)).astype(dtype)
        return a.T if g.a_t else a, b.T if g.b_t else b, np.empty((g.M, g.N), dtype=dtype)

    def in_blocks(g: Gemm, a: np.ndarray, b: np.ndarray, out: np.ndarray, rows: int) -> Callable[[], None]:
        """The product ``a @ b`` in blocks of ``rows`` along the batch axis, as ``kernels.blocks``
        runs it: the rows of a, or for a weight gradient (a transposed view) its inner axis."""
        if g.what.endswith("dW"):
            return lambda: _inner_in_blocks(a.T, b, rows)
        return lambda: _rows_in_blocks(a, b, out, rows)

    def ways(g: Gemm) -> list[Callable[[], None]]:
        """The product whole, and in each block size its batch axis is long enough for."""
        a, b, out = operands(g)
        batch = g.K if g.what.endswith("dW") else g.M
        found: list[Callable[[], None]] = [lambda: np.matmul(a, b, out=out)]
        if batch >= MIN_ROWS:
            found += [in_blocks(g, a, b, out, rows) for rows in BLOCK_ROWS if rows and rows <= batch // 2]
        return found

    def timed(work: list[Callable[[], None]], repeat: int) -> list[float]:
        """Best seconds of each product over 3 rounds of ``repeat`` passes through ``work``."""
        for run in work:  # warm up: first-touch page faults, BLAS thread start
            run()
        best = [math.inf] * len(work)
        for _ in range(3):
            spent = [0.0] * len(work)
            for _ in range(repeat):
                for k, run in enumerate(work):
                    start = time.perf_counter()
                    run()
                    spent[k] += time.perf_counter() - start
            best = [min(x, t / repeat) for x, t in zip(best, spent, strict=True)]
        return best

    # Every way of every product in one list, in step order, timed together as a step runs them.
    work, owner = [], []
    for k, g in enumerate(gemms):
        found = ways(g)
        work += found
        owner += [k] * len(found)
    per_step = [math.inf] * len(gemms)
    for k, seconds in zip(owner, timed(work, reps), strict=True):
        per_step[k] = min(per_step[k], seconds)
    for k, g in enumerate(gemms):
        if g.chunks > 1:
            per_step[k] = min(per_step[k], g.chunks * min(timed(ways(g.chunk()), reps)))
    return sum(per_step) * steps

"""Convolution's Winograd fast path: F(2×2, 3×3) and F(4×4, 3×3) for stride-1 3×3
convolutions (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).

Plain expression (checked in tests/kernels/test_winograd.py): ``winograd_conv(x, W, pad)`` is
``conv.im2col(x, 3, 3, 1, pad) @ col_W`` with ``col_W`` W's (fh, fw, c) rows: the same sums,
formed another way, so equal up to float rounding.

How: each m×m block of outputs (``block`` m = 2 or 4) of one filter g (3×3) on one t×t input
tile d (t = m + 2, tiles m apart) is Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, t² multiplications instead
of 9·m² (16 for 4 outputs, 36 for 16). Summed over the input channels, the t² elementwise
products become t² matrix products, one per position k of the transformed tile:
M_k (tiles, FN) = V_k (tiles, C) · U_k (C, FN), V = Bᵀ d B of every tile, U = G g Gᵀ of
every filter. The transforms are products with the small matrices Bᵀ,
Aᵀ and A, or sums and differences of slices, whichever the machine runs faster
(``TRANSFORMS``), a few images at a time so that V and M stay in the core's own cache.

Why: the products are 2.25× (F(2×2)) or 4× (F(4×4)) fewer multiply-adds, and DeepConvNet's
products are most of its time. F(4×4)'s V and M are also 0.56× F(2×2)'s size (2.25 against 4
transformed values an output), so all its passes move less: DeepConvNet's layers' forwards
and input gradients took 0.69-0.82 of F(2×2)'s time, except where 14 output rows leave the
last tiles half cropped (0.98-1.06; 100 images, 1 thread, Zen 4 VM, SkylakeX kernels,
benchmarks/results/2026-12-05-winograd-4x4/ways-skylakex.txt; Haswell kernels 0.66-0.71 and
0.93-0.94, ways-haswell.txt). Its price is rounding: its matrices hold 1/15 to 8 where
F(2×2)'s hold 0, ±1/2 and ±1, and its float32 results were 1.1-2.7e-6 of the largest value
away from the exact sums, against im2col's 4.1-6.8e-7 and F(2×2)'s 1.8-3.8e-7 (same files);
in float64 all ways agree to ~1e-14. DeepConvNet trained with it stayed within 0.31-0.44
points of PyTorch's test accuracy (means over 3 seeds, benchmarks/README.md).
With the transforms' passes over V and M, the way pays more the more channels there are
(ms for 100 images, 1 thread, Zen 4 VM, SkylakeX kernels, im2col_dot / Winograd: C16->16
28×28 7.3 / 6.8, C32->32 14×14 pad 2 6.7 / 5.2, C32->64 8×8 2.8 / 2.0, C64->64 8×8 5.6 / 3.6;
benchmarks/results/2026-12-05-winograd/winograd_ways-skylakex.txt; with the transforms as
products since, 0.76-0.90 of those Winograd times, benchmarks/results/2026-12-05-winograd-blas/
transform_ways-skylakex.txt). Where it pays depends on
the machine's products against its memory (the family-26 VM's products ran 2.5× faster than
Zen 4's), so ``kernels.conv`` asks ``kernels.tuning.conv_way``, which measures each shape
once on the machine and keeps the answer.
"""

from __future__ import annotations

import functools
import threading

import numpy as np

from . import cache_sizes
from .threads import in_chunks, sum_in_chunks

__all__ = [
    "BLOCKS", "TRANSFORMS", "applies", "filter_transform", "kept_filter_transform", "tile_key", "tiles_bytes",
    "winograd_conv", "winograd_weight_grad",
]

#: F(2×2, 3×3)'s matrices: B for the input tiles (as Bᵀ), G for the filters, A for the outputs
#: (as Aᵀ), from the interpolation points 0, 1, -1 (and ∞).
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])
#: F(4×4, 3×3)'s, from the points 0, 1, -1, 1/2, -2 (and ∞): Aᵀ's columns are the points'
#: powers, G's rows their powers over Π(p - q), Bᵀ what makes the identity exact (checked in
#: tests/kernels/test_winograd.py). Lavin's points 0, ±1, ±2 put one tile's float32 result 1.5×
#: as far from the exact sums (mean max error over 2,000 random tiles: 7.9e-7 against 5.2e-7).
B_T_4 = np.array([
    [1, -3 / 2, -2, 3 / 2, 1, 0], [0, -1, 1 / 2, 5 / 2, 1, 0], [0, 1, -5 / 2, 1 / 2, 1, 0],
    [0, -2, -1, 2, 1, 0], [0, 1 / 2, -1, -1 / 2, 1, 0], [0, 1, -3 / 2, -2, 3 / 2, 1],
])
G_4 = np.array([
    [1, 0, 0], [1 / 3, 1 / 3, 1 / 3], [-1 / 3, 1 / 3, -1 / 3],
    [-16 / 15, -8 / 15, -4 / 15], [1 / 15, -2 / 15, 4 / 15], [0, 0, 1],
])
A_T_4 = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 1 / 2, -2, 0], [0, 1, 1, 1 / 4, 4, 0], [0, 1, -1, 1 / 8, -8, 1]])
#: The output blocks m (F(m×m, 3×3)) there are matrices for, each with (Bᵀ, G, Aᵀ).
BLOCKS = {2: (B_T, G, A_T), 4: (B_T_4, G_4, A_T_4)}


#: The two ways the tiles' transforms compute, the same sums: ``"products"``, each direction one
#: BLAS product with the small matrix (``_input_transform``: why), or ``"sums"``, four sums or
#: differences of slices (``_input_transform_by_sums``). Which is faster depends on the BLAS:
#: with OpenBLAS's SkylakeX kernels the products took DeepConvNet's layers' forwards in
#: 0.76-0.90 of the time; with its Haswell kernels, on the same CPU, they were slower (conv2's
#: forward on 32 images 2.64 ms against 2.48, conv6's 1.31 against 1.24; runs
#: benchmarks/results/2026-12-05-winograd-blas/haswell.txt against 2026-12-05-winograd/haswell.txt),
#: their products of 4 rows packing the whole chunk first. So ``kernels.conv`` measures both.
#: The sums are F(2×2)'s only.
TRANSFORMS = ("products", "sums")


def applies(W_shape: tuple[int, ...], stride: int, pad: int, dtype: np.dtype) -> bool:
    """Whether ``winograd_conv`` computes this convolution: 3×3 filters, stride 1, pad 0-2
    (each output's window inside the tile's padding), float32 or float64."""
    float_type = np.dtype(dtype) in (np.float32, np.float64)
    return tuple(W_shape[2:]) == (3, 3) and stride == 1 and 0 <= pad <= 2 and float_type


def filter_transform(W: np.ndarray, block: int = 2) -> np.ndarray:
    """U = G g Gᵀ of every filter g = W[f, c] (FN, C, 3, 3), as t² matrices (t², C, FN), one per
    position (a, b) of the transformed t×t tile: U[(a, b)] = Σ_ij G[a, i] G[b, j] g[i, j], all
    of them one product with the Kronecker product G⊗G (t², 9), in float64 (G_4's thirds and
    fifteenths are not exact in float32) and then in W's dtype. (G @ W @ Gᵀ broadcast over
    the filters took 0.4 ms for 64×32 filters, this 18 us.)"""
    FN, C = W.shape[:2]
    t = block + 2
    U = _kron_G(block) @ W.transpose(2, 3, 1, 0).reshape(9, C * FN).astype(np.float64)
    return U.astype(W.dtype).reshape(t * t, C, FN)


#: Filter transforms kept for evaluation-mode calls (``kept_filter_transform``): by (shape,
#: dtype, block), the last few made, each with a copy of the weights it was made from.
_kept_filters: dict[tuple, tuple[tuple[np.ndarray, np.ndarray], ...]] = {}
_kept_filters_lock = threading.Lock()  # a 2-thread predict's parts keep theirs at once
#: How many of one shape are kept (a network with several layers of one shape), and of how many
#: shapes (the oldest shape's go first).
KEPT_FILTERS_PER_SHAPE, KEPT_FILTER_SHAPES = 4, 32


def kept_filter_transform(W: np.ndarray, block: int = 2) -> np.ndarray:
    """``filter_transform(W, block)``, read-only: the one kept from an earlier call whose
    weights had exactly W's bits, else made now and kept.

    Why: predict runs a batch in chunks through the same weights, and each chunk's forward
    transformed every layer's filters again: DeepConvNet's five transforms took 0.29 ms a chunk
    made and 0.03 found kept (SkylakeX kernels; 0.52 and 0.04 with Haswell's; 1 thread, Zen 4
    VM, benchmarks/results/2026-12-06-bias-in-m/per_chunk-*.txt), and one thread predicts a
    batch of 100 in three chunks. DeepConvNet's predict then took 0.91 of the time at batches
    of 8, 0.94 at 100 and 0.98 at 1000 (one process, alternating rounds; kept_filters-*.txt
    there; in pairs of fresh processes within the VM's noise). The weights are compared bit for
    bit (as unsigned integers: -0.0 is not 0.0, and a NaN matches its own bits), so a kept transform
    is exactly what ``filter_transform`` would make now, after any change to the weights in
    place. Not for training, whose weights change every step: there each call would only add
    the comparison and the copy."""
    key = (W.shape, W.dtype.str, block)
    bits = np.dtype(f"u{W.dtype.itemsize}")
    kept = _kept_filters.get(key, ())
    for W_seen, U in kept:
        if np.array_equal(W_seen.view(bits), W.view(bits)):
            return U
    W_seen = W.copy()  # U made from this copy: weights written meanwhile (another thread) cannot pair wrongly
    U = filter_transform(W_seen, block)
    U.flags.writeable = False
    with _kept_filters_lock:
        if key not in _kept_filters and len(_kept_filters) >= KEPT_FILTER_SHAPES:
            del _kept_filters[next(iter(_kept_filters))]
        _kept_filters[key] = ((W_seen, U), *_kept_filters.get(key, ())[: KEPT_FILTERS_PER_SHAPE - 1])
    return U


@functools.cache
def _kron_G(block: int) -> np.ndarray:
    """G⊗G (t², 9) of F(block×block, 3×3): row (a, b), column (i, j) holds G[a, i]·G[b, j]."""
    G_m = BLOCKS[block][1]
    return np.kron(G_m, G_m)


def winograd_conv(
    x: np.ndarray, W: np.ndarray, pad: int, transforms: str = "products", block: int = 2,
    keep: dict[tuple, np.ndarray] | None = None, bias: np.ndarray | None = None, reuse_filters: bool = False,
) -> np.ndarray:
    """The convolution of ``x`` (N, C, H, W) with ``W`` (FN, C, 3, 3), stride 1, plus ``bias``
    (FN,) if given, as rows (N·OH·OW, FN) ordered (n, oh, ow), like ``conv.im2col_dot``, by
    F(block×block, 3×3); a few images at a time (as many as keep their V within the core's own
    cache, ``cache_sizes.core_cache_bytes``), the tiles transformed by ``transforms`` (one of
    ``TRANSFORMS``). Each chunk's V goes into ``keep`` when given (``tile_key``), for
    ``winograd_weight_grad`` of the same ``x``. ``reuse_filters``: the filters' transform from
    ``kept_filter_transform`` (evaluation), else made anew (training).

    The bias is added to the products M at the transformed tile's position (1, 1), not to the
    outputs: column 1 of Aᵀ is all ones, so that position reaches every output of its block
    with weight 1 (Y + b = Aᵀ(M + b·e₁₁)A, equal up to float rounding). Why: m² times fewer
    additions; DeepConvNet's five layers' biases took 0.30 ms of a 50-image forward (~10 ms,
    one thread's part of a 2-thread predict at batch 100) on the rows, 0.04 ms on M (SkylakeX
    kernels; 0.39 and 0.05 with Haswell's; 1 thread, Zen 4 VM,
    benchmarks/results/2026-12-06-bias-in-m/per_chunk-*.txt), and its predict took 0.97-0.99
    of the time (before_after-skylakex.txt there)."""
    input_transform, output_transform, _ = _transforms(transforms, block)
    N, C, H, Wd = x.shape
    FN = W.shape[0]
    OH, OW = H + 2 * pad - 2, Wd + 2 * pad - 2
    TH, TW = -(-OH // block), -(-OW // block)  # output blocks down and across
    t = block + 2
    U = kept_filter_transform(W, block) if reuse_filters else filter_transform(W, block)
    out = np.empty((N * OH * OW, FN), dtype=np.result_type(x, W))
    rows = OH * OW
    x_cl = x.transpose(0, 2, 3, 1)  # channels-last; a Convolution's input usually is already

    def chunk(images: slice) -> None:
        V = input_transform(x_cl[images], pad, TH, TW)
        if keep is not None:
            keep[tile_key(images, transforms, block)] = V
        M = np.matmul(V, U)  # (t², tiles, FN): the t² products
        if bias is not None:
            M[t + 1] += bias  # position (1, 1): every output of the block, with weight 1
        output_transform(M, out[images.start * rows : images.stop * rows], TH, TW, OH, OW)

    # Sized by V, which has x's dtype: the weight gradient's chunks are the same, and find V kept.
    in_chunks(chunk, N, _images_per_chunk(t * t * TH * TW * C * x.itemsize, N))
    return out


def _transforms(transforms: str, block: int) -> tuple:
    """(input transform, output transform, its adjoint) for one of ``TRANSFORMS`` and one of
    ``BLOCKS``."""
    if block not in BLOCKS:
        raise ValueError(f"winograd: block must be one of {tuple(BLOCKS)}, got {block!r}")
    if transforms == "products":
        return (functools.partial(_input_transform, block=block), _output_transform,
                functools.partial(_output_transform_adjoint, block=block))
    if transforms == "sums" and block == 2:
        return _input_transform_by_sums, _output_transform_by_sums, _output_transform_adjoint_by_sums
    if transforms == "sums":
        raise ValueError(f"winograd: the sums transforms are F(2×2)'s only, got block {block}")
    raise ValueError(f"winograd: transforms must be one of {TRANSFORMS}, got {transforms!r}")


def _images_per_chunk(V_bytes_per_image: int, n: int) -> int:
    """As many images as keep their transformed tiles V within ``cache_sizes.core_cache_bytes``:
    at least one, at most ``n``."""
    return max(1, min(n, cache_sizes.core_cache_bytes() // V_bytes_per_image))


def tiles_bytes(x_shape: tuple[int, ...], pad: int, block: int, itemsize: int) -> int:
    """Bytes of V, the transformed input tiles, for x of ``x_shape`` (N, C, H, W): t² values a
    tile (t = block + 2) for each of its C channels."""
    N, C, H, Wd = x_shape
    TH, TW = -(-(H + 2 * pad - 2) // block), -(-(Wd + 2 * pad - 2) // block)
    return (block + 2) ** 2 * N * TH * TW * C * itemsize


def tile_key(images: slice, transforms: str, block: int) -> tuple:
    """Which chunk of images a kept V is, and the way that made it (``winograd_conv``'s keep)."""
    return images.start, images.stop, transforms, block


def winograd_weight_grad(
    d: np.ndarray, x: np.ndarray, pad: int, transforms: str = "products", block: int = 2,
    kept: dict[tuple, np.ndarray] | None = None,
) -> np.ndarray:
    """The weight gradient of that convolution, (FN, C, 3, 3), from ``d`` = dout as rows
    (N·OH·OW, FN) ordered (n, oh, ow): ``conv.im2col_weight_grad(d, x, 3, 3, 1, pad)`` with its
    columns (fh, fw, c) as W's axes.

    Backward through Y = Aᵀ[U ⊙ V]A and U = G g Gᵀ: each tile's dU = (A dY Aᵀ) ⊙ V, and
    dg = Gᵀ dU G. Summed over tiles, per position k of the 4×4 transformed tile, that is one
    product dU_k (C, FN) = V_kᵀ (C, tiles) · E_k (tiles, FN) with E = A dY Aᵀ of every 2×2 block
    of dout: t² products with 2.25× (4×) fewer multiply-adds than dᵀ·col. The chunks' sums are
    added in chunk order, whichever threads computed them; Gᵀ dU G is formed in float64.
    ``transforms`` and ``block`` as in ``winograd_conv``.

    ``kept``: the V that ``winograd_conv`` kept for this ``x``; a chunk found there (the same
    images, made the same way) is not transformed again, one that is not is (the same values).
    Why: the input transform is the weight gradient's largest part after the products. Of
    DeepConvNet's layers' weight gradients by F(4×4) (100 images, 1 thread, Zen 4 VM), V kept
    took 0.64-0.79 of the time with SkylakeX kernels and 0.68-0.76 with Haswell's, and still
    0.70-0.91 and 0.70-0.87 with the caches flushed before (as a training step's other layers
    do): 4.5 and 8.4 ms a step (benchmarks/results/2026-12-06-kept-tiles/kept_tiles-*.txt).
    DeepConvNet's Trainer steps took 0.91 / 0.85 of the time on 1 / 2 threads with SkylakeX
    kernels, 0.95 / 1.02 with Haswell's, on a noisy VM (before_after-*.txt there; under the
    2-thread split plan this VM computes one of the five layers by im2col and another's weight
    gradient by F(2×2) against its forward's F(4×4), and those keep no tiles)."""
    input_transform, _, output_transform_adjoint = _transforms(transforms, block)
    N, C, H, Wd = x.shape
    FN = d.shape[1]
    OH, OW = H + 2 * pad - 2, Wd + 2 * pad - 2
    TH, TW = -(-OH // block), -(-OW // block)
    t = block + 2
    rows = OH * OW
    x_cl = x.transpose(0, 2, 3, 1)
    def chunk(images: slice) -> np.ndarray:
        V = None if kept is None else kept.get(tile_key(images, transforms, block))
        if V is None or V.shape != (t * t, (images.stop - images.start) * TH * TW, C) or V.dtype != x.dtype:
            V = input_transform(x_cl[images], pad, TH, TW)
        E = output_transform_adjoint(d[images.start * rows : images.stop * rows], TH, TW, OH, OW)
        return np.matmul(V.transpose(0, 2, 1), E)  # (t², C, FN)

    total = sum_in_chunks(chunk, N, _images_per_chunk(t * t * TH * TW * C * x.itemsize, N))
    if total is None:  # no images: nothing to sum
        return np.zeros((FN, C, 3, 3), dtype=np.result_type(d, x))
    dW = _kron_G(block).T @ total.reshape(t * t, C * FN).astype(np.float64)  # Gᵀ dU G: (9, C·FN), rows (i, j)
    return dW.astype(total.dtype).reshape(3, 3, C, FN).transpose(3, 2, 0, 1)


def _matrix(name: str, dtype: np.dtype, block: int = 2) -> np.ndarray:
    """Bᵀ (``"B_T"``), Aᵀ (``"A_T"``) or A (``"A"``) of F(block×block, 3×3) in ``dtype``, made
    once per dtype (all their entries are exact in float32)."""
    return _matrices(name, np.dtype(dtype).str, block)


@functools.cache
def _matrices(name: str, dtype: str, block: int) -> np.ndarray:
    B_t, _, A_t = BLOCKS[block]
    matrix = {"B_T": B_t, "A_T": A_t, "A": A_t.T}[name]
    return np.ascontiguousarray(matrix, dtype=dtype)


def _input_transform(x_cl: np.ndarray, pad: int, TH: int, TW: int, block: int = 2) -> np.ndarray:
    """V = Bᵀ d B of every t×t tile d (t = block + 2, ``block`` apart) of the zero-padded
    channels-last images ``x_cl`` (n, H, W, C), as (t², n·TH·TW, C): the tiles gathered into
    D (t, t, tiles, C), each pixel's C values moved as one ``np.void`` value, then Bᵀ applied
    along the tiles' rows and along their columns as two products with the t×t Bᵀ (row (i, j)
    of D is the tiles' pixel (i, j)). Each direction is one batched product: t products
    (t×t)·(t×Y), one for each column j (then row a) of the tiles, Y = tiles·C.

    Why batched: one product (t×t)·(t×t·Y) over the whole chunk took twice as long with
    OpenBLAS's SkylakeX kernels as t products of a t-th of it (6 × 47,040 floats: 92 us against
    42; its small-matrix path takes the small ones without packing them). Batched, F(4×4)'s
    forwards and weight gradients of DeepConvNet's layers took 0.74-0.90 of the time, F(2×2)'s
    0.81-1.01, with the same bits; with Haswell's kernels 0.95-1.06 but conv2, which wandered
    between 0.98 and 1.26 on a noisy VM (100 images, 1 thread, Zen 4 VM;
    benchmarks/results/2026-12-05-winograd-4x4/batched_transforms-*.txt); DeepConvNet's
    training 0.90 / 0.93 of the time on 1 / 2 threads, predict 0.92 / 0.94
    (before_after-batched-skylakex.txt).

    Why products with a matrix of 0s and ±1s (F(2×2)'s): each is one BLAS call over the whole
    chunk, where four sums or differences of slices for each of the two directions were eight
    NumPy calls (and a split into even and odd columns before them), and beside a second thread
    (the parts of a 2-thread predict) every NumPy call may wait for the GIL. A chunk of
    DeepConvNet's second layer (5 images, 16 channels) took 146 us against 160 alone, 164
    against 233 beside another thread; its layers' whole forwards of 50 images 0.76-0.90 of
    the time alone, 0.69-0.77 beside (1 thread, Zen 4 VM, SkylakeX kernels;
    benchmarks/results/2026-12-05-winograd-blas/transform_ways-skylakex.txt). The product adds
    0·x terms: for finite x they change nothing (x + 0·y is x); an infinite activation gives
    NaN instead of ±inf (only once training has diverged)."""
    n, H, Wd, C = x_cl.shape
    t = block + 2
    rows, cols = block * TH + 2, block * TW + 2  # the padded images, out to the last tile's edge
    padded = np.empty((n, rows, cols, C), dtype=x_cl.dtype)
    padded[:, :pad] = 0
    padded[:, pad + H :] = 0
    padded[:, pad : pad + H, :pad] = 0
    padded[:, pad : pad + H, pad + Wd :] = 0
    padded[:, pad : pad + H, pad : pad + Wd] = x_cl
    pixel = np.dtype((np.void, C * x_cl.itemsize))
    pixels = padded.view(pixel)[..., 0]
    image, row, col = pixels.strides
    tiles = np.ndarray((t, t, n, TH, TW), pixel, pixels, 0, (row, col, image, block * row, block * col))
    D = np.empty(tiles.shape, dtype=pixel)
    np.copyto(D, tiles)
    V = _both_sides(_matrix("B_T", x_cl.dtype, block), D.view(x_cl.dtype).reshape(t, t, -1))  # Bᵀ d B
    return V.reshape(t * t, n * TH * TW, C)


def _both_sides(P: np.ndarray, X: np.ndarray) -> np.ndarray:
    """P X Pᵀ of every tile: Z[a, b] = Σ_ij P[a, i] P[b, j] X[i, j] for X (k, k, Y), one
    tile's k×k values in each column y, as (r, r, Y) for P (r, k). Each direction is one
    batched product, k products (r×k)·(k×Y), over strided views of X (``_input_transform``:
    why batched). All three transforms are this: Bᵀ d B, Aᵀ M A and A dY Aᵀ."""
    across = np.matmul(P, X.transpose(1, 0, 2))  # P X, column by column: (j, a, Y)
    return np.matmul(P, across.transpose(1, 0, 2))  # (P X) Pᵀ, row by row: (a, b, Y)


def _output_transform(M: np.ndarray, out_rows: np.ndarray, TH: int, TW: int, OH: int, OW: int) -> None:
    """Y = Aᵀ M A of every tile's t×t products M (t², tiles, FN), each tile's m×m block of
    outputs (m = t - 2) written to its place in ``out_rows`` (n·OH·OW, FN); blocks that
    overhang OH or OW are cropped. Aᵀ is applied as two batched products with the m×t Aᵀ, like
    the input's transform (there, why): a chunk of DeepConvNet's second layer took 53 us against
    74 alone, 76 against 160 beside another thread (with 32 or 64 filters on 8×8 or 14×14
    images up to 1.24x as long alone, while their whole forwards still took 0.78 of the time)."""
    FN = M.shape[2]
    t = round(M.shape[0] ** 0.5)
    m = t - 2
    n = M.shape[1] // (TH * TW)
    Y = _both_sides(_matrix("A_T", M.dtype, m), M.reshape(t, t, -1))  # Aᵀ M A: (a, b, tiles·FN)
    _write_blocks(Y.reshape(m, m, n, TH, TW, FN), out_rows, OH, OW)


def _write_blocks(Y: np.ndarray, out_rows: np.ndarray, OH: int, OW: int) -> None:
    """Each tile's m×m block of outputs Y (m, m, n, TH, TW, FN), block position (a, b) first,
    written to its place in ``out_rows`` (n·OH·OW, FN), each position's FN values moved as one
    ``np.void``; blocks that overhang OH or OW are cropped. Both output transforms end here."""
    m = Y.shape[0]
    n, TH, TW, FN = Y.shape[2:]
    pixel = np.dtype((np.void, FN * Y.itemsize))
    blocks = Y.view(pixel)[..., 0].transpose(2, 3, 0, 4, 1)  # (n, TH, a, TW, b)
    if (OH, OW) == (m * TH, m * TW):
        np.copyto(out_rows.reshape(n, TH, m, TW, m * FN).view(pixel).reshape(n, TH, m, TW, m), blocks)
        return
    full = np.empty((n, TH, m, TW, m), dtype=pixel)
    np.copyto(full, blocks)
    np.copyto(out_rows.reshape(n, OH, OW, FN).view(pixel)[..., 0], full.reshape(n, m * TH, m * TW)[:, :OH, :OW])


def _read_blocks(d_rows: np.ndarray, TH: int, TW: int, OH: int, OW: int, block: int = 2) -> np.ndarray:
    """The block×block blocks dY of ``d_rows`` (n·OH·OW, FN) as (m, m, n, TH, TW, FN), block
    position (a, b) first, zeros where a block overhangs OH or OW: ``_write_blocks`` backwards,
    where both adjoints of the output transform start."""
    m = block
    FN = d_rows.shape[1]
    n = d_rows.shape[0] // (OH * OW)
    pixel = np.dtype((np.void, FN * d_rows.itemsize))
    blocks = np.empty((m, m, n, TH, TW, FN), dtype=d_rows.dtype)
    source = d_rows.reshape(n, OH, OW, FN).view(pixel)[..., 0]
    if (OH, OW) != (m * TH, m * TW):
        full = np.zeros((n, m * TH, m * TW), dtype=pixel)  # zero bytes are 0.0
        full[:, :OH, :OW] = source
        source = full
    np.copyto(blocks.view(pixel)[..., 0], source.reshape(n, TH, m, TW, m).transpose(2, 4, 0, 1, 3))
    return blocks


def _output_transform_adjoint(d_rows: np.ndarray, TH: int, TW: int, OH: int, OW: int, block: int = 2) -> np.ndarray:
    """E = A dY Aᵀ of every block×block block dY of dout (``d_rows`` (n·OH·OW, FN), zeros where
    a block overhangs OH or OW), as (t², n·TH·TW, FN): the transpose of ``_output_transform``,
    which the weight gradient needs; two batched products with the t×m A (``_input_transform``:
    why batched)."""
    m, t = block, block + 2
    FN = d_rows.shape[1]
    n = d_rows.shape[0] // (OH * OW)
    blocks = _read_blocks(d_rows, TH, TW, OH, OW, block)
    E = _both_sides(_matrix("A", d_rows.dtype, block), blocks.reshape(m, m, -1))  # A dY Aᵀ: (k, l, tiles·FN)
    return E.reshape(t * t, n * TH * TW, FN)


# The same transforms as sums and differences of slices (see TRANSFORMS for when).


def _input_transform_by_sums(x_cl: np.ndarray, pad: int, TH: int, TW: int) -> np.ndarray:
    """V = Bᵀ d B of every 4×4 tile d (stride 2) of the zero-padded channels-last images
    ``x_cl`` (n, H, W, C), as (16, n·TH·TW, C). Bᵀ is applied along the columns first and then
    along the rows, each as four sums or differences of whole slices: the padded image is
    first split into its even and odd columns (each pixel's C values moved as one np.void,
    one memcpy), so that every pass runs along whole rows instead of runs of C values."""
    x_cl = np.ascontiguousarray(x_cl)  # each pixel's C values contiguous, to move as one np.void
    n, H, Wd, C = x_cl.shape
    pixel = np.dtype((np.void, C * x_cl.itemsize))
    # split[p][:, q, k] = the padded image's pixel (row q, column 2k + p)
    split = np.zeros((2, n, 2 * TH + 2, TW + 1, C), dtype=x_cl.dtype)
    for parity in (0, 1):
        first = (parity - pad) % 2  # the first input column that lands on this parity
        count = len(range(first, Wd, 2))
        start = (first + pad) // 2
        np.copyto(split[parity, :, pad : pad + H, start : start + count].view(pixel)[..., 0],
                  x_cl.view(pixel)[:, :, first::2, 0])
    even, odd = split[0], split[1]
    c0, c1, c2, c3 = even[:, :, :TW], odd[:, :, :TW], even[:, :, 1:], odd[:, :, 1:]  # the tiles' columns
    across = np.empty((4, n, 2 * TH + 2, TW, C), dtype=x_cl.dtype)  # d B, for every row
    np.subtract(c0, c2, out=across[0])
    np.add(c1, c2, out=across[1])
    np.subtract(c2, c1, out=across[2])
    np.subtract(c1, c3, out=across[3])
    r0, r1, r2, r3 = (across[:, :, k : k + 2 * TH : 2] for k in range(4))  # the tiles' rows
    V = np.empty((4, 4, n, TH, TW, C), dtype=x_cl.dtype)  # Bᵀ d B
    np.subtract(r0, r2, out=V[0])
    np.add(r1, r2, out=V[1])
    np.subtract(r2, r1, out=V[2])
    np.subtract(r1, r3, out=V[3])
    return V.reshape(16, n * TH * TW, C)


def _output_transform_by_sums(M: np.ndarray, out_rows: np.ndarray, TH: int, TW: int, OH: int, OW: int) -> None:
    """Y = Aᵀ M A of every tile's 4×4 products M (16, tiles, FN), each tile's 2×2 block of
    outputs written to its place in ``out_rows`` (n·OH·OW, FN); blocks that overhang an odd
    OH or OW are cropped."""
    FN = M.shape[2]
    n = M.shape[1] // (TH * TW)
    m = M.reshape(4, 4, -1)
    rows = np.empty((2, 4, m.shape[2]), dtype=M.dtype)  # Aᵀ M
    np.add(m[0], m[1], out=rows[0])
    rows[0] += m[2]
    np.subtract(m[1], m[2], out=rows[1])
    rows[1] -= m[3]
    Y = np.empty((2, 2, n, TH, TW, FN), dtype=M.dtype)  # Aᵀ M A, block position (a, b) first
    flat = Y.reshape(2, 2, -1)
    np.add(rows[:, 0], rows[:, 1], out=flat[:, 0])
    flat[:, 0] += rows[:, 2]
    np.subtract(rows[:, 1], rows[:, 2], out=flat[:, 1])
    flat[:, 1] -= rows[:, 3]
    _write_blocks(Y, out_rows, OH, OW)


def _output_transform_adjoint_by_sums(d_rows: np.ndarray, TH: int, TW: int, OH: int, OW: int) -> np.ndarray:
    """E = A dY Aᵀ of every 2×2 block dY of dout (``d_rows`` (n·OH·OW, FN), zeros where a
    block overhangs an odd OH or OW), as (16, n·TH·TW, FN): the transpose of
    ``_output_transform_by_sums``, which the weight gradient needs. With Aᵀ's rows (1, 1, 1, 0) and
    (0, 1, -1, -1), a block's rows y0, y1 become y0, y0 + y1, y0 - y1, -y1, and likewise its
    columns."""
    FN = d_rows.shape[1]
    n = d_rows.shape[0] // (OH * OW)
    blocks = _read_blocks(d_rows, TH, TW, OH, OW)
    across = np.empty((2, 4, n * TH * TW * FN), dtype=d_rows.dtype)  # dY Aᵀ, for both rows a
    flat = blocks.reshape(2, 2, -1)
    np.copyto(across[:, 0], flat[:, 0])
    np.add(flat[:, 0], flat[:, 1], out=across[:, 1])
    np.subtract(flat[:, 0], flat[:, 1], out=across[:, 2])
    np.negative(flat[:, 1], out=across[:, 3])
    E = np.empty((4, 4, n * TH * TW * FN), dtype=d_rows.dtype)  # A dY Aᵀ
    np.copyto(E[0], across[0])
    np.add(across[0], across[1], out=E[1])
    np.subtract(across[0], across[1], out=E[2])
    np.negative(across[1], out=E[3])
    return E.reshape(16, n * TH * TW, FN)

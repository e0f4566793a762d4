"""Convolution's Winograd fast path: F(2×2, 3×3) for stride-1 3×3 convolutions (Lavin and
Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).

Plain expression (checked in tests/kernels/test_winograd.py): ``winograd_conv(x, W, pad)`` is
``conv.im2col(x, 3, 3, 1, pad) @ col_W`` with ``col_W`` W's (fh, fw, c) rows: the same sums of
the same products, formed another way, so equal up to float rounding.

How: each 2×2 block of outputs of one filter g (3×3) on one 4×4 input tile d is
Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A, 16 multiplications instead of 36. Summed over the input
channels, the 16 elementwise products become 16 matrix products, one per position k of the
4×4 transformed tile: M_k (tiles, FN) = V_k (tiles, C) · U_k (C, FN), V = Bᵀ d B of every
tile, U = G g Gᵀ of every filter. The transforms are products with the small matrices Bᵀ,
Aᵀ and A, or sums and differences of slices, whichever the machine runs faster
(``TRANSFORMS``), a few images at a time so that V and M stay in the core's own cache.

Why: the products are 2.25× fewer multiply-adds, and DeepConvNet's products are most of its
time. With the transforms' passes over V and M, the way pays more the more channels there are
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

import numpy as np

from . import tuning
from .threads import in_chunks, sum_in_chunks

__all__ = ["TRANSFORMS", "applies", "filter_transform", "winograd_conv", "winograd_weight_grad"]

#: F(2×2, 3×3)'s matrices: B for the input tiles (as Bᵀ), G for the filters, A for the outputs (as Aᵀ).
B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])
_G_KRON = np.kron(G, G)  # (16, 9): row (a, b), column (i, j) holds G[a, i]·G[b, j]


#: The two ways the tiles' transforms compute, the same sums: ``"products"``, each direction one
#: BLAS product with the small matrix (``_input_transform``: why), or ``"sums"``, four sums or
#: differences of slices (``_input_transform_by_sums``). Which is faster depends on the BLAS:
#: with OpenBLAS's SkylakeX kernels the products took DeepConvNet's layers' forwards in
#: 0.76-0.90 of the time; with its Haswell kernels, on the same CPU, they were slower (conv2's
#: forward on 32 images 2.64 ms against 2.48, conv6's 1.31 against 1.24; runs
#: benchmarks/results/2026-12-05-winograd-blas/haswell.txt against 2026-12-05-winograd/haswell.txt),
#: their products of 4 rows packing the whole chunk first. So ``kernels.conv`` measures both.
TRANSFORMS = ("products", "sums")


def applies(W_shape: tuple[int, ...], stride: int, pad: int, dtype: np.dtype) -> bool:
    """Whether ``winograd_conv`` computes this convolution: 3×3 filters, stride 1, pad 0-2
    (each output's window inside the tile's padding), float32 or float64."""
    float_type = np.dtype(dtype) in (np.float32, np.float64)
    return tuple(W_shape[2:]) == (3, 3) and stride == 1 and 0 <= pad <= 2 and float_type


def filter_transform(W: np.ndarray) -> np.ndarray:
    """U = G g Gᵀ of every filter g = W[f, c] (FN, C, 3, 3), as 16 matrices (16, C, FN), one per
    position (a, b) of the transformed tile: U[(a, b)] = Σ_ij G[a, i] G[b, j] g[i, j], all of
    them one product with the Kronecker product G⊗G (16, 9). (G @ W @ Gᵀ broadcast over the
    filters took 0.4 ms for 64×32 filters, this 18 us.)"""
    FN, C = W.shape[:2]
    return (_G_KRON.astype(W.dtype) @ W.transpose(2, 3, 1, 0).reshape(9, C * FN)).reshape(16, C, FN)


def winograd_conv(x: np.ndarray, W: np.ndarray, pad: int, transforms: str = "products") -> np.ndarray:
    """The convolution of ``x`` (N, C, H, W) with ``W`` (FN, C, 3, 3), stride 1, no bias, as
    rows (N·OH·OW, FN) ordered (n, oh, ow), like ``conv.im2col_dot``; a few images at a time
    (as many as keep their V within the core's own cache, ``tuning.core_cache_bytes``), the
    tiles transformed by ``transforms`` (one of ``TRANSFORMS``)."""
    input_transform, output_transform, _ = _transforms(transforms)
    N, C, H, Wd = x.shape
    FN = W.shape[0]
    OH, OW = H + 2 * pad - 2, Wd + 2 * pad - 2
    TH, TW = -(-OH // 2), -(-OW // 2)  # 2×2 output blocks down and across
    U = filter_transform(W)
    out = np.empty((N * OH * OW, FN), dtype=np.result_type(x, W))
    rows = OH * OW
    x_cl = x.transpose(0, 2, 3, 1)  # channels-last; a Convolution's input usually is already

    def chunk(images: slice) -> None:
        V = input_transform(x_cl[images], pad, TH, TW)
        M = np.matmul(V, U)  # (16, tiles, FN): the 16 products
        output_transform(M, out[images.start * rows : images.stop * rows], TH, TW, OH, OW)

    in_chunks(chunk, N, _images_per_chunk(16 * TH * TW * C * out.itemsize, N))
    return out


def _transforms(transforms: str) -> tuple:
    """(input transform, output transform, its adjoint) for one of ``TRANSFORMS``."""
    if transforms == "products":
        return _input_transform, _output_transform, _output_transform_adjoint
    if transforms == "sums":
        return _input_transform_by_sums, _output_transform_by_sums, _output_transform_adjoint_by_sums
    raise ValueError(f"winograd: transforms must be one of {TRANSFORMS}, got {transforms!r}")


def _images_per_chunk(V_bytes_per_image: int, n: int) -> int:
    """As many images as keep their transformed tiles V within ``tuning.core_cache_bytes``:
    at least one, at most ``n``."""
    return max(1, min(n, tuning.core_cache_bytes() // V_bytes_per_image))


def winograd_weight_grad(d: np.ndarray, x: np.ndarray, pad: int, transforms: str = "products") -> np.ndarray:
    """The weight gradient of that convolution, (FN, C, 3, 3), from ``d`` = dout as rows
    (N·OH·OW, FN) ordered (n, oh, ow): ``conv.im2col_weight_grad(d, x, 3, 3, 1, pad)`` with its
    columns (fh, fw, c) as W's axes.

    Backward through Y = Aᵀ[U ⊙ V]A and U = G g Gᵀ: each tile's dU = (A dY Aᵀ) ⊙ V, and
    dg = Gᵀ dU G. Summed over tiles, per position k of the 4×4 transformed tile, that is one
    product dU_k (C, FN) = V_kᵀ (C, tiles) · E_k (tiles, FN) with E = A dY Aᵀ of every 2×2 block
    of dout: 16 products with 2.25× fewer multiply-adds than dᵀ·col. The chunks' sums are
    added in chunk order, whichever threads computed them. ``transforms`` as in ``winograd_conv``."""
    input_transform, _, output_transform_adjoint = _transforms(transforms)
    N, C, H, Wd = x.shape
    FN = d.shape[1]
    OH, OW = H + 2 * pad - 2, Wd + 2 * pad - 2
    TH, TW = -(-OH // 2), -(-OW // 2)
    rows = OH * OW
    x_cl = x.transpose(0, 2, 3, 1)
    def chunk(images: slice) -> np.ndarray:
        V = input_transform(x_cl[images], pad, TH, TW)
        E = output_transform_adjoint(d[images.start * rows : images.stop * rows], TH, TW, OH, OW)
        return np.matmul(V.transpose(0, 2, 1), E)  # (16, C, FN)

    total = sum_in_chunks(chunk, N, _images_per_chunk(16 * TH * TW * C * x.itemsize, N))
    if total is None:  # no images: nothing to sum
        return np.zeros((FN, C, 3, 3), dtype=np.result_type(d, x))
    dW = _G_KRON.T.astype(total.dtype) @ total.reshape(16, C * FN)  # Gᵀ dU G: (9, C·FN), rows (i, j)
    return dW.reshape(3, 3, C, FN).transpose(3, 2, 0, 1)


def _matrix(name: str, dtype: np.dtype) -> np.ndarray:
    """``B_T``, ``A_T`` or ``A`` (Aᵀ's transpose) in ``dtype``, made once per dtype."""
    return _matrices(name, np.dtype(dtype).str)


@functools.cache
def _matrices(name: str, dtype: str) -> np.ndarray:
    matrix = {"B_T": B_T, "A_T": A_T, "A": A_T.T}[name]
    return np.ascontiguousarray(matrix, dtype=dtype)


def _input_transform(x_cl: np.ndarray, pad: int, TH: int, TW: int) -> np.ndarray:
    """V = Bᵀ d B of every 4×4 tile d (stride 2) of the zero-padded channels-last images
    ``x_cl`` (n, H, W, C), as (16, n·TH·TW, C): the tiles gathered into D (4, 4, tiles, C),
    each pixel's C values moved as one ``np.void`` value, then Bᵀ applied along the tiles'
    rows and along their columns as two products with the 4×4 Bᵀ (row (i, j) of D is the
    tiles' pixel (i, j)).

    Why products with a matrix of 0s and ±1s: each is one BLAS call over the whole chunk,
    where four sums or differences of slices for each of the two directions were eight NumPy
    calls (and a split into even and odd columns before them), and beside a second thread
    (the parts of a 2-thread predict) every NumPy call may wait for the GIL. A chunk of
    DeepConvNet's second layer (5 images, 16 channels) took 146 us against 160 alone, 164
    against 233 beside another thread; its layers' whole forwards of 50 images 0.76-0.90 of
    the time alone, 0.69-0.77 beside (1 thread, Zen 4 VM, SkylakeX kernels;
    benchmarks/results/2026-12-05-winograd-blas/transform_ways-skylakex.txt). The product adds
    0·x terms: for finite x they change nothing (x + 0·y is x); an infinite activation gives
    NaN instead of ±inf (only once training has diverged)."""
    n, H, Wd, C = x_cl.shape
    rows, cols = 2 * TH + 2, 2 * TW + 2  # the padded images, out to the last tile's edge
    padded = np.empty((n, rows, cols, C), dtype=x_cl.dtype)
    padded[:, :pad] = 0
    padded[:, pad + H :] = 0
    padded[:, pad : pad + H, :pad] = 0
    padded[:, pad : pad + H, pad + Wd :] = 0
    padded[:, pad : pad + H, pad : pad + Wd] = x_cl
    pixel = np.dtype((np.void, C * x_cl.itemsize))
    pixels = padded.view(pixel)[..., 0]
    image, row, col = pixels.strides
    tiles = np.ndarray((4, 4, n, TH, TW), pixel, pixels, 0, (row, col, image, 2 * row, 2 * col))
    D = np.empty(tiles.shape, dtype=pixel)
    np.copyto(D, tiles)
    B_t = _matrix("B_T", x_cl.dtype)
    across = np.matmul(B_t, D.view(x_cl.dtype).reshape(4, -1))  # Bᵀ d: (a, j·tiles·C)
    V = np.matmul(B_t, across.reshape(4, 4, -1))  # (Bᵀ d) B: (a, b, tiles·C), as B's rows are Bᵀ's columns
    return V.reshape(16, n * TH * TW, C)


def _output_transform(M: np.ndarray, out_rows: np.ndarray, TH: int, TW: int, OH: int, OW: int) -> None:
    """Y = Aᵀ M A of every tile's 4×4 products M (16, tiles, FN), each tile's 2×2 block of
    outputs written to its place in ``out_rows`` (n·OH·OW, FN); blocks that overhang an odd
    OH or OW are cropped. Aᵀ is applied as two products with the 2×4 Aᵀ, like the input's
    transform (there, why): a chunk of DeepConvNet's second layer took 53 us against 74 alone,
    76 against 160 beside another thread (with 32 or 64 filters on 8×8 or 14×14 images up to
    1.24x as long alone, while their whole forwards still took 0.78 of the time)."""
    FN = M.shape[2]
    n = M.shape[1] // (TH * TW)
    A_t = _matrix("A_T", M.dtype)
    across = np.matmul(A_t, M.reshape(4, -1))  # Aᵀ M over the tile's rows: (a, k·tiles·FN)
    Y = np.matmul(A_t, across.reshape(2, 4, -1))  # then over its columns: (a, b, tiles·FN)
    _write_blocks(Y.reshape(2, 2, n, TH, TW, FN), out_rows, OH, OW)


def _write_blocks(Y: np.ndarray, out_rows: np.ndarray, OH: int, OW: int) -> None:
    """Each tile's 2×2 block of outputs Y (2, 2, n, TH, TW, FN), block position (a, b) first,
    written to its place in ``out_rows`` (n·OH·OW, FN), each position's FN values moved as one
    ``np.void``; blocks that overhang an odd OH or OW are cropped. Both output transforms end here."""
    n, TH, TW, FN = Y.shape[2:]
    pixel = np.dtype((np.void, FN * Y.itemsize))
    blocks = Y.view(pixel)[..., 0].transpose(2, 3, 0, 4, 1)  # (n, TH, a, TW, b)
    if (OH, OW) == (2 * TH, 2 * TW):
        np.copyto(out_rows.reshape(n, TH, 2, TW, 2 * FN).view(pixel).reshape(n, TH, 2, TW, 2), blocks)
        return
    full = np.empty((n, TH, 2, TW, 2), dtype=pixel)
    np.copyto(full, blocks)
    np.copyto(out_rows.reshape(n, OH, OW, FN).view(pixel)[..., 0], full.reshape(n, 2 * TH, 2 * TW)[:, :OH, :OW])


def _read_blocks(d_rows: np.ndarray, TH: int, TW: int, OH: int, OW: int) -> np.ndarray:
    """The 2×2 blocks dY of ``d_rows`` (n·OH·OW, FN) as (2, 2, n, TH, TW, FN), block position
    (a, b) first, zeros where a block overhangs an odd OH or OW: ``_write_blocks`` backwards,
    where both adjoints of the output transform start."""
    FN = d_rows.shape[1]
    n = d_rows.shape[0] // (OH * OW)
    pixel = np.dtype((np.void, FN * d_rows.itemsize))
    blocks = np.empty((2, 2, n, TH, TW, FN), dtype=d_rows.dtype)
    source = d_rows.reshape(n, OH, OW, FN).view(pixel)[..., 0]
    if (OH, OW) != (2 * TH, 2 * TW):
        full = np.zeros((n, 2 * TH, 2 * TW), dtype=pixel)  # zero bytes are 0.0
        full[:, :OH, :OW] = source
        source = full
    np.copyto(blocks.view(pixel)[..., 0], source.reshape(n, TH, 2, TW, 2).transpose(2, 4, 0, 1, 3))
    return blocks


def _output_transform_adjoint(d_rows: np.ndarray, TH: int, TW: int, OH: int, OW: int) -> np.ndarray:
    """E = A dY Aᵀ of every 2×2 block dY of dout (``d_rows`` (n·OH·OW, FN), zeros where a
    block overhangs an odd OH or OW), as (16, n·TH·TW, FN): the transpose of
    ``_output_transform``, which the weight gradient needs; two products with the 4×2 A."""
    FN = d_rows.shape[1]
    n = d_rows.shape[0] // (OH * OW)
    blocks = _read_blocks(d_rows, TH, TW, OH, OW)
    A = _matrix("A", d_rows.dtype)
    across = np.matmul(A, blocks.reshape(2, -1))  # A dY over the block's rows: (k, b·tiles·FN)
    E = np.matmul(A, across.reshape(4, 2, -1))  # then over its columns: (k, l, tiles·FN)
    return E.reshape(16, n * TH * TW, FN)


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

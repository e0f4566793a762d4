"""The book's ``common/util.py``.

``im2col``/``col2im`` are ``layerwise.functional``'s, under the book's argument names;
``conv_output_size`` is ``layerwise.functional.conv_output_shape`` for one side.
``smooth_curve`` and ``shuffle_dataset`` are the book's two small helpers for plots and data
(layerwise itself shuffles with seeded generators, see ``layerwise.datasets.iterate_minibatches``).
"""

import numpy as np

from layerwise import functional as _F

__all__ = ["col2im", "conv_output_size", "im2col", "np", "shuffle_dataset", "smooth_curve"]


def smooth_curve(x: np.ndarray) -> np.ndarray:
    """A loss curve smoothed for plotting, as the book's: the curve, mirrored by 10 values at
    each end, convolved with a normalised 11-point Kaiser window (beta 2); same length as ``x``
    (for 11 values or more)."""
    x = np.asarray(x)
    window = np.kaiser(11, 2)
    mirrored = np.r_[x[10:0:-1], x, x[-1:-11:-1]]
    y = np.convolve(window / window.sum(), mirrored, mode="valid")
    return y[5 : len(y) - 5]


def shuffle_dataset(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``t`` in the same random order, from ``np.random.permutation`` (NumPy's global
    state, so ``np.random.seed(...)`` makes it repeatable, as in the book)."""
    permutation = np.random.permutation(x.shape[0])  # noqa: NPY002 (the book's global state, on purpose)
    return x[permutation], t[permutation]


def conv_output_size(input_size: int, filter_size: int, stride: int = 1, pad: int = 0) -> int:
    """(input_size + 2·pad - filter_size) / stride + 1, an int; ShapeError when the stride does
    not divide (the book returns the fraction as a float)."""
    return _F.conv_output_shape((1, 1, input_size, input_size), filter_size, filter_size, stride, pad,
                                "conv_output_size")[0]


def im2col(input_data: np.ndarray, filter_h: int, filter_w: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """``layerwise.functional.im2col``: (N, C, H, W) -> (N·out_h·out_w, C·filter_h·filter_w),
    columns ordered (c, fh, fw) as the book's. Keeps the input's dtype (the book's is float64)."""
    return _F.im2col(input_data, filter_h, filter_w, stride, pad)


def col2im(col: np.ndarray, input_shape: tuple[int, ...], filter_h: int, filter_w: int, stride: int = 1,
           pad: int = 0) -> np.ndarray:
    """``layerwise.functional.col2im``, the adjoint of :func:`im2col`: rows summed back into an
    (N, C, H, W) array of ``input_shape``."""
    return _F.col2im(col, input_shape, filter_h, filter_w, stride, pad)

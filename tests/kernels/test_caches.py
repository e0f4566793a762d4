"""kernels.caches: read-only, bounded, and sums through the ones vector equal NumPy's sums."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import layerwise as lw


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 300), o=st.integers(1, 12), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**32 - 1))
def test_bias_gradients_equal_the_batch_sum(n, o, dtype, seed):
    rng = np.random.default_rng(seed)
    affine = lw.Affine(rng.standard_normal((3, o)).astype(dtype), np.zeros(o, dtype))
    affine.forward(rng.standard_normal((n, 3)).astype(dtype))
    dout = rng.standard_normal((n, o)).astype(dtype)
    affine.backward(dout)
    tol = 1e-5 if dtype == np.float32 else 1e-12  # only the order of the additions differs
    assert affine.db.dtype == dtype and affine.db.shape == (o,)
    np.testing.assert_allclose(affine.db, dout.astype(np.float64).sum(axis=0), rtol=tol, atol=tol * n)

    conv = lw.Convolution(rng.standard_normal((o, 2, 3, 3)).astype(dtype), np.zeros(o, dtype), pad=1)
    out = conv.forward(rng.standard_normal((2, 2, 5, 4)).astype(dtype))
    d = rng.standard_normal(out.shape).astype(dtype)
    conv.backward(d)
    assert conv.db.dtype == dtype
    np.testing.assert_allclose(conv.db, d.astype(np.float64).sum(axis=(0, 2, 3)), rtol=tol, atol=tol * 40)


def test_small_caches_are_read_only_and_bounded():
    from layerwise.kernels import caches
    from layerwise.kernels.caches import CACHED_SHAPES as _CACHED_SHAPES
    from layerwise.kernels.caches import ones as _ones
    from layerwise.kernels.caches import row_starts as _row_starts

    ones, starts = _ones(5, np.float32), _row_starts(4, 3)
    np.testing.assert_array_equal(starts, [0, 3, 6, 9])
    for a in (ones, starts):
        with pytest.raises(ValueError):
            a[0] = 7
    for n in range(1, 3 * _CACHED_SHAPES):  # a caller cycling through batch sizes
        _ones(n, np.float64), _row_starts(n, 2)
    assert len(caches._ones) <= _CACHED_SHAPES and len(caches._row_starts) <= _CACHED_SHAPES
    np.testing.assert_array_equal(_ones(3, np.float32), np.ones(3, np.float32))

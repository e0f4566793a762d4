"""kernels.softmax_loss equals softmax and log-softmax gathered at the labels."""

import numpy as np
import pytest
from conftest import assert_close_for_dtype
from hypothesis import given, settings
from hypothesis import strategies as st

import layerwise as lw
from layerwise.functional import log_softmax, softmax
from layerwise.kernels.softmax_loss import softmax_loss


def _plain(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
    return softmax(x), float(-np.sum(log_softmax(x)[np.arange(len(t)), t]) / len(t))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 40), c=st.integers(1, 12), scale=st.sampled_from([1e-3, 1.0, 30.0, 1e4]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_fused_softmax_loss_equals_log_softmax_gather(n, c, scale, dtype, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * scale).astype(dtype)
    x[rng.random((n, c)) < 0.2] = x.max()  # ties for the row max
    t = rng.integers(0, c, n).astype(np.uint8)
    y, loss = softmax_loss(x, t)
    y_ref, loss_ref = _plain(x, t)
    assert y.dtype == dtype
    assert_close_for_dtype(y, y_ref, dtype)  # the same max and exp; the row sums differ in order
    # Only the order of the final sum differs: log Σ - Σ shifted[t] vs -Σ (shifted[t] - log Σ).
    assert np.isfinite(loss)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert float(loss) == pytest.approx(loss_ref, rel=tol, abs=tol)


def test_fused_softmax_loss_non_finite_logits_give_nan_like_the_plain_path():
    x = np.array([[1.0, np.nan, 2.0], [np.inf, 0.0, 1.0], [-np.inf, 0.0, 1.0]], dtype=np.float32)
    t = np.array([0, 1, 2])
    for row in range(3):
        with np.errstate(invalid="ignore"):  # inf - inf, in both paths
            _, loss = softmax_loss(x[row : row + 1], t[row : row + 1])
            _, loss_ref = _plain(x[row : row + 1], t[row : row + 1])
        # The fused softmax of a row with +inf is one-hot where the plain one is NaN (inf - inf),
        # so only the loss is compared: not finite in both, or (for -inf) the same finite value.
        assert np.isfinite(loss) == np.isfinite(loss_ref)
        if np.isfinite(loss):
            assert loss == pytest.approx(loss_ref, rel=1e-6)


def test_softmax_with_loss_layer_uses_the_fused_path_consistently():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((7, 5)).astype(np.float32) * 50
    t = rng.integers(0, 5, 7)
    layer = lw.SoftmaxWithLoss()
    loss_idx = layer.forward(x, t)
    dx_idx = layer.backward()
    loss_hot = layer.forward(x, np.eye(5, dtype=np.float32)[t])  # one-hot: the plain path
    dx_hot = layer.backward()
    assert loss_idx == pytest.approx(loss_hot, rel=1e-6)
    np.testing.assert_allclose(dx_idx, dx_hot, rtol=0, atol=1e-8)
    assert dx_idx.dtype == np.float32


def test_softmax_rows_sum_through_the_ones_vector_like_sum():
    from layerwise.kernels.softmax_loss import _parts

    x = np.random.default_rng(3).standard_normal((4, 6, 7))  # rows of a 3-D array
    _, e, rest = _parts(x)
    plain = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(e, plain, rtol=1e-15)
    np.testing.assert_allclose(rest[..., 0], plain.sum(axis=-1) - 1, rtol=1e-13, atol=1e-15)

"""Dropout and BatchNormalization: modes, running statistics, gradient checks, PyTorch parity."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from layerwise.errors import InputError, LayerwiseWarning, ShapeError, StateError
from layerwise.gradcheck import check_layer, standard_cases
from layerwise.gradcheck.cases import norm_cases
from layerwise.layers.norm import BatchNormalization, Dropout

SEEDS = st.integers(0, 2**32 - 1)


# -- Dropout -------------------------------------------------------------------------------
def test_dropout_is_deterministic_with_a_seed():
    x = np.ones((50, 40))
    a, b, c = Dropout(0.5, seed=1), Dropout(0.5, seed=1), Dropout(0.5, seed=2)
    out_a, out_b, out_c = a.forward(x), b.forward(x), c.forward(x)
    np.testing.assert_array_equal(out_a, out_b)
    assert not np.array_equal(out_a, out_c)
    assert not np.array_equal(a.forward(x), out_a)  # a new mask on the next batch
    # The same units are dropped in float32 and float64.
    np.testing.assert_array_equal(
        Dropout(0.3, seed=5).forward(x.astype(np.float32)) != 0, Dropout(0.3, seed=5).forward(x) != 0
    )


def test_dropout_masks_do_not_draw_from_numpys_global_random_state():
    """Only the seed is drawn from it, once, when the layer is built (so np.random.seed
    makes a net repeatable, as in the book); the masks come from the layer's own generator.
    The whole state is compared: its key array alone changes only every 624 draws."""
    layer = Dropout(0.5)
    _, key, pos, *_ = np.random.get_state()  # noqa: NPY002  (the book's global generator)
    layer.forward(np.ones((10, 10)))
    _, key_after, pos_after, *_ = np.random.get_state()  # noqa: NPY002
    np.testing.assert_array_equal(key_after, key)
    assert pos_after == pos


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_inverted_mode(dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 300)).astype(dtype)
    layer = Dropout(0.25, seed=0)
    out = layer.forward(x, train=True)
    mask = layer.mask
    assert mask.dtype == bool and abs(1 - mask.mean() - 0.25) < 0.01
    np.testing.assert_allclose(out, np.where(mask, x / 0.75, 0), rtol=1e-6)
    dout = rng.standard_normal(x.shape).astype(dtype)
    dout0 = dout.copy()
    dx = layer.backward(dout)
    np.testing.assert_allclose(dx, np.where(mask, dout / 0.75, 0), rtol=1e-6)
    np.testing.assert_array_equal(dout, dout0)
    assert out.dtype == dx.dtype == dtype
    # Evaluation is the identity, forward and backward.
    out_eval = layer.forward(x, train=False)
    np.testing.assert_array_equal(out_eval, x)
    assert layer.mask is None
    np.testing.assert_array_equal(layer.backward(dout), dout)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_book_mode(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 30)).astype(dtype)
    layer = Dropout(0.5, mode="book", seed=3)
    out = layer.forward(x)
    np.testing.assert_array_equal(out, x * layer.mask)  # the book: x * mask, no rescaling
    dout = rng.standard_normal(x.shape).astype(dtype)
    np.testing.assert_array_equal(layer.backward(dout), dout * layer.mask)
    out_eval = layer.forward(x, train=False)
    np.testing.assert_array_equal(out_eval, x * dtype(0.5))  # the book: x * (1 - ratio)
    assert out.dtype == out_eval.dtype == layer.backward(dout).dtype == dtype
    np.testing.assert_array_equal(layer.backward(dout), dout * dtype(0.5))


def test_dropout_ratio_zero_keeps_everything():
    x = np.random.default_rng(2).standard_normal((30, 30))
    np.testing.assert_array_equal(Dropout(0.0, seed=0).forward(x), x)


@pytest.mark.parametrize("mode", ["inverted", "book"])
def test_dropout_gradcheck(mode):
    rng = np.random.default_rng(3)
    layer = Dropout(0.5, mode=mode, seed=9)
    reseed = lambda: setattr(layer, "rng", np.random.default_rng(9))  # noqa: E731
    errors = check_layer(layer, rng.standard_normal((6, 7)), before_forward=reseed)
    assert errors["x"] < 1e-7, errors
    errors = check_layer(layer, rng.standard_normal((6, 7)), train=False)
    assert errors["x"] < 1e-7, errors


def test_dropout_errors_and_config():
    with pytest.raises(InputError, match=r"Dropout: dropout_ratio must be in \[0, 1\)"):
        Dropout(1.0)
    with pytest.raises(InputError, match="Dropout: mode must be one of"):
        Dropout(0.5, mode="scaled")
    with pytest.raises(StateError):
        Dropout().backward(np.ones(3))
    layer = Dropout(0.3, mode="book", seed=11)
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"Dropout: dout has shape \(3, 2\), expected \(2, 3\)"):
        layer.backward(np.ones((3, 2)))
    assert layer.config() == {"dropout_ratio": 0.3, "mode": "book", "seed": 11}
    clone = Dropout.from_config(layer.config())
    np.testing.assert_array_equal(clone.forward(np.ones((4, 4))), Dropout(0.3, "book", 11).forward(np.ones((4, 4))))


# -- BatchNormalization: behaviour ----------------------------------------------------------
def test_running_variance_starts_at_one_not_zero():
    # The book starts running_var at 0: evaluating before training divides by sqrt(1e-6).
    D = 5
    layer = BatchNormalization(np.ones(D), np.zeros(D))
    x = np.random.default_rng(4).standard_normal((3, D))
    out = layer.forward(x, train=False)
    np.testing.assert_allclose(out, x / np.sqrt(1 + 1e-6), rtol=1e-12)
    np.testing.assert_array_equal(layer.running_mean, np.zeros(D))
    np.testing.assert_array_equal(layer.running_var, np.ones(D))
    assert layer.buffers["running_var"] is layer.running_var


def test_4d_input_is_normalised_per_channel():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 3, 4, 5)) * np.array([1.0, 5.0, 0.2])[:, None, None] + 3
    out = BatchNormalization(np.ones(3), np.zeros(3)).forward(x)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, atol=1e-4)  # var/(var+eps)
    # Each pixel on its own is NOT standardised (that was the book's per-pixel behaviour).
    assert np.max(np.abs(out.mean(axis=0))) > 0.1


def test_per_feature_keeps_the_books_per_pixel_behaviour():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 2, 3, 3)) * 2 + 1
    D = 2 * 3 * 3
    gamma, beta = rng.standard_normal(D), rng.standard_normal(D)
    per_pixel = BatchNormalization(gamma, beta, per_feature=True)
    flat = BatchNormalization(gamma, beta)
    out = per_pixel.forward(x)
    np.testing.assert_allclose(out, flat.forward(x.reshape(8, D)).reshape(x.shape), rtol=1e-12)
    xf = x.reshape(8, D)
    book = gamma * (xf - xf.mean(0)) / np.sqrt(xf.var(0) + 10e-7) + beta  # the book's formula
    np.testing.assert_allclose(out.reshape(8, D), book, rtol=1e-12)
    with pytest.raises(ShapeError, match=r"BatchNormalization: input has 2 channels.*gamma has shape \(18,\)"):
        BatchNormalization(gamma, beta).forward(x)


def test_running_statistics_follow_the_books_momentum():
    rng = np.random.default_rng(7)
    layer = BatchNormalization(np.ones(4), np.zeros(4), momentum=0.8)
    rm, rv = np.zeros(4), np.ones(4)
    for _ in range(3):
        x = rng.standard_normal((10, 4)) * 3 + 2
        layer.forward(x, train=True)
        rm = 0.8 * rm + 0.2 * x.mean(0)
        rv = 0.8 * rv + 0.2 * x.var(0)  # the biased variance, as the book
    np.testing.assert_allclose(layer.running_mean, rm, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, rv, rtol=1e-12)
    # Evaluation uses them and leaves them alone.
    x = rng.standard_normal((5, 4))
    np.testing.assert_allclose(layer.forward(x, train=False), (x - rm) / np.sqrt(rv + 1e-6), rtol=1e-12)
    np.testing.assert_allclose(layer.running_mean, rm, rtol=1e-12)


def test_buffers_are_replaced_not_written_in_place():
    layer = BatchNormalization(np.ones(3), np.zeros(3))
    before = layer.running_mean
    layer.forward(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(before, np.zeros(3))
    assert layer.running_mean is not before


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_keeps_dtype_and_mutates_nothing(dtype, train):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((4, 3, 2, 2)).astype(dtype)
    layer = BatchNormalization(np.ones(3, dtype), np.zeros(3, dtype))
    x0 = x.copy()
    out = layer.forward(x, train=train)
    out0 = out.copy()
    dout = rng.standard_normal(x.shape).astype(dtype)
    dout0 = dout.copy()
    dx = layer.backward(dout)
    assert out.dtype == dx.dtype == layer.dgamma.dtype == layer.dbeta.dtype == dtype
    assert layer.running_mean.dtype == layer.running_var.dtype == dtype
    for now, before in ((x, x0), (out, out0), (dout, dout0)):
        np.testing.assert_array_equal(now, before)


def test_batchnorm_errors():
    layer = BatchNormalization(np.ones(3), np.zeros(3))
    with pytest.raises(StateError):
        layer.backward(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"BatchNormalization: input has 4 features per sample \(x.shape=\(2, 4\)\)"):
        layer.forward(np.ones((2, 4)))
    with pytest.raises(ShapeError, match=r"BatchNormalization: input must have a batch axis.*\(3,\)"):
        layer.forward(np.ones(3))
    with pytest.warns(LayerwiseWarning, match=r"one value per feature \(x.shape=\(1, 3\)\).*gradient"):
        layer.forward(np.ones((1, 3)), train=True)
    layer.forward(np.ones((1, 3)), train=False)  # a single sample is fine at evaluation
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"BatchNormalization: dout has shape \(3, 3\), expected \(2, 3\)"):
        layer.backward(np.ones((3, 3)))
    with pytest.raises(ShapeError, match="gamma and beta"):
        BatchNormalization(np.ones(3), np.zeros(4))
    with pytest.raises(ShapeError, match=r"running_var has shape \(2,\), expected \(3,\)"):
        BatchNormalization(np.ones(3), np.zeros(3), running_var=np.ones(2))
    with pytest.raises(InputError, match="momentum"):
        BatchNormalization(np.ones(3), np.zeros(3), momentum=1.5)


def test_batchnorm_book_attributes_and_config():
    gamma, beta = np.full(4, 2.0, np.float32), np.zeros(4, np.float32)
    layer = BatchNormalization(gamma, beta, momentum=0.95, per_feature=True)
    assert layer.gamma is layer.params["gamma"] is gamma and layer.beta is layer.params["beta"]
    layer.forward(np.arange(8.0, dtype=np.float32).reshape(2, 4))
    layer.backward(np.ones((2, 4), np.float32))
    assert layer.dgamma is layer.grads["gamma"] and layer.dbeta is layer.grads["beta"]
    assert set(layer.buffers) == {"running_mean", "running_var"}
    config = layer.config()
    assert config == {"num_features": 4, "momentum": 0.95, "eps": 1e-6, "per_feature": True}
    clone = BatchNormalization.from_config(config, dtype=np.float64)
    assert clone.config() == config and clone.gamma.dtype == np.float64
    # Placeholders of the right shapes (zeros, free until written), which a file's tensors replace.
    assert {k: v.shape for k, v in {**clone.params, **clone.buffers}.items()} == dict.fromkeys(
        ["gamma", "beta", "running_mean", "running_var"], (4,))
    assert layer.output_shape((7, 4)) == (7, 4)


# -- BatchNormalization: gradients and PyTorch parity ---------------------------------------
@settings(max_examples=25)
@given(
    # At least 3 values per feature: with 2, x̂ = ±1 and dx is exactly 0 (round-off only), so a
    # relative error is meaningless.
    shape=st.sampled_from([(3, 3), (5, 1), (7, 4), (3, 2, 3, 3), (3, 1, 2, 4), (3, 3, 5), (4, 2, 1, 1)]),
    per_feature=st.booleans(), train=st.booleans(), seed=SEEDS,
)
def test_batchnorm_gradcheck(shape, per_feature, train, seed):
    rng = np.random.default_rng(seed)
    D = int(np.prod(shape[1:])) if per_feature or len(shape) == 2 else shape[1]
    layer = BatchNormalization(
        rng.uniform(0.5, 2.0, D), rng.standard_normal(D), per_feature=per_feature,
        running_mean=rng.standard_normal(D), running_var=rng.uniform(0.5, 2.0, D),
    )
    x = rng.standard_normal(shape) * rng.uniform(0.5, 3.0) + rng.uniform(-2, 2)
    # h on the scale of the smallest spread of a normalised group: with 3 values per feature
    # the batch variance can be small, and the central difference's O((h/σ)²) truncation error
    # then passes 1e-7 (h = 1e-5 with σ = 0.007: 1.02e-7, found by Hypothesis; it falls 100×
    # per 10× smaller h, as truncation does, while round-off stays ~1e-10).
    groups = 0 if per_feature or x.ndim == 2 else (0, *range(2, x.ndim))
    h = min(1e-5, 1e-4 * float(x.std(axis=groups).min()))
    errors = check_layer(layer, x, seed=seed, train=train, h=h)
    assert set(errors) == {"x", "gamma", "beta"}
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("shape", [(16, 5), (8, 3, 5, 4), (32, 7, 2, 2)])
def test_batchnorm_train_matches_torch(dtype, tol, shape):
    rng = np.random.default_rng(9)
    C = shape[1]
    x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    gamma, beta = rng.uniform(0.5, 2, C).astype(dtype), rng.standard_normal(C).astype(dtype)
    rm0, rv0 = rng.standard_normal(C).astype(dtype), rng.uniform(0.5, 2, C).astype(dtype)
    layer = BatchNormalization(gamma, beta, momentum=0.9, running_mean=rm0, running_var=rv0, eps=1e-5)
    out = layer.forward(x, train=True)
    dout = rng.standard_normal(shape).astype(dtype)
    dx = layer.backward(dout)

    tx, tg, tb = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    trm, trv = torch.tensor(rm0), torch.tensor(rv0)
    tout = F.batch_norm(tx, trm, trv, tg, tb, training=True, momentum=1 - 0.9, eps=1e-5)
    tout.backward(torch.from_numpy(dout))
    for name, ours, theirs in (("out", out, tout), ("dx", dx, tx.grad), ("dgamma", layer.dgamma, tg.grad),
                               ("dbeta", layer.dbeta, tb.grad)):
        theirs = theirs.detach().numpy()
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=tol * np.max(np.abs(theirs)), err_msg=name)
    # Same running mean; torch's running variance uses the unbiased m/(m-1) correction, ours
    # the biased variance the book uses.
    m = x.size // C
    np.testing.assert_allclose(layer.running_mean, trm.numpy(), rtol=10 * tol, atol=10 * tol)
    unbiased_part = trv.numpy() - 0.9 * rv0
    np.testing.assert_allclose(layer.running_var - 0.9 * rv0, unbiased_part * (m - 1) / m,
                               rtol=10 * tol, atol=10 * tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_eval_matches_torch(dtype):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 3, 2, 5)).astype(dtype)
    gamma, beta = rng.uniform(0.5, 2, 3).astype(dtype), rng.standard_normal(3).astype(dtype)
    rm, rv = rng.standard_normal(3).astype(dtype), rng.uniform(0.5, 2, 3).astype(dtype)
    layer = BatchNormalization(gamma, beta, running_mean=rm, running_var=rv)
    out = layer.forward(x, train=False)
    dout = rng.standard_normal(x.shape).astype(dtype)
    dx = layer.backward(dout)
    tx = torch.tensor(x, requires_grad=True)
    tout = F.batch_norm(tx, torch.tensor(rm), torch.tensor(rv), torch.tensor(gamma), torch.tensor(beta),
                        training=False, eps=1e-6)
    tout.backward(torch.from_numpy(dout))
    tol = 1e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=tol, atol=tol)


# -- layerwise gradcheck rows ------------------------------------------------------------------
def test_gradcheck_cases_pass_and_are_registered():
    cases = list(norm_cases())
    labels = {case.label for case in standard_cases()}
    for case in cases:
        assert case.label in labels
        errors = case.run(seed=0)
        assert max(errors.values()) < 1e-7, (case.label, errors)
    assert any("Dropout" in c.label for c in cases) and any("(N, C, H, W)" in c.label for c in cases)

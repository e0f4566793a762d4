"""Convolution and pooling layers: gradient checks, parity with PyTorch, the contract, the book's weights."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from book_reference import SEEDS, book_im2col, book_max_pool, geometries, torch_pool
from conftest import unambiguous_argmax
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from layerwise.errors import InputError, ShapeError, StateError
from layerwise.gradcheck import check_layer, standard_cases
from layerwise.gradcheck.cases import conv_cases
from layerwise.kernels.conv import im2col
from layerwise.layers.conv import AvgPooling, Convolution, Pooling


def torch_conv(x, W, b, dout, stride, pad):
    tx, tW, tb = (torch.tensor(a, requires_grad=True) for a in (x, W, b))
    out = F.conv2d(tx, tW, tb, stride=stride, padding=pad)
    out.backward(torch.from_numpy(dout))
    return [a.detach().numpy() for a in (out, tx.grad, tW.grad, tb.grad)]


# -- Pooling ---------------------------------------------------------------------------
def distinct(rng, shape):
    """Values spaced 0.1 apart in random order: no ties, no near-ties within gradcheck's h."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.1 - n * 0.05).reshape(shape)


@st.composite
def pool_geometries(draw):
    ph, pw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, min(ph, pw) // 2))
    OH, OW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    H, W = (OH - 1) * stride + ph - 2 * pad, (OW - 1) * stride + pw - 2 * pad
    assume(H >= 1 and W >= 1)
    return draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W, ph, pw, stride, pad


POOL_CASES = [  # (x shape, ph, pw, stride, pad)
    ((3, 4, 8, 8), 2, 2, 2, 0),  # tiled: the fast path
    ((2, 3, 9, 9), 3, 3, 2, 1),
    ((2, 2, 7, 8), 3, 2, 1, 1),
    ((2, 2, 6, 9), 2, 3, 2, 1),
    ((1, 2, 6, 6), 3, 3, 3, 0),  # tiled 3x3
]


# -- the book's published weights through these layers, on real MNIST -------------------------
def _mnist_test_images(mnist_dir, n):
    from layerwise.datasets.idx import read_idx

    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz")[:n]
    labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz")[:n]
    return images.reshape(n, 1, 28, 28).astype(np.float64) / 255.0, labels


def _run(layers, x):
    for layer in layers:
        x = layer.forward(x, train=False)
    return x


# -- Convolution ----------------------------------------------------------------------------
@settings(max_examples=25)
@given(geometries(), SEEDS)
def test_convolution_gradcheck(geom, seed):
    N, C, H, W, FH, FW, stride, pad = geom
    rng = np.random.default_rng(seed)
    FN = int(rng.integers(1, 4))
    layer = Convolution(rng.standard_normal((FN, C, FH, FW)), rng.standard_normal(FN), stride, pad)
    errors = check_layer(layer, rng.standard_normal((N, C, H, W)), seed=seed)
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < 1e-7, errors


@pytest.mark.parametrize("dtype, tol", [(np.float32, 2e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize(
    "x_shape, W_shape, stride, pad",
    [
        ((4, 3, 10, 10), (5, 3, 3, 3), 1, 1),
        ((3, 2, 11, 9), (4, 2, 3, 5), 2, 1),
        ((2, 1, 28, 28), (6, 1, 5, 5), 1, 0),
        ((2, 4, 8, 8), (3, 4, 2, 2), 2, 0),
        ((2, 3, 9, 6), (2, 3, 4, 1), 3, 2),
    ],
)
def test_convolution_matches_torch(dtype, tol, x_shape, W_shape, stride, pad):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal(W_shape).astype(dtype)
    b = rng.standard_normal(W_shape[0]).astype(dtype)
    layer = Convolution(W, b, stride, pad)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx = layer.backward(dout)
    ref = torch_conv(x, W, b, dout, stride, pad)
    for name, ours, theirs in zip(["out", "dx", "dW", "db"], [out, dx, layer.dW, layer.db], ref, strict=True):
        assert ours.dtype == dtype, name
        scale = np.max(np.abs(theirs))
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=tol * scale, err_msg=name)


def test_convolution_keeps_float32_and_mutates_nothing():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    layer = Convolution(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), np.zeros(4, np.float32), 1, 1)
    x0 = x.copy()
    out = layer.forward(x)
    out0 = out.copy()
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dout0 = dout.copy()
    dx = layer.backward(dout)
    assert out.dtype == dx.dtype == layer.dW.dtype == layer.db.dtype == np.float32
    np.testing.assert_array_equal(dout, dout0)
    np.testing.assert_array_equal(out, out0)
    np.testing.assert_array_equal(x, x0)


def test_convolution_book_attributes_are_params():
    W, b = np.ones((2, 1, 3, 3)), np.zeros(2)
    layer = Convolution(W, b)
    assert layer.W is layer.params["W"] is W and layer.b is layer.params["b"] is b
    layer.forward(np.ones((1, 1, 4, 4)))
    layer.backward(np.ones((1, 2, 2, 2)))
    assert layer.dW is layer.grads["W"] and layer.db is layer.grads["b"]
    np.testing.assert_array_equal(layer.db, [4.0, 4.0])
    assert layer.col.shape == (4, 9) and layer.col_W.shape == (9, 2)


def test_convolution_first_layer_skips_input_grad():
    rng = np.random.default_rng(2)
    layer = Convolution(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), 1, 1)
    x, dout = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((2, 3, 5, 5))
    layer.forward(x)
    dx = layer.backward(dout)
    dW = layer.dW.copy()
    layer.needs_input_grad = False
    layer.forward(x)
    assert layer.backward(dout) is None
    np.testing.assert_array_equal(layer.dW, dW)
    assert dx.shape == x.shape


def test_convolution_shape_errors_name_layer_and_shapes():
    layer = Convolution(np.zeros((4, 3, 3, 3)), np.zeros(4))
    with pytest.raises(ShapeError, match=r"Convolution: input has 1 channels \(x.shape=\(2, 1, 5, 5\)\) "
                       r"but W expects 3 \(W.shape=\(4, 3, 3, 3\)\)"):
        layer.forward(np.zeros((2, 1, 5, 5)))
    with pytest.raises(ShapeError, match=r"Convolution: input must be 4-D.*\(3, 5, 5\)"):
        layer.forward(np.zeros((3, 5, 5)))
    layer.forward(np.zeros((2, 3, 5, 5)))
    with pytest.raises(ShapeError, match=r"Convolution: dout has shape \(2, 4, 5, 5\), expected \(2, 4, 3, 3\)"):
        layer.backward(np.zeros((2, 4, 5, 5)))
    with pytest.raises(ShapeError, match="W must be 4-D"):
        Convolution(np.zeros((4, 3, 3)), np.zeros(4))
    with pytest.raises(ShapeError, match=r"b has shape \(3,\), expected \(4,\)"):
        Convolution(np.zeros((4, 3, 3, 3)), np.zeros(3))
    for bad in ({"stride": 0}, {"pad": -1}, {"stride": 1.5}):
        with pytest.raises(InputError, match="Convolution"):
            Convolution(np.zeros((4, 3, 3, 3)), np.zeros(4), **bad)


@pytest.mark.parametrize("layer", [
    Convolution(np.zeros((1, 1, 2, 2)), np.zeros(1)), Pooling(2, 2), AvgPooling(2, 2)
])
def test_backward_before_forward_is_a_clear_error(layer):
    with pytest.raises(StateError, match="backward called before forward"):
        layer.backward(np.zeros((1, 1, 1, 1)))


def test_convolution_config_round_trip_and_output_shape():
    layer = Convolution(np.ones((6, 3, 5, 3), np.float32), np.ones(6, np.float32), stride=2, pad=1)
    config = layer.config()
    assert config == {"in_channels": 3, "out_channels": 6, "kernel_size": [5, 3], "stride": 2, "pad": 1}
    clone = Convolution.from_config(config, dtype=np.float64)
    assert clone.W.shape == (6, 3, 5, 3) and clone.W.dtype == np.float64 and clone.b.shape == (6,)
    assert clone.config() == config
    x = np.zeros((2, 3, 9, 7))
    assert layer.output_shape(x.shape) == layer.forward(x).shape == (2, 6, 4, 4)
    assert "3 -> 6" in repr(layer)


@settings(max_examples=25)
@given(pool_geometries(), st.sampled_from([Pooling, AvgPooling]), SEEDS)
def test_pooling_gradcheck(geom, cls, seed):
    N, C, H, W, ph, pw, stride, pad = geom
    rng = np.random.default_rng(seed)
    errors = check_layer(cls(ph, pw, stride, pad), distinct(rng, (N, C, H, W)), seed=seed)
    assert set(errors) == {"x"}
    assert errors["x"] < 1e-7, errors


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind, cls", [("max", Pooling), ("avg", AvgPooling)])
@pytest.mark.parametrize("x_shape, ph, pw, stride, pad", POOL_CASES)
def test_pooling_matches_torch(dtype, kind, cls, x_shape, ph, pw, stride, pad):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(dtype)
    layer = cls(ph, pw, stride, pad)
    out = layer.forward(x)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dout0 = dout.copy()
    dx = layer.backward(dout)
    ref_out, ref_dx = torch_pool(kind, x, dout, ph, pw, stride, pad)
    assert out.dtype == dx.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=tol)
    np.testing.assert_allclose(dx, ref_dx, rtol=0, atol=tol * 4)
    np.testing.assert_array_equal(dout, dout0)


def test_pooling_errors():
    with pytest.raises(InputError, match=r"Pooling: pad 2 is more than half the 2x2 window"):
        Pooling(2, 2, stride=2, pad=2)
    with pytest.raises(InputError, match="AvgPooling: stride"):
        AvgPooling(2, 2, stride=0)
    layer = Pooling(2, 2)
    with pytest.raises(ShapeError, match=r"Pooling: input must be 4-D.*\(4, 4\)"):
        layer.forward(np.zeros((4, 4)))
    layer.forward(np.zeros((1, 2, 4, 4)))
    with pytest.raises(ShapeError, match=r"Pooling: dout has shape \(1, 2, 4, 4\), expected \(1, 2, 2, 2\)"):
        layer.backward(np.zeros((1, 2, 4, 4)))


@pytest.mark.parametrize("cls", [Pooling, AvgPooling])
@pytest.mark.parametrize("stride", [1, 2])
def test_pooling_keeps_float32_and_mutates_nothing(cls, stride):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    x0 = x.copy()
    layer = cls(2, 2, stride)
    out = layer.forward(x)
    out0 = out.copy()
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dout0 = dout.copy()
    dx = layer.backward(dout)
    assert out.dtype == dx.dtype == np.float32
    for now, before in ((x, x0), (out, out0), (dout, dout0)):
        np.testing.assert_array_equal(now, before)


def test_pooling_config_round_trip():
    layer = AvgPooling(3, 2, stride=1, pad=1)
    assert layer.config() == {"pool_h": 3, "pool_w": 2, "stride": 1, "pad": 1}
    assert AvgPooling.from_config(layer.config()).config() == layer.config()
    assert Pooling(2, 2).output_shape((5, 3, 24, 24)) == (5, 3, 12, 12)


# -- the conv+pool block the SimpleConvNet runs, end to end against torch --------------------
def test_conv_relu_pool_block_matches_torch_float32():
    rng = np.random.default_rng(7)
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    W = (0.1 * rng.standard_normal((30, 1, 5, 5))).astype(np.float32)
    b = (0.1 * rng.standard_normal(30)).astype(np.float32)
    conv, pool = Convolution(W, b), Pooling(2, 2, stride=2)
    conv.needs_input_grad = False
    h = conv.forward(x)
    out = pool.forward(np.maximum(h, 0))
    dout = rng.standard_normal(out.shape).astype(np.float32)
    conv.backward(np.where(h > 0, pool.backward(dout), 0))
    tW, tb = torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)
    tout = F.max_pool2d(F.relu(F.conv2d(torch.from_numpy(x), tW, tb)), 2, 2)
    tout.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=0, atol=1e-5)
    np.testing.assert_allclose(conv.dW, tW.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(conv.db, tb.grad.numpy(), rtol=1e-4, atol=1e-4)


# -- layerwise gradcheck rows ----------------------------------------------------------------
def test_gradcheck_cases_pass_and_are_registered():
    cases = list(conv_cases())
    labels = {case.label for case in standard_cases()}
    for case in cases:
        assert case.label in labels
        errors = case.run(seed=0)
        assert max(errors.values()) < 1e-7, (case.label, errors)
    assert any("stride 2" in c.label for c in cases) and any("pad 1" in c.label for c in cases)


def test_book_simple_convnet_weights_give_the_books_numbers(book_weights_dir, mnist_t10k_dir):
    from layerwise.io import load_book_params
    from layerwise.layers import Affine, ReLU

    p = load_book_params(book_weights_dir / "params.pkl")
    x, t = _mnist_test_images(mnist_t10k_dir, 1000)
    layers = [Convolution(p["W1"], p["b1"]), ReLU(), Pooling(2, 2, stride=2),
              Affine(p["W2"], p["b2"]), ReLU(), Affine(p["W3"], p["b3"])]
    scores = _run(layers, x)
    # The book's own algorithm (im2col in its column order, argmax pooling) as the reference.
    h = book_im2col(x, 5, 5) @ p["W1"].reshape(30, -1).T + p["b1"]
    h = np.maximum(h, 0).reshape(1000, 24, 24, 30).transpose(0, 3, 1, 2)
    h = book_max_pool(h, 2, 2, 2)[0].reshape(1000, -1)
    ref = np.maximum(h @ p["W2"] + p["b2"], 0) @ p["W3"] + p["b3"]
    np.testing.assert_allclose(scores, ref, rtol=1e-10, atol=1e-10)
    # The published params.pkl scores 0.9600 on all 10,000 (PyTorch with these weights agrees),
    # 0.961 on these first 1,000; no prediction is within rounding of another class.
    predicted = unambiguous_argmax(scores, np.float64, terms=25 + 4320 + 100)
    assert np.mean(predicted == t) == pytest.approx(0.961, abs=0.0005)


def test_book_deep_convnet_weights_with_book_dropout(book_weights_dir, mnist_t10k_dir):
    from layerwise.io import load_book_params
    from layerwise.layers import Affine, ReLU
    from layerwise.layers.norm import Dropout

    p = load_book_params(book_weights_dir / "deep_convnet_params.pkl")
    x, t = _mnist_test_images(mnist_t10k_dir, 300)
    layers = []
    for i, pad in enumerate([1, 1, 1, 2, 1, 1], start=1):
        layers += [Convolution(p[f"W{i}"], p[f"b{i}"], 1, pad), ReLU()]
        if i % 2 == 0:
            layers.append(Pooling(2, 2, stride=2))
    layers += [Affine(p["W7"], p["b7"]), ReLU(), Dropout(0.5, mode="book"),
               Affine(p["W8"], p["b8"]), Dropout(0.5, mode="book")]
    scores = _run(layers, x)
    assert scores.shape == (300, 10)
    # These weights score 0.9797 on all 10,000 (PyTorch with them agrees), 0.98333 on the
    # first 300 (295 right); no prediction is within rounding of another class.
    predicted = unambiguous_argmax(scores, np.float64, terms=9 * (1 + 16 + 16 + 32 + 32 + 64) + 1024 + 50)
    assert np.sum(predicted == t) == 295


def test_convolution_keeps_x_and_shows_col_on_demand():
    # Training keeps the input, not its FH·FW times larger im2col matrix (kernels.conv makes it
    # again, a few images at a time, for dW); ``col`` is still there for a reader.
    rng = np.random.default_rng(3)
    layer = Convolution(rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2), 1, 1)
    assert layer.col is None
    x = rng.standard_normal((2, 3, 4, 4))
    layer.forward(x)
    assert layer.x is x and "col" not in vars(layer)
    np.testing.assert_array_equal(layer.col, im2col(x, 3, 3, 1, 1))
    dout = rng.standard_normal((2, 2, 4, 4))
    layer.backward(dout)
    d = dout.transpose(0, 2, 3, 1).reshape(-1, 2)  # the book's dW = (colᵀ·dout)ᵀ in its own order
    np.testing.assert_allclose(layer.dW, (book_im2col(x, 3, 3, 1, 1).T @ d).T.reshape(2, 3, 3, 3), rtol=1e-12)


def test_convolution_gradients_hold_when_every_image_is_its_own_chunk(monkeypatch):
    # kernels.conv works through the batch a chunk at a time; one image a chunk is the most
    # cut up it gets, and the layer's gradients must not notice.
    from layerwise.kernels import cache_sizes

    monkeypatch.setattr(cache_sizes, "conv_chunk_bytes", lambda: 1)
    rng = np.random.default_rng(8)
    for C, FN, stride, pad in ((2, 3, 1, 1), (3, 2, 1, 1), (2, 2, 2, 1)):  # dx by correlation, per offset, stride 2
        layer = Convolution(rng.standard_normal((FN, C, 3, 3)), rng.standard_normal(FN), stride, pad)
        errors = check_layer(layer, rng.standard_normal((3, C, 7, 5)))
        assert max(errors.values()) < 1e-7, errors


def test_convolution_makes_col_for_a_reader_once_per_forward():
    rng = np.random.default_rng(4)
    layer = Convolution(rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2))
    layer.forward(rng.standard_normal((1, 1, 5, 5)))
    assert layer.col is layer.col  # made once, not on every read (the graph views read it per request)
    first = layer.col
    x = rng.standard_normal((1, 1, 5, 5))
    layer.forward(x)
    assert layer.col is not first
    np.testing.assert_array_equal(layer.col, im2col(x, 3, 3))

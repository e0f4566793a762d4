"""kernels.winograd equals the im2col product it replaces, and kernels.conv takes it only where
this machine's measurement (kept by kernels.tuning) says so."""

import itertools
import json
from fractions import Fraction

import numpy as np
import pytest
from book_reference import SEEDS, book_col2im
from hypothesis import given, settings
from hypothesis import strategies as st

from layerwise.errors import ShapeError
from layerwise.functional import im2col as book_im2col
from layerwise.gradcheck.checks import check_layer
from layerwise.kernels import blas_limits, cache_sizes, kept_choices, threads, tuning, winograd
from layerwise.kernels import conv as conv_kernels
from layerwise.layers import Convolution


def _col_W(W):
    """W (FN, C, FH, FW) as the (fh, fw, c) rows kernels.conv multiplies by."""
    return W.transpose(0, 2, 3, 1).reshape(W.shape[0], -1).T


def _plain(x, W, pad):
    """The book's im2col product, rows (n, oh, ow) by FN columns."""
    return book_im2col(x, 3, 3, 1, pad) @ W.reshape(W.shape[0], -1).T


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 3), c=st.integers(1, 5), fn=st.integers(1, 4), oh=st.integers(1, 7), ow=st.integers(1, 7),
    pad=st.integers(0, 2), channels_last=st.booleans(), seed=SEEDS,
    way=st.sampled_from([arguments for arguments in conv_kernels._WAY_ARGUMENTS.values() if arguments]),
)
def test_winograd_equals_the_im2col_product_and_weight_gradient(n, c, fn, oh, ow, pad, channels_last, seed, way):
    # Output sizes that are and are not multiples of the block (a block overhangs the edge),
    # every pad, either layout, every way: F(2×2) by products and by sums, F(4×4) by products.
    # F(4×4)'s float32 rounding is ~10x F(2×2)'s (its matrices hold up to 8), hence its tolerance.
    rng = np.random.default_rng(seed)
    H, W = oh + 2 - 2 * pad, ow + 2 - 2 * pad
    if H < 1 or W < 1:
        return
    x = rng.standard_normal((n, H, W, c)).transpose(0, 3, 1, 2) if channels_last else rng.standard_normal((n, c, H, W))
    Wt = rng.standard_normal((fn, c, 3, 3))
    f32 = 1e-5 if way[1] == 2 else 2e-4
    rows = winograd.winograd_conv(x, Wt, pad, *way)
    assert rows.shape == (n * oh * ow, fn) and rows.dtype == np.float64
    np.testing.assert_allclose(rows, _plain(x, Wt, pad), rtol=1e-12, atol=1e-12)
    rows32 = winograd.winograd_conv(x.astype(np.float32), Wt.astype(np.float32), pad, *way)
    assert rows32.dtype == np.float32
    np.testing.assert_allclose(rows32, _plain(x, Wt, pad), rtol=f32, atol=f32)
    # The bias, added to the products M at the tile's position (1, 1), reaches every output once.
    b = rng.standard_normal(fn)
    np.testing.assert_allclose(winograd.winograd_conv(x, Wt, pad, *way, bias=b), _plain(x, Wt, pad) + b,
                               rtol=1e-12, atol=1e-12)
    rows32 = winograd.winograd_conv(x.astype(np.float32), Wt.astype(np.float32), pad, *way, bias=b.astype(np.float32))
    np.testing.assert_allclose(rows32, _plain(x, Wt, pad) + b, rtol=f32, atol=f32)

    d = rng.standard_normal((n * oh * ow, fn))
    plain = (d.T @ book_im2col(x, 3, 3, 1, pad)).reshape(fn, c, 3, 3)  # the book's dW
    dW = winograd.winograd_weight_grad(d, x, pad, *way)
    assert dW.shape == (fn, c, 3, 3) and dW.dtype == np.float64
    np.testing.assert_allclose(dW, plain, rtol=1e-12, atol=1e-12)
    dW32 = winograd.winograd_weight_grad(d.astype(np.float32), x.astype(np.float32), pad, *way)
    assert dW32.dtype == np.float32
    np.testing.assert_allclose(dW32, plain, rtol=10 * f32, atol=10 * f32)


def test_the_filter_transform_is_G_g_G_transposed():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((5, 4, 3, 3))
    U = winograd.filter_transform(W)
    for f, c in np.ndindex(5, 4):
        expected = winograd.G @ W[f, c] @ winograd.G.T
        np.testing.assert_allclose(U[:, c, f].reshape(4, 4), expected, rtol=1e-14, atol=1e-14)
    # and the whole of F(2x2, 3x3) on one tile, from the paper's matrices
    d, g = rng.standard_normal((4, 4)), rng.standard_normal((3, 3))
    Y = winograd.A_T @ ((winograd.G @ g @ winograd.G.T) * (winograd.B_T @ d @ winograd.B_T.T)) @ winograd.A_T.T
    direct = [[np.sum(d[i : i + 3, j : j + 3] * g) for j in range(2)] for i in range(2)]
    np.testing.assert_allclose(Y, direct, rtol=1e-12, atol=1e-12)


def test_only_stride_1_3x3_pad_0_to_2_float_convolutions_apply():
    assert winograd.applies((8, 8, 3, 3), 1, 1, np.float32)
    assert winograd.applies((8, 8, 3, 3), 1, 2, np.float64)
    assert not winograd.applies((8, 8, 3, 3), 2, 1, np.float32)
    assert not winograd.applies((8, 8, 5, 5), 1, 2, np.float32)
    assert not winograd.applies((8, 8, 3, 3), 1, 3, np.float32)
    assert not winograd.applies((8, 8, 3, 3), 1, 1, np.float16)


@pytest.fixture(params=[1, 2], ids=["1 thread", "2 owned threads"])
def owned(request, monkeypatch):
    monkeypatch.setattr(threads, "run_threads", lambda: (request.param, True))
    with threads.owned_threads():
        yield request.param


@pytest.mark.parametrize("budget", [1, 10**9], ids=["one image a chunk", "one chunk"])
def test_winograd_in_chunks_on_the_owned_threads(owned, monkeypatch, budget):
    monkeypatch.setattr(cache_sizes, "core_cache_bytes", lambda: budget)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((7, 8, 9, 9))
    Wt = rng.standard_normal((6, 8, 3, 3))
    np.testing.assert_allclose(winograd.winograd_conv(x, Wt, 1), _plain(x, Wt, 1), rtol=1e-12, atol=1e-12)
    d = rng.standard_normal((7 * 81, 6))
    plain = (d.T @ book_im2col(x, 3, 3, 1, 1)).reshape(6, 8, 3, 3)
    np.testing.assert_allclose(winograd.winograd_weight_grad(d, x, 1), plain, rtol=1e-12, atol=1e-12)


# -- where kernels.conv takes the way ----------------------------------------------------------


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LAYERWISE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("LAYERWISE_TUNING", "1")
    monkeypatch.setattr(kept_choices, "_memory", {})
    return tmp_path / "cache" / "tuning.json"


def _spy(monkeypatch, ways=None):
    """The shapes winograd_conv was called on (and into ``ways``, the transforms and block of each call)."""
    calls = []
    real = winograd.winograd_conv

    def spy(x, W, pad, transforms="products", block=2, **options):
        calls.append(x.shape)
        if ways is not None:
            ways.append((transforms, block))
        return real(x, W, pad, transforms, block, **options)

    monkeypatch.setattr(winograd, "winograd_conv", spy)
    return calls


def _large_enough(rng, dtype=np.float64):
    """A convolution above WINOGRAD_MIN_WORK multiply-adds an image (16 -> 16 channels, 28×28)
    on WINOGRAD_MIN_IMAGES images."""
    x = rng.standard_normal((conv_kernels.WINOGRAD_MIN_IMAGES, 16, 28, 28)).astype(dtype)
    Wt = (rng.standard_normal((16, 16, 3, 3)) * 0.1).astype(dtype)
    assert 28 * 28 * 16 * 16 * 9 >= conv_kernels.WINOGRAD_MIN_WORK
    return x, Wt


def test_conv_forward_takes_winograd_where_measured_faster_and_keeps_the_choice(monkeypatch, cache):
    rng = np.random.default_rng(6)
    x, Wt = _large_enough(rng)
    b = rng.standard_normal(16)
    measured = []
    monkeypatch.setattr(conv_kernels, "_time_ways", lambda *a: measured.append(1) or {"im2col": 2.0, "winograd": 1.0})
    calls = _spy(monkeypatch)
    out = conv_kernels.conv_forward(x, _col_W(Wt), b, 3, 3, 1, 1)
    np.testing.assert_allclose(out, _plain(x, Wt, 1) + b, rtol=1e-12, atol=1e-12)
    assert calls == [x.shape] and measured == [1]
    kept = json.loads(cache.read_text())["machines"][kept_choices.machine_signature()]
    (key, record), = ((key, record) for key, record in kept.items() if key.startswith("convolution "))
    assert key == f"convolution C16 FN16 28x28 pad 1 float64, BLAS threads {blas_limits.blas_threads()}, chunks on 1"
    assert record["way"] == "winograd" and record["ms"] == {"im2col": 2000.0, "winograd": 1000.0}
    monkeypatch.setattr(kept_choices, "_memory", {})  # a new process: only the file remembers
    conv_kernels.conv_forward(x, _col_W(Wt), b, 3, 3, 1, 1)
    assert measured == [1] and len(calls) == 2
    assert tuning.kept_ways() == {key.removeprefix("convolution "): record}  # what the benchmark reports


@pytest.mark.parametrize("seconds", [{"im2col": 1.0, "winograd": 2.0}, {"im2col": 1.0, "winograd": 0.99}])
def test_conv_forward_keeps_im2col_unless_winograd_is_clearly_faster(monkeypatch, cache, seconds):
    x, Wt = _large_enough(np.random.default_rng(7))
    monkeypatch.setattr(conv_kernels, "_time_ways", lambda *a: seconds)
    calls = _spy(monkeypatch)
    conv_kernels.conv_forward(x, _col_W(Wt), np.zeros(16), 3, 3, 1, 1)
    assert calls == []


def test_no_measurement_with_tuning_off_for_small_or_other_convolutions(monkeypatch, cache):
    monkeypatch.setattr(conv_kernels, "_time_ways", lambda *a: pytest.fail("measured"))
    calls = _spy(monkeypatch)
    rng = np.random.default_rng(8)
    x, Wt = _large_enough(rng)
    monkeypatch.setenv("LAYERWISE_TUNING", "0")
    conv_kernels.conv_forward(x, _col_W(Wt), np.zeros(16), 3, 3, 1, 1)
    monkeypatch.setenv("LAYERWISE_TUNING", "1")
    small = rng.standard_normal((2, 3, 6, 6))
    conv_kernels.conv_forward(small, _col_W(rng.standard_normal((4, 3, 3, 3))), np.zeros(4), 3, 3, 1, 1)
    five = rng.standard_normal((16, 16, 5, 5))
    conv_kernels.conv_forward(x, _col_W(five), np.zeros(16), 5, 5, 1, 2)  # 5x5: not this way
    conv_kernels.conv_forward(x[:, :, :27, :27], _col_W(Wt), np.zeros(16), 3, 3, 2, 1)  # stride 2: not this way
    assert calls == [] and tuning.kept_ways() == {}  # (the im2col products' block sizes may be kept)


def test_a_few_images_compute_by_im2col_and_the_measurement_ignores_the_callers_batch(monkeypatch, cache):
    asked = []
    monkeypatch.setattr(conv_kernels, "_time_ways", lambda *a: asked.append(a[0]) or {"im2col": 2.0, "winograd": 1.0})
    calls = _spy(monkeypatch)
    x, Wt = _large_enough(np.random.default_rng(14))
    conv_kernels.conv_forward(x[:1], _col_W(Wt), np.zeros(16), 3, 3, 1, 1)  # one image: im2col, unmeasured
    assert asked == [] and calls == []
    conv_kernels.conv_forward(x, _col_W(Wt), np.zeros(16), 3, 3, 1, 1)
    assert asked == [(16, 28, 28)] and calls == [x.shape]  # measured on its own sample, by image shape


def test_a_thread_plan_measured_over_convolutions_that_measure_their_way_does_not_hang(monkeypatch, cache):
    # Regression: the plan's measurement holds the machine lock while its training steps run,
    # and their convolutions asked for the lock again to measure Winograd: a hang for ever.
    import threading

    monkeypatch.setattr(conv_kernels, "_time_ways", lambda *a: {"im2col": 2.0, "winograd": 1.0})
    x, Wt = _large_enough(np.random.default_rng(16), np.float32)

    def step():
        conv_kernels.conv_forward(x, _col_W(Wt), np.zeros(16, np.float32), 3, 3, 1, 1)

    monkeypatch.setattr(tuning, "measure_plans", lambda step_fn, threads, plans=tuning.PLANS: (
        step_fn(), {plan: [1.0] * 3 for plan in plans})[1])
    done = []
    worker = threading.Thread(target=lambda: done.append(tuning.training_plan("net", 2, "blas", lambda: step)),
                              daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the plan's measurement hung on the machine lock"
    kept = json.loads(cache.read_text())["machines"][kept_choices.machine_signature()]
    assert "net | 2 threads" in kept and any(key.startswith("convolution") for key in kept)


def test_a_failing_measurement_falls_back_to_im2col_and_is_not_kept(monkeypatch, cache):
    x, Wt = _large_enough(np.random.default_rng(9))
    monkeypatch.setattr(conv_kernels, "_time_ways", lambda *a: 1 / 0)
    out = conv_kernels.conv_forward(x, _col_W(Wt), np.zeros(16), 3, 3, 1, 1)
    np.testing.assert_allclose(out, _plain(x, Wt, 1), rtol=1e-12, atol=1e-12)
    assert tuning.kept_ways() == {}


def test_the_real_measurement_times_every_way_on_the_input():
    x, Wt = _large_enough(np.random.default_rng(10), np.float32)
    for what in ("forward", "weight gradient"):
        seconds = conv_kernels._time_ways(x.shape[1:], Wt.shape, 1, np.dtype(np.float32), what)
        assert set(seconds) == set(tuning.CONV_WAYS) and all(s > 0 for s in seconds.values())


@pytest.mark.parametrize("faster", ["winograd", "winograd by sums", "winograd 4x4"])
def test_winograds_transforms_and_block_are_the_ones_measured_faster(monkeypatch, cache, faster):
    x, Wt = _large_enough(np.random.default_rng(17))
    seconds = {way: 1.5 for way in tuning.CONV_WAYS} | {"im2col": 2.0, faster: 1.0}
    monkeypatch.setattr(conv_kernels, "_time_ways", lambda *a: seconds)
    ways = []
    calls = _spy(monkeypatch, ways)
    out = conv_kernels.conv_forward(x, _col_W(Wt), np.zeros(16), 3, 3, 1, 1)
    np.testing.assert_allclose(out, _plain(x, Wt, 1), rtol=1e-12, atol=1e-12)
    expected = {"winograd": ("products", 2), "winograd by sums": ("sums", 2), "winograd 4x4": ("products", 4)}
    assert calls == [x.shape] and ways == [expected[faster]]
    assert tuning.kept_ways()[f"C16 FN16 28x28 pad 1 float64, BLAS threads {blas_limits.blas_threads()}, "
                              "chunks on 1"]["way"] == faster


def test_unknown_transforms_and_blocks_are_refused():
    x, W = np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3))
    with pytest.raises(ValueError, match="transforms must be one of"):
        winograd.winograd_conv(x, W, 1, "fft")
    with pytest.raises(ValueError, match="block must be one of"):
        winograd.winograd_conv(x, W, 1, "products", 3)
    with pytest.raises(ValueError, match="sums transforms are F\\(2×2\\)'s only"):
        winograd.winograd_weight_grad(np.zeros((9, 1)), x, 1, "sums", 4)


@pytest.mark.parametrize("block", sorted(winograd.BLOCKS))
def test_each_blocks_matrices_compute_the_correlation_exactly(block):
    # One tile in exact arithmetic: Aᵀ[(G g) ⊙ (Bᵀ d)] is the 1-D correlation of d (t values)
    # with g (3), so the 2-D Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A is the tile's m×m block of outputs.
    B_t, G_m, A_t = (np.vectorize(lambda v: Fraction(v).limit_denominator(1000))(m) for m in winograd.BLOCKS[block])
    t = block + 2
    assert B_t.shape == (t, t) and G_m.shape == (t, 3) and A_t.shape == (block, t)
    for k in range(t):  # d a unit vector, g each unit vector: the identity is bilinear
        for i in range(3):
            d, g = np.zeros(t, dtype=object), np.zeros(3, dtype=object)
            d[k], g[i] = Fraction(1), Fraction(1)
            y = A_t.dot(G_m.dot(g) * B_t.dot(d))
            assert list(y) == [d[j : j + 3].dot(g) for j in range(block)]
    rng = np.random.default_rng(block)
    d, g = rng.standard_normal((t, t)), rng.standard_normal((3, 3))
    B_f, G_f, A_f = (m.astype(float) for m in winograd.BLOCKS[block])
    Y = A_f @ ((G_f @ g @ G_f.T) * (B_f @ d @ B_f.T)) @ A_f.T
    plain = [[np.sum(d[i : i + 3, j : j + 3] * g) for j in range(block)] for i in range(block)]
    np.testing.assert_allclose(Y, plain, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("faster", ["im2col", "winograd"])
def test_inside_a_splits_parts_the_ways_are_timed_side_by_side_under_their_own_key(monkeypatch, cache, faster):
    monkeypatch.setattr(threads, "run_threads", lambda: (2, True))
    copies = []
    # _time_ways times the ways in turn, in tuning.CONV_WAYS's order: the fake side by side says which won.
    seconds = itertools.cycle([1.0, 2.0, 2.0, 2.0] if faster == "im2col" else [2.0, 1.0, 1.5, 1.5])  # as CONV_WAYS
    monkeypatch.setattr(conv_kernels, "side_by_side", lambda fn, n: copies.append(n) or next(seconds))
    calls = _spy(monkeypatch)
    x, Wt = _large_enough(np.random.default_rng(15))
    both = np.concatenate([x, x])
    outs = {}

    def part(images):
        outs[images.start] = conv_kernels.conv_forward(both[images], _col_W(Wt), np.zeros(16), 3, 3, 1, 1)

    with threads.owned_threads():
        threads.in_parts(part, len(both))  # each part has WINOGRAD_MIN_IMAGES images
    assert copies and set(copies) == {2}  # every timed call ran twice at once
    kept = json.loads(cache.read_text())["machines"][kept_choices.machine_signature()]
    (key, record), = ((key, record) for key, record in kept.items() if key.startswith("convolution "))
    assert key == "convolution C16 FN16 28x28 pad 1 float64, BLAS threads 1, chunks on 1, 2 parts at once"
    assert record["way"] == faster
    parts_calls = [shape for shape in calls if shape[0] == len(x)]  # not the measurement's own
    assert len(parts_calls) == (2 if faster == "winograd" else 0)  # both parts, the way kept
    np.testing.assert_allclose(np.concatenate([outs[0], outs[len(x)]]), _plain(both, Wt, 1), rtol=1e-12, atol=1e-12)


def test_a_bad_weight_shape_is_reported_by_conv_forward_as_by_im2col_dot(cache):
    x = np.zeros((2, 16, 28, 28))
    with pytest.raises(ShapeError, match=r"im2col_dot: col_W has shape \(100, 16\)"):
        conv_kernels.conv_forward(x, np.zeros((100, 16)), np.zeros(16), 3, 3, 1, 1)


def test_the_weight_gradient_takes_winograd_by_its_own_measurement(monkeypatch, cache):
    rng = np.random.default_rng(13)
    x, _ = _large_enough(rng)
    d = rng.standard_normal((len(x) * 28 * 28, 16))
    asked = []
    monkeypatch.setattr(conv_kernels, "_time_ways", lambda *a: asked.append(a[4]) or {"im2col": 2.0, "winograd": 1.0})
    dW = conv_kernels.conv_weight_grad(d, x, 3, 3, 1, 1)
    np.testing.assert_allclose(dW, conv_kernels.im2col_weight_grad(d, x, 3, 3, 1, 1), rtol=1e-11, atol=1e-11)
    assert asked == ["weight gradient"]
    assert list(tuning.kept_ways()) == [f"C16 FN16 28x28 pad 1 float64, BLAS threads {blas_limits.blas_threads()}, "
                          "chunks on 1, weight gradient"]
    with pytest.raises(ShapeError, match=r"im2col_weight_grad: d has shape \(5, 16\)"):
        conv_kernels.conv_weight_grad(d[:5], x, 3, 3, 1, 1)


def test_the_input_gradient_by_winograd_equals_col2im(monkeypatch, cache):
    # dx by correlation is a forward convolution of dout with the turned filters: 16 -> 16
    # channels, pad 1 - 1 = 0 at pad 1, 1 at pad 0... both through Winograd here.
    monkeypatch.setattr(conv_kernels, "_time_ways", lambda *a: {"im2col": 2.0, "winograd": 1.0})
    calls = _spy(monkeypatch)
    rng = np.random.default_rng(11)
    for pad in (0, 1, 2):
        x_shape = (4, 16, 28, 28)
        Wt = rng.standard_normal((16, 16, 3, 3))
        OH = 28 + 2 * pad - 2
        d = rng.standard_normal((4 * OH * OH, 16))
        dx = conv_kernels.conv_input_grad(d, Wt, x_shape, 1, pad)
        np.testing.assert_allclose(dx, book_col2im(d @ Wt.reshape(16, -1), x_shape, 3, 3, 1, pad),
                                   rtol=1e-11, atol=1e-11)
    assert len(calls) == 3


@pytest.mark.parametrize("way", ["winograd", "winograd 4x4"])
def test_a_convolution_layer_through_winograd_passes_its_gradient_check(monkeypatch, cache, way):
    monkeypatch.setattr(conv_kernels, "WINOGRAD_MIN_WORK", 1)  # this small layer too
    monkeypatch.setattr(conv_kernels, "WINOGRAD_MIN_IMAGES", 1)
    monkeypatch.setattr(conv_kernels, "_time_ways", lambda *a: {"im2col": 2.0, way: 1.0})
    calls = _spy(monkeypatch)
    rng = np.random.default_rng(12)
    layer = Convolution(rng.standard_normal((3, 4, 3, 3)), rng.standard_normal(3), stride=1, pad=1)
    errors = check_layer(layer, rng.standard_normal((2, 4, 5, 5)))
    assert calls and max(errors.values()) < 1e-7


# -- the forward's tiles kept for the weight gradient --------------------------------------------


def _counting_transforms(monkeypatch):
    """How many chunks each input transform was made for (F(2×2)/F(4×4) products, F(2×2) sums)."""
    made = []
    for name in ("_input_transform", "_input_transform_by_sums"):
        real = getattr(winograd, name)
        monkeypatch.setattr(winograd, name, lambda *a, _real=real, **k: made.append(1) or _real(*a, **k))
    return made


@pytest.mark.parametrize("way", [arguments for arguments in conv_kernels._WAY_ARGUMENTS.values() if arguments])
@pytest.mark.parametrize("budget", [1, 10**9], ids=["one image a chunk", "one chunk"])
def test_the_weight_gradient_from_kept_tiles_is_the_one_made_again(owned, monkeypatch, way, budget):
    # The same V either way: the same dW bit for bit, in float32 and float64, on 1 and 2 owned
    # threads, and no chunk transformed twice.
    monkeypatch.setattr(cache_sizes, "core_cache_bytes", lambda: budget)
    rng = np.random.default_rng(18)
    for dtype in (np.float64, np.float32):
        x = rng.standard_normal((5, 9, 9, 6)).astype(dtype).transpose(0, 3, 1, 2)  # channels-last, as activations
        Wt = rng.standard_normal((4, 6, 3, 3)).astype(dtype)
        d = rng.standard_normal((5 * 81, 4)).astype(dtype)
        made = _counting_transforms(monkeypatch)
        kept: dict = {}
        np.testing.assert_array_equal(winograd.winograd_conv(x, Wt, 1, *way, keep=kept),
                                      winograd.winograd_conv(x, Wt, 1, *way))
        chunks = len(made) // 2
        assert len(kept) == chunks and all(V.dtype == dtype for V in kept.values())
        made.clear()
        from_kept = winograd.winograd_weight_grad(d, x, 1, *way, kept=kept)
        assert made == []  # every chunk found
        np.testing.assert_array_equal(from_kept, winograd.winograd_weight_grad(d, x, 1, *way))
        assert len(made) == chunks
        plain = (d.T @ book_im2col(x, 3, 3, 1, 1)).reshape(4, 6, 3, 3)
        np.testing.assert_allclose(from_kept, plain, rtol=1e-4 if dtype == np.float32 else 1e-12,
                                   atol=1e-3 if dtype == np.float32 else 1e-12)


def test_tiles_kept_by_another_way_or_for_other_images_are_made_again(monkeypatch):
    rng = np.random.default_rng(19)
    x = rng.standard_normal((3, 5, 8, 8))
    Wt = rng.standard_normal((4, 5, 3, 3))
    d = rng.standard_normal((3 * 64, 4))
    plain = (d.T @ book_im2col(x, 3, 3, 1, 1)).reshape(4, 5, 3, 3)
    kept: dict = {}
    winograd.winograd_conv(x, Wt, 1, "products", 2, keep=kept)  # F(2×2)'s tiles
    made = _counting_transforms(monkeypatch)
    np.testing.assert_allclose(winograd.winograd_weight_grad(d, x, 1, "products", 4, kept=kept), plain,
                               rtol=1e-12, atol=1e-12)
    assert made  # F(4×4) made its own
    other: dict = {}
    winograd.winograd_conv(x[:, :, :6, :6], Wt, 1, "products", 2, keep=other)  # a smaller image's tiles
    made.clear()
    np.testing.assert_allclose(winograd.winograd_weight_grad(d, x, 1, "products", 2, kept=other), plain,
                               rtol=1e-12, atol=1e-12)
    assert made  # their shape is not x's: made again


def test_tiles_bytes_is_the_size_of_the_kept_tiles():
    rng = np.random.default_rng(20)
    for shape, pad, block in [((3, 5, 8, 8), 1, 2), ((2, 4, 14, 14), 2, 4), ((1, 3, 7, 9), 0, 4)]:
        x = rng.standard_normal(shape).astype(np.float32)
        kept: dict = {}
        winograd.winograd_conv(x, rng.standard_normal((2, shape[1], 3, 3)).astype(np.float32), pad, "products",
                               block, keep=kept)
        assert winograd.tiles_bytes(shape, pad, block, 4) == sum(V.nbytes for V in kept.values())


@pytest.mark.parametrize("fits", [True, False], ids=["tiles fit", "tiles too large"])
def test_a_training_convolution_keeps_its_tiles_for_dW_while_they_fit(monkeypatch, cache, fits):
    # The layer's forward keeps them (within cache_sizes.kept_bytes), its backward takes them and
    # lets them go; evaluation keeps none. The gradients are the same either way.
    monkeypatch.setattr(conv_kernels, "_time_ways", lambda *a: {"im2col": 2.0, "winograd 4x4": 1.0})
    monkeypatch.setattr(cache_sizes, "kept_bytes", lambda: 10**9 if fits else 1000)
    rng = np.random.default_rng(21)
    x, Wt = _large_enough(rng)
    layer = Convolution(Wt, rng.standard_normal(16), stride=1, pad=1)
    dout = rng.standard_normal((len(x), 16, 28, 28))
    made = _counting_transforms(monkeypatch)
    layer.forward(x)
    forward_chunks = len(made)
    assert bool(layer._tiles) == fits
    made.clear()
    dx = layer.backward(dout)
    assert len(made) == (1 if fits else 2) * forward_chunks  # dx's correlation transforms dout; dW x unless kept
    assert layer._tiles is None
    dW, db = layer.dW.copy(), layer.db.copy()
    monkeypatch.setattr(cache_sizes, "kept_bytes", lambda: 1000 if fits else 10**9)  # the other way round
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(dout), dx)
    np.testing.assert_array_equal(layer.dW, dW)
    np.testing.assert_array_equal(layer.db, db)
    layer.forward(x, train=False)
    assert layer._tiles is None


@pytest.mark.parametrize("gradient_way", ["im2col", "winograd"], ids=["dW by im2col", "dW by F(2x2)"])
def test_no_tiles_are_kept_when_the_weight_gradient_goes_another_way(monkeypatch, cache, gradient_way):
    # The forward by F(4×4), the weight gradient measured faster another way: its tiles would
    # never be used, so none are held through the step.
    def measured(image_shape, W_shape, pad, dtype, what):
        faster = "winograd 4x4" if what == "forward" else gradient_way
        return {way: 2.0 for way in tuning.CONV_WAYS} | {faster: 1.0}

    monkeypatch.setattr(conv_kernels, "_time_ways", measured)
    monkeypatch.setattr(cache_sizes, "kept_bytes", lambda: 10**9)
    rng = np.random.default_rng(22)
    x, Wt = _large_enough(rng)
    layer = Convolution(Wt, np.zeros(16), stride=1, pad=1)
    layer.forward(x)
    assert layer._tiles == {}
    dout = rng.standard_normal((len(x), 16, 28, 28))
    layer.backward(dout)
    d = dout.transpose(0, 2, 3, 1).reshape(-1, 16)
    np.testing.assert_allclose(layer.dW, (d.T @ book_im2col(x, 3, 3, 1, 1)).reshape(16, 16, 3, 3),
                               rtol=1e-10, atol=1e-10)


def test_a_kept_filter_transform_is_the_transform_of_the_very_same_weight_bits(monkeypatch):
    monkeypatch.setattr(winograd, "_kept_filters", {})
    rng = np.random.default_rng(23)
    W = rng.standard_normal((8, 5, 3, 3)).astype(np.float32)
    U = winograd.kept_filter_transform(W, 4)
    np.testing.assert_array_equal(U, winograd.filter_transform(W, 4))
    assert not U.flags.writeable  # shared by every later call: nobody may write it
    assert winograd.kept_filter_transform(W.copy(), 4) is U  # the same bits, another array
    assert winograd.kept_filter_transform(W, 2) is not U  # another block
    W[0, 0, 0, 0] += 1  # an optimizer's step, in place
    changed = winograd.kept_filter_transform(W, 4)
    np.testing.assert_array_equal(changed, winograd.filter_transform(W, 4))
    assert not np.array_equal(changed, U)
    # Bit for bit: -0.0 is not 0.0; NaN weights match their own bits.
    W[0, 0, 0, 0], negative = 0.0, W.copy()
    negative[0, 0, 0, 0] = -0.0
    assert winograd.kept_filter_transform(negative, 4) is not winograd.kept_filter_transform(W, 4)
    W[1, 1, 1, 1] = np.nan
    assert winograd.kept_filter_transform(W, 4) is winograd.kept_filter_transform(W.copy(), 4)
    # A strided view of the weights (as conv_forward passes them) is compared by its values.
    view = np.ascontiguousarray(W.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert winograd.kept_filter_transform(view, 4) is winograd.kept_filter_transform(W, 4)


def test_weights_written_while_their_transform_is_made_are_not_paired_with_it(monkeypatch):
    # Another thread (a training beside a server's predict) writes the weights in place while
    # kept_filter_transform makes U: the U kept must be the one of the weights kept with it.
    monkeypatch.setattr(winograd, "_kept_filters", {})
    rng = np.random.default_rng(26)
    W = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    make = winograd.filter_transform

    def made_while_written(weights, block=2):
        U = make(weights, block)
        W[...] += 1  # the other thread's step, in the middle of the call
        return U

    monkeypatch.setattr(winograd, "filter_transform", made_while_written)
    winograd.kept_filter_transform(W, 4)
    monkeypatch.setattr(winograd, "filter_transform", make)
    np.testing.assert_array_equal(winograd.kept_filter_transform(W, 4), make(W, 4))


def test_kept_filter_transforms_are_bounded(monkeypatch):
    monkeypatch.setattr(winograd, "_kept_filters", {})
    rng = np.random.default_rng(24)
    per_shape = [rng.standard_normal((2, 2, 3, 3)) for _ in range(winograd.KEPT_FILTERS_PER_SHAPE + 1)]
    kept = [winograd.kept_filter_transform(W) for W in per_shape]
    assert winograd.kept_filter_transform(per_shape[-1]) is kept[-1]
    assert winograd.kept_filter_transform(per_shape[0]) is not kept[0]  # the oldest of its shape went
    for n in range(winograd.KEPT_FILTER_SHAPES + 3):
        winograd.kept_filter_transform(rng.standard_normal((1, n + 1, 3, 3)))
    assert len(winograd._kept_filters) == winograd.KEPT_FILTER_SHAPES


def test_an_evaluation_forward_after_the_weights_changed_in_place_uses_the_new_weights(monkeypatch, cache):
    # Predict reuses the filters' transform of the same weights; a step of training in between
    # changes them in place, and the next predict must see it. Training makes them anew.
    monkeypatch.setattr(conv_kernels, "_time_ways", lambda *a: {"im2col": 2.0, "winograd 4x4": 1.0})
    monkeypatch.setattr(winograd, "_kept_filters", {})
    rng = np.random.default_rng(25)
    x, Wt = _large_enough(rng)
    b = rng.standard_normal(16)
    layer = Convolution(Wt.copy(), b, stride=1, pad=1)
    plain = _plain(x, layer.params["W"], 1) + b
    first = layer.forward(x, train=False)
    np.testing.assert_allclose(first.transpose(0, 2, 3, 1).reshape(-1, 16), plain, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(layer.forward(x, train=False), first)  # the kept transform: the same bits
    assert len(winograd._kept_filters) == 1
    layer.params["W"] -= 0.1 * rng.standard_normal(Wt.shape)  # in place, as an optimizer does
    again = layer.forward(x, train=False)
    np.testing.assert_allclose(again.transpose(0, 2, 3, 1).reshape(-1, 16), _plain(x, layer.params["W"], 1) + b,
                               rtol=1e-12, atol=1e-12)
    monkeypatch.setattr(winograd, "_kept_filters", {})
    layer.forward(x)  # a training forward keeps none
    assert winograd._kept_filters == {}

"""models.fusion: a Convolution, Relu, Pooling run trains as the three layers would, to float
rounding, with the same caches, and runs as layers wherever the fused kernel does not apply."""

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layerwise as lw
import layerwise.models.sequential as sequential
from layerwise.errors import ShapeError
from layerwise.gradcheck import check_model
from layerwise.kernels import threads
from layerwise.kernels.fused import ReluPool
from layerwise.layers import Affine, AvgPooling, Convolution, Pooling, Relu
from layerwise.models import Sequential, fusion
from layerwise.models.batch_parts import _gradient_in_parts
from layerwise.models.fusion import ConvReluPool, training_steps


@pytest.fixture
def two_threads(monkeypatch):
    """Two threads for layerwise, whatever the number of CPUs (only the speed differs)."""
    monkeypatch.setattr(threads, "run_threads", lambda: (2, True))


def two_convs(seed=0, dtype=np.float64, pool=2):
    """conv (2 -> 3) relu, then conv (3 -> 4) relu pool: the second run needs its input gradient."""
    rng = np.random.default_rng(seed)
    side = 6 // pool
    return Sequential([
        Convolution(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), pad=1), Relu(),
        Convolution(rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4), pad=1), Relu(),
        Pooling(pool, pool, stride=pool), Affine(rng.standard_normal((4 * side * side, 5)), rng.standard_normal(5)),
    ]).astype(dtype)


def as_layers(model, x, t, monkeypatch):
    """The gradient and the caches with every layer run on its own."""
    with monkeypatch.context() as patch:
        patch.setattr(sequential, "training_steps", list)
        grads = {k: v.copy() for k, v in model.gradient(x, t).items()}
    return grads, caches(model)


def caches(model):
    return [(la.x if isinstance(la, Convolution) else None, getattr(la, "mask", None), getattr(la, "arg_max", None))
            for la in model]


def assert_same_caches(a, b):
    for one, other in zip(a, b, strict=True):
        for x, y in zip(one, other, strict=True):
            if x is None:
                assert y is None
            else:
                np.testing.assert_array_equal(x, y)
                assert x.strides == y.strides  # the same memory layout


def test_runs_are_grouped():
    model = two_convs()
    steps = training_steps(model.layers)
    assert [type(s).__name__ for s in steps] == ["Convolution", "Relu", "ConvReluPool", "Affine"]
    assert steps[2].conv is model[2] and steps[2].relu is model[3] and steps[2].pool is model[4]
    book = lw.SimpleConvNet(seed=0)
    assert [type(s).__name__ for s in training_steps(list(book))] == ["ConvReluPool", "Affine", "Relu", "Affine"]


@pytest.mark.parametrize(
    "replace",
    [
        lambda layers: layers.__setitem__(4, AvgPooling(2, 2, stride=2)),  # not max pooling
        lambda layers: layers.__setitem__(4, Pooling(2, 2, stride=1)),  # overlapping windows
        lambda layers: layers.__setitem__(4, Pooling(2, 2, stride=2, pad=1)),
        lambda layers: layers.__setitem__(3, type("MyRelu", (Relu,), {})()),  # a subclass may compute otherwise
        lambda layers: setattr(layers[2], "forward", layers[2].forward),  # a hook on one layer
    ],
)
def test_other_runs_stay_layers(replace):
    layers = list(two_convs().layers)
    replace(layers)
    assert not any(isinstance(s, ConvReluPool) for s in training_steps(layers))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 5), seed=st.integers(0, 2**16), pool=st.sampled_from([1, 2, 3]), keep_cols=st.booleans())
def test_a_step_equals_the_layers_and_leaves_their_caches(monkeypatch, n, seed, pool, keep_cols):
    monkeypatch.setattr(fusion, "kept_bytes", lambda: 2**30 if keep_cols else 0)
    model = two_convs(seed, pool=pool)
    rng = np.random.default_rng(seed + 1)
    x, t = rng.standard_normal((n, 2, 6, 6)), rng.integers(0, 5, n)
    expected, expected_caches = as_layers(model, x, t, monkeypatch)
    model.loss(x, t, train_flg=True)
    assert (fused_step(model)._made[3].cols is not None) is keep_cols
    got = model.gradient(x, t)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-10, atol=1e-12, err_msg=key)
    assert_same_caches(caches(model), expected_caches)
    assert fused_step(model)._made is None  # the kept cols are let go after the backward


def test_simple_convnet_float32_equals_the_layers(monkeypatch):
    model = lw.SimpleConvNet((1, 12, 12), {"filter_num": 6, "filter_size": 5}, 10, 10, seed=0, dtype=np.float32)
    rng = np.random.default_rng(0)
    x, t = rng.random((7, 1, 12, 12), dtype=np.float32), rng.integers(0, 10, 7)
    expected, expected_caches = as_layers(model, x, t, monkeypatch)
    got = model.gradient(x, t)
    for key in expected:
        assert got[key].dtype == np.float32
        np.testing.assert_allclose(got[key], expected[key], rtol=2e-5, atol=1e-6, err_msg=key)
    assert_same_caches(caches(model), expected_caches)
    assert model[1].mask.shape == (7, 6, 8, 8) and model[2].x_shape == (7, 6, 8, 8)


@pytest.mark.parametrize("pool", [2, 3])
def test_the_fused_gradient_passes_the_gradient_check(pool):
    # (seed 3 puts a ReLU or a window's max within h of a kink: 6e-7 there, fused or as layers)
    model = two_convs(4, pool=pool)
    rng = np.random.default_rng(4)
    x, t = rng.standard_normal((3, 2, 6, 6)), rng.integers(0, 5, 3)
    errors = check_model(model, x, t)
    assert max(errors.values()) < 1e-7, errors


def fused_step(model):
    """The run's step of the model's last training forward."""
    (step,) = [s for s in model._steps_run if isinstance(s, ConvReluPool)]
    return step


@pytest.mark.parametrize("convolution", ["im2col", "winograd"])
def test_the_layers_own_backward_works_after_a_fused_forward(monkeypatch, convolution):
    """A reader (the book's own gradient loop, the graph views) may call a layer's backward
    after a training forward, whether the run fused all three layers or, its convolution by
    Winograd, the ReLU and the pooling."""
    if convolution == "winograd":
        compute_by_winograd(monkeypatch)
    model = two_convs(5)
    rng = np.random.default_rng(5)
    x, t = rng.standard_normal((2, 2, 6, 6)), rng.integers(0, 5, 2)
    model.loss(x, t, train_flg=True)
    dout = rng.standard_normal((2, 4, 3, 3))
    fused_dx = fused_step(model).backward(dout)
    fused_dW = model[2].grads["W"].copy()
    layers_dx = model[2].backward(model[3].backward(model[4].backward(dout)))
    tolerance = {"rtol": 1e-10, "atol": 1e-12} if convolution == "im2col" else {"rtol": 1e-12, "atol": 1e-14}
    np.testing.assert_allclose(fused_dx, layers_dx, **tolerance)
    np.testing.assert_allclose(fused_dW, model[2].grads["W"], **tolerance)


def test_a_layer_run_again_after_the_fused_forward_sends_backward_to_the_layers(monkeypatch):
    model = two_convs(8)
    rng = np.random.default_rng(8)
    x, t = rng.standard_normal((2, 2, 6, 6)), rng.integers(0, 5, 2)
    model.loss(x, t, train_flg=True)
    step = fused_step(model)
    h = model[1].forward(model[0].forward(rng.standard_normal((2, 2, 6, 6))))
    model[4].forward(model[3].forward(model[2].forward(h)))  # the layers' caches are new now
    called = []
    monkeypatch.setattr(fusion, "conv_relu_pool_backward", lambda *args: called.append(args))
    dout = rng.standard_normal((2, 4, 3, 3))
    dx = step.backward(dout)
    assert not called
    np.testing.assert_array_equal(dx, model[2].backward(model[3].backward(model[4].backward(dout))))
    assert step.backward(dout) is not None  # once more: as layers again


def assert_same_gradient_on_two_owned_threads(model, x, t):
    one = {k: v.copy() for k, v in model.gradient(x, t).items()}
    with threads.owned_threads() as count:
        assert count == 2
        two = model.gradient(x, t)
    for key in one:
        np.testing.assert_allclose(two[key], one[key], rtol=1e-12, atol=1e-14)


def test_on_two_threads_the_gradient_is_the_same(two_threads):
    model = lw.SimpleConvNet((1, 12, 12), {"filter_num": 6, "filter_size": 5}, 10, 10, seed=0, dtype=np.float64)
    rng = np.random.default_rng(0)
    assert_same_gradient_on_two_owned_threads(model, rng.random((9, 1, 12, 12)), rng.integers(0, 10, 9))


def compute_by_winograd(monkeypatch):
    """Every convolution computes by Winograd, as DeepConvNet's do on the Zen 4 VM."""
    from layerwise.kernels import conv as conv_kernels  # only these tests patch it

    monkeypatch.setattr(fusion, "use_winograd", lambda *args: ("products", 2))
    monkeypatch.setattr(conv_kernels, "use_winograd", lambda *args: ("products", 2))


@pytest.fixture
def by_winograd(monkeypatch):
    compute_by_winograd(monkeypatch)


@pytest.mark.parametrize("pool", [1, 2, 3])
def test_by_winograd_the_convolution_runs_as_its_layer_and_the_relu_and_pooling_together(monkeypatch, by_winograd,
                                                                                          pool):
    model = two_convs(6, pool=pool)
    rng = np.random.default_rng(6)
    x, t = rng.standard_normal((3, 2, 6, 6)), rng.integers(0, 5, 3)
    expected, expected_caches = as_layers(model, x, t, monkeypatch)
    called, together = [], []
    monkeypatch.setattr(fusion, "conv_relu_pool", lambda *args: called.append(args))
    real_backward = fusion.relu_pool_backward
    monkeypatch.setattr(fusion, "relu_pool_backward", lambda *args: together.append(1) or real_backward(*args))
    got = model.gradient(x, t)
    assert not called and together == [1]  # the backward took the run's own path, not the layers'
    assert fused_step(model)._made is None  # let go after the backward
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-12, atol=1e-14, err_msg=key)
    assert_same_caches(caches(model), expected_caches)
    model.loss(x, t, train_flg=True)
    assert isinstance(fused_step(model)._made[3], ReluPool)


def test_by_winograd_on_two_owned_threads_the_gradient_is_the_same(by_winograd, two_threads):
    rng = np.random.default_rng(9)
    assert_same_gradient_on_two_owned_threads(two_convs(9), rng.standard_normal((6, 2, 6, 6)), rng.integers(0, 5, 6))


def test_tiles_of_a_winograd_forward_do_not_outlive_an_im2col_one(monkeypatch):
    # Regression: the fused (im2col) forward set the Convolution's x but left the tiles of an
    # earlier Winograd forward that had no backward; a backward through the layer then took
    # them for the new x.
    from layerwise.kernels import conv as conv_kernels

    model = two_convs(10)
    rng = np.random.default_rng(10)
    x, t = rng.standard_normal((4, 2, 6, 6)), rng.integers(0, 5, 4)
    with monkeypatch.context() as patch:
        patch.setattr(fusion, "use_winograd", lambda *args: ("products", 2))
        patch.setattr(conv_kernels, "use_winograd", lambda *args: ("products", 2))
        model.loss(x, t, train_flg=True)  # a forward, no backward
        assert model[2]._tiles
    other = rng.standard_normal((4, 2, 6, 6))
    model.loss(other, t, train_flg=True)  # by im2col: all three layers fused
    assert isinstance(fused_step(model)._made[3], fusion.Forward)  # the im2col run ...
    assert model[2]._tiles is None  # ... which lets the earlier tiles go


def test_by_winograd_the_gradient_passes_the_gradient_check(by_winograd):
    model = two_convs(4)
    rng = np.random.default_rng(4)
    x, t = rng.standard_normal((3, 2, 6, 6)), rng.integers(0, 5, 3)
    errors = check_model(model, x, t)
    assert max(errors.values()) < 1e-7, errors


def test_evaluation_mode_runs_the_layers(monkeypatch):
    model = two_convs(7)
    called = []
    monkeypatch.setattr(fusion, "conv_relu_pool", lambda *args: called.append(args))
    model.predict(np.ones((2, 2, 6, 6)))
    assert not called and model[4].arg_max is None  # evaluation keeps x, not arg_max


def test_a_bad_input_is_reported_by_the_convolution():
    model = two_convs()
    with pytest.raises(ShapeError, match="Convolution: input has 3 channels"):
        model.gradient(np.ones((2, 3, 6, 6)), np.zeros(2, int))


def test_a_bad_dout_is_reported_by_the_pooling():
    model = two_convs()
    step = ConvReluPool(*model[2:5])
    model.loss(np.ones((2, 2, 6, 6)), np.zeros(2, int))
    with pytest.raises(ShapeError, match="Pooling"):
        step.backward(np.ones((2, 4, 2, 2)))


def test_a_replica_for_the_split_plan_fuses_its_own_layers(two_threads):
    model = lw.SimpleConvNet((1, 12, 12), {"filter_num": 6, "filter_size": 5}, 10, 10, seed=0, dtype=np.float64)
    rng = np.random.default_rng(1)
    x, t = rng.random((8, 1, 12, 12)), rng.integers(0, 10, 8)
    expected = {k: v.copy() for k, v in copy.deepcopy(model).gradient(x, t).items()}
    with threads.owned_threads():
        got = _gradient_in_parts(model, x, t)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-10, atol=1e-12)


class KeptOutput(Affine):
    """An Affine whose forward returns an array it keeps: a Relu after it must not write there."""

    def forward(self, x, train=True):
        self.kept = super().forward(x, train)
        return self.kept


def _layer_by_layer(layers, x):
    for layer in layers:
        x = layer.forward(x, train=False)
    return x


@pytest.mark.parametrize(("make", "shape"), [
    (lambda: lw.MultiLayerNet(784, [512, 64], 10, seed=1), (30, 784)),
    (lambda: lw.SimpleConvNet(seed=1), (30, 1, 28, 28)),
    (lambda: two_convs(seed=1, dtype=np.float32), (300, 2, 6, 6)),
], ids=["mlp", "simple-convnet", "two-convs"])
def test_inference_forward_equals_the_layers_and_leaves_masks_and_inputs_as_they_do(monkeypatch, make, shape):
    monkeypatch.setattr(fusion, "core_cache_bytes", lambda: 4096)  # these small outputs in place too
    model, twin = make(), make()
    x = np.random.default_rng(2).standard_normal(shape).astype(model.dtype)
    given = x.copy()
    out = fusion.inference_forward(list(model), x)
    expected = _layer_by_layer(list(twin), x)
    np.testing.assert_array_equal(out, expected)  # the same numbers, bit for bit
    np.testing.assert_array_equal(x, given)  # the caller's input untouched
    relus = [(a, b) for a, b in zip(model, twin, strict=True) if isinstance(a, Relu)]
    assert any(a.x.nbytes > 4096 and a.x.min() >= 0 for a, _ in relus)  # some ran in place
    for a, b in relus:
        np.testing.assert_array_equal(a.x <= 0, b.x <= 0)  # the mask a backward derives is the same
    # ... and a backward after either forward gives the same gradients
    dout = np.ones_like(out)
    for a, b in zip(reversed(list(model)), reversed(list(twin)), strict=True):
        dout_a, dout_b = a.backward(dout), b.backward(dout)
        for key in a.grads:
            np.testing.assert_array_equal(a.grads[key], b.grads[key])
        if dout_a is None:
            break
        np.testing.assert_array_equal(dout_a, dout_b)
        dout = dout_a


def test_inference_forward_writes_only_over_new_outputs(monkeypatch):
    monkeypatch.setattr(fusion, "core_cache_bytes", lambda: 4096)
    rng = np.random.default_rng(3)
    W, b = rng.standard_normal((20, 300)).astype(np.float32), rng.standard_normal(300).astype(np.float32)
    x = rng.standard_normal((40, 20)).astype(np.float32)
    kept = KeptOutput(W, b)
    held = x.copy()
    for layers in ([Relu()], [lw.Identity(), Relu()], [kept, Relu()]):
        out = fusion.inference_forward(layers, held)
        np.testing.assert_array_equal(held, x)  # a Relu first, or after a layer that may hand x on
        if layers[0] is kept:
            assert kept.kept is not out and kept.kept.min() < 0  # a subclass's output stays its own
    plain = [Affine(W, b), Relu()]
    out = fusion.inference_forward(plain, x)
    assert out.base is None and plain[1].x is out  # over the Affine's new output, kept as the mask's source
    np.testing.assert_array_equal(out, np.maximum(x @ W + b, 0))


def test_an_output_that_fits_the_cores_cache_takes_the_relus_own_forward():
    rng = np.random.default_rng(4)
    rows = fusion.core_cache_bytes() // (5 * 8)  # 5 float64 values a row: the output fits the cache ...
    layers = [Affine(rng.standard_normal((8, 5)), rng.standard_normal(5)), Relu()]
    out = fusion.inference_forward(layers, rng.standard_normal((rows, 8)))
    assert layers[1].x is not out and layers[1].x.min() < 0  # ... so the Relu kept its input, as its forward does
    out = fusion.inference_forward(layers, rng.standard_normal((rows + 1, 8)))  # one row more: it does not
    assert layers[1].x is out

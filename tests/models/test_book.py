"""The book's nets: gradients, names, float64 defaults, the book's defects not repeated."""

import numpy as np
import pytest

import layerwise as lw
from layerwise import Affine
from layerwise.gradcheck import check_model
from layerwise.models import MultiLayerNet, Sequential, TwoLayerNet, build_model


def data(n=7, d=5, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, c, n)


BOOK_NETS = [
    lambda **kw: lw.TwoLayerNet(6, 5, 3, **kw),
    lambda **kw: lw.MultiLayerNet(6, [5, 4], 3, **kw),
    lambda **kw: lw.MultiLayerNetExtend(6, [5], 3, use_batchnorm=True, use_dropout=True, **kw),
    lambda **kw: lw.SimpleConvNet((1, 6, 6), {"filter_num": 2, "filter_size": 3}, 4, 3, **kw),
    lambda **kw: lw.DeepConvNet((1, 8, 8), hidden_size=4, output_size=3, **kw),
]


def test_two_layer_net_book_api_and_gradients():
    x, t = data()
    net = TwoLayerNet(5, 4, 3, weight_init_std=1.0, seed=1, dtype=np.float64)
    assert list(net.params) == ["W1", "b1", "W2", "b2"]
    assert net.params["W1"].shape == (5, 4) and net.params["b2"].shape == (3,)
    grads = net.gradient(x, t)
    numerical = net.numerical_gradient(x, t)
    for key in grads:
        np.testing.assert_allclose(grads[key], numerical[key], rtol=1e-6, atol=1e-9)
    assert max(check_model(net, x, t).values()) < 1e-7
    assert 0 <= net.accuracy(x, t) <= 1
    assert net.predict(x).shape == (7, 3)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("decay", [0.0, 0.1])
def test_multilayer_net_gradients(activation, decay):
    x, t = data()
    net = MultiLayerNet(5, [6, 4], 3, activation=activation, weight_init_std=activation,
                        weight_decay_lambda=decay, seed=2, dtype=np.float64)
    assert list(net.params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert max(check_model(net, x, t).values()) < 1e-7


@pytest.mark.parametrize("build", BOOK_NETS)
def test_book_nets_are_float64_unless_told(build):
    net = build(seed=0)
    assert net.dtype == np.float64
    assert all(p.dtype == np.float64 for p in net.state_dict().values())
    net32 = build(seed=0, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in net32.state_dict().values())
    # The same seed draws the same weights whatever the dtype (drawn in float64, then cast).
    np.testing.assert_array_equal(net32.params["W1"], net.params["W1"].astype(np.float32))


@pytest.mark.parametrize("build", BOOK_NETS)
def test_np_random_seed_makes_book_nets_repeatable(build):
    np.random.seed(7)  # noqa: NPY002 (the book's way, on purpose)
    first = build()
    np.random.seed(7)  # noqa: NPY002 (the book's way, on purpose)
    second = build()
    third = build()  # the global state moved on: other weights
    for name in first.params:
        np.testing.assert_array_equal(first.params[name], second.params[name])
    assert not np.array_equal(first.params["W1"], third.params["W1"])


def test_np_random_seed_makes_dropout_repeatable():
    from layerwise import Dropout

    x = np.ones((4, 10))
    np.random.seed(3)  # noqa: NPY002 (the book's way, on purpose)
    a = Dropout(0.5).forward(x)
    np.random.seed(3)  # noqa: NPY002 (the book's way, on purpose)
    b = Dropout(0.5).forward(x)
    np.testing.assert_array_equal(a, b)


def test_book_layer_names_and_last_layer():
    two = lw.TwoLayerNet(6, 5, 3, seed=0)
    assert isinstance(two.layers, dict) and list(two.layers) == ["Affine1", "Relu1", "Affine2"]
    assert list(two.layers.values()) == list(two)  # the same objects the net computes with
    assert two.layers["Affine1"].W is two.params["W1"]
    assert two.lastLayer is two.last_layer is two.loss_layer
    ext = lw.MultiLayerNetExtend(6, [5, 4], 3, use_batchnorm=True, use_dropout=True, seed=0)
    assert list(ext.layers) == [
        "Affine1", "BatchNorm1", "Activation_function1", "Dropout1",
        "Affine2", "BatchNorm2", "Activation_function2", "Dropout2", "Affine3",
    ]
    assert list(ext.params) == ["W1", "b1", "gamma1", "beta1", "W2", "b2", "gamma2", "beta2", "W3", "b3"]
    conv = lw.SimpleConvNet((1, 6, 6), {"filter_num": 2, "filter_size": 3}, 4, 3, seed=0)
    assert list(conv.layers) == ["Conv1", "Relu1", "Pool1", "Affine1", "Relu2", "Affine2"]
    deep = lw.DeepConvNet((1, 8, 8), hidden_size=4, output_size=3, seed=0)
    assert isinstance(deep.layers, list)  # a list in the book too
    plain = Sequential([Affine(np.ones((2, 2)), np.zeros(2))])
    assert plain.layers == list(plain) and len(plain) == 1 and plain[0] is plain.layers[0]


def test_book_gradient_check_numbers_on_float64_default():
    # The book's ch05 check: mean |backprop - numerical| per parameter, ~1e-10 in float64.
    rng = np.random.default_rng(0)
    x = rng.random((3, 784))
    t = np.eye(10)[rng.integers(0, 10, 3)]
    net = lw.TwoLayerNet(784, 5, 10, seed=0)
    grad_numerical = net.numerical_gradient(x, t)
    grad_backprop = net.gradient(x, t)
    for key in grad_numerical:
        assert np.mean(np.abs(grad_backprop[key] - grad_numerical[key])) < 1e-9, key


def test_multi_layer_net_extend_has_the_books_chapter6_defaults():
    x, t = data(n=6, d=6)
    ext = lw.MultiLayerNetExtend(6, [5], 3, use_dropout=True, dropout_ration=0.3, seed=0)
    assert [la.mode for la in ext if isinstance(la, lw.Dropout)] == ["book"]
    plain = lw.MultiLayerNet(6, [5], 3, use_dropout=True, seed=0)
    assert [la.mode for la in plain if isinstance(la, lw.Dropout)] == ["inverted"]
    # loss(x, t) evaluates in test mode, as the book's: no mask drawn, the same value twice.
    assert ext.loss(x, t) == ext.loss(x, t) == ext.loss(x, t, train_flg=False)
    assert max(check_model(ext, x, t).values()) < 1e-7  # numerical gradient in training mode
    rebuilt = build_model(ext.config(), dtype=np.float64)
    assert type(rebuilt) is lw.MultiLayerNetExtend and rebuilt[2].mode == "book"


@pytest.mark.parametrize("key, value", [("stride", False), ("stride", 0), ("stride", 1.5), ("pad", -1),
                                        ("filter_size", 0)])
def test_a_bad_conv_param_is_named_before_any_arithmetic(key, value):
    """Regression (found by the model-file fuzz test): a SimpleConvNet whose conv_param said
    "stride": false divided by zero while sizing its Affine layer."""
    conv_param = {"filter_num": 2, "filter_size": 3, "pad": 0, "stride": 1, key: value}
    named = {"stride": "stride", "pad": "pad", "filter_size": "kernel height"}[key]
    with pytest.raises(lw.InputError, match=rf"SimpleConvNet conv_param: {named} must be an integer"):
        lw.SimpleConvNet((1, 6, 6), conv_param, 4, 3)
    with pytest.raises(lw.InputError, match=r"DeepConvNet conv_param_2: "):
        lw.DeepConvNet(conv_param_2={"filter_num": 16, "filter_size": 3, "pad": 1, "stride": 1, key: value})

"""Rebuilding networks from their config."""

import numpy as np
import pytest

from layerwise import Affine, Sigmoid
from layerwise.errors import InputError
from layerwise.models import MultiLayerNet, Sequential, TwoLayerNet, build_model
from layerwise.models.config import _LimitedDraws


def data(n=7, d=5, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, c, n)


def test_config_round_trip_and_state_dict():
    net = MultiLayerNet(5, [6], 3, seed=0)
    clone = build_model(net.config(), dtype=net.dtype)
    clone.load_state_dict(net.state_dict())
    x, _ = data()
    np.testing.assert_array_equal(clone.predict(x), net.predict(x))
    seq = Sequential([Affine(np.ones((5, 2)), np.zeros(2)), Sigmoid(), Affine(np.ones((2, 3)), np.zeros(3))])
    clone = build_model(seq.config(), dtype=np.float64)
    clone.load_state_dict(seq.state_dict())
    np.testing.assert_allclose(clone.predict(x), seq.predict(x), rtol=1e-6)


def test_deep_convnet_book_layout_and_final_dropout_option():
    from layerwise.models import DeepConvNet

    book = DeepConvNet(seed=0)
    names = [type(la).__name__ for la in book.layers]
    assert names[-2:] == ["Affine", "Dropout"] and names.count("Convolution") == 6
    assert [f"W{i}" for i in range(1, 9)] == [k for k in book.params if k.startswith("W")]
    lean = DeepConvNet(seed=0, final_dropout=False, dropout_mode="inverted")
    assert type(lean.layers[-1]).__name__ == "Affine"
    rebuilt = build_model(lean.config())
    assert [type(la).__name__ for la in rebuilt.layers] == [type(la).__name__ for la in lean.layers]


def test_build_model_refuses_more_parameters_than_allowed_before_drawing_them():
    config = TwoLayerNet(4, 5, 3, seed=0).config()  # draws W1 (20) and W2 (15); biases are zeros
    assert set(build_model(config, max_parameters=35).params) == {"W1", "b1", "W2", "b2"}
    with pytest.raises(InputError, match="more than 34 parameters"):
        build_model(config, max_parameters=34)
    seq = Sequential([Affine(np.ones((5, 2)), np.zeros(2)), Sigmoid()]).config()
    with pytest.raises(InputError, match="more than 11 parameters"):
        build_model(seq, max_parameters=11)  # 12 of them
    draws = _LimitedDraws(10)  # any sized draw counts, whatever spells its size
    draws.standard_normal([2, 2])
    draws.integers(5, size=np.int64(2))
    draws.normal(size=(2,))
    draws.random()  # one value: no size
    with pytest.raises(InputError, match="more than 10"):
        draws.uniform(size=np.array([3]))

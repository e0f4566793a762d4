"""One image through the model and back to its pixels (layerwise.serve.explain): the input
gradient from the layers' own backward equals central differences for every kind of MLP
`layerwise train` makes, activations are the layers' outputs, requests may come from threads,
and the served model is never touched."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import layerwise as lw
from layerwise.functional import softmax
from layerwise.gradcheck import numerical_gradient, relative_error
from layerwise.serve import ServedModel
from layerwise.serve.explain import Explainer

LABELS = tuple(str(d) for d in range(10))


def served_mlp(**options):
    net = lw.MultiLayerNet(16, [12, 9], 10, weight_init_std=0.5, seed=3, **options)
    return ServedModel(net, "test", None, (16,), LABELS)


def image(seed=0):
    return np.random.default_rng(seed).random((4, 4))


@pytest.mark.parametrize("options", [
    {}, {"activation": "sigmoid"}, {"activation": "tanh"}, {"use_batchnorm": True},
    {"use_dropout": True, "dropout_ration": 0.5}, {"use_batchnorm": True, "use_dropout": True},
])
def test_input_gradient_equals_central_differences(options):
    served = served_mlp(**options)
    explainer = Explainer(served)
    for seed, k in ((0, None), (1, 4), (2, 9)):
        img = image(seed)
        result = explainer.explain(img, k)
        if k is not None:
            assert result.chosen == k
        scores = served.model.predict(img.reshape(1, -1))
        assert result.chosen == (int(np.argmax(scores)) if k is None else k)

        def score(v, k=result.chosen):
            return float(served.model.predict(v.reshape(1, -1))[0, k])

        numeric = numerical_gradient(score, img.copy())
        assert result.input_gradient.shape == (4, 4) and result.input_gradient.dtype == np.float64
        assert relative_error(result.input_gradient, numeric) < 1e-6
        np.testing.assert_allclose(result.probabilities, softmax(scores)[0], rtol=1e-12)


def test_activations_are_each_layers_output():
    served = served_mlp(use_batchnorm=True)
    explainer = Explainer(served)
    img = image()
    result = explainer.explain(img)
    layers = list(served.model)
    assert [a.layer for a in result.activations] == explainer.labels
    assert [a.kind for a in result.activations] == [type(la).__name__ for la in layers]
    h = img.reshape(1, -1)
    for a, layer in zip(result.activations, copy.deepcopy(layers), strict=True):
        h = layer.forward(h, train=False)
        np.testing.assert_allclose(a.values, h[0], rtol=1e-12, atol=1e-12)
        assert (a.mask is None) == (a.kind != "Relu")
        if a.mask is not None:
            np.testing.assert_array_equal(a.mask, a.values <= 0)
    # The values are the request's own: a later request does not change them.
    kept = [a.values.copy() for a in result.activations]
    explainer.explain(image(5))
    for a, k in zip(result.activations, kept, strict=True):
        np.testing.assert_array_equal(a.values, k)


def test_the_served_model_is_not_touched():
    served = served_mlp(use_dropout=True, dropout_ration=0.5)
    before = copy.deepcopy(served.model.state_dict())
    first = next(iter(served.model))
    flag = getattr(first, "needs_input_grad", None)
    Explainer(served).explain(image())
    after = served.model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert getattr(first, "needs_input_grad", None) == flag


def test_requests_from_threads_take_turns():
    served = served_mlp()
    explainer = Explainer(served)
    images = [image(seed) for seed in range(16)]
    alone = [explainer.explain(img, seed % 10) for seed, img in enumerate(images)]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda args: explainer.explain(args[1], args[0] % 10), enumerate(images)))
    for a, b in zip(alone, together, strict=True):
        assert a.chosen == b.chosen
        np.testing.assert_allclose(b.input_gradient, a.input_gradient, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b.probabilities, a.probabilities, rtol=1e-12)


def test_a_float32_model_keeps_float32_and_is_close_to_float64():
    served = served_mlp()
    served32 = ServedModel(copy.deepcopy(served.model).astype(np.float32), "f32", None, (16,), LABELS)
    assert Explainer(served32).dtype == np.float32
    img = image(7)
    g64 = Explainer(served).explain(img, 2).input_gradient
    g32 = Explainer(served32).explain(img, 2).input_gradient
    np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4 * float(np.abs(g64).max()))


def test_a_convnets_input_gradient_equals_central_differences():
    # The convolution keeps its input, not col, and makes col again for dW: the saliency backward
    # after an evaluation-mode forward goes through that path.
    net = lw.SimpleConvNet((1, 8, 8), {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1}, 6, 10, seed=2)
    served = ServedModel(net, "test", None, (1, 8, 8), LABELS)
    img = np.random.default_rng(5).random((8, 8))
    result = Explainer(served).explain(img, 3)

    def score(v):
        return float(served.model.predict(v.reshape(1, 1, 8, 8))[0, 3])

    assert relative_error(result.input_gradient, numerical_gradient(score, img.copy())) < 1e-6

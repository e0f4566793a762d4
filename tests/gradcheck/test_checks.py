"""numerical_gradient and check_layer themselves: they must be able to fail."""

import numpy as np
import pytest

import layerwise as lw
from layerwise.gradcheck import check_layer, numerical_gradient, relative_error, standard_cases


def test_numerical_gradient_of_square_any_shape_restores_x():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    before = x.copy()
    g = numerical_gradient(lambda v: float(np.sum(v**2)), x)
    np.testing.assert_allclose(g, 2 * before, rtol=1e-9)
    assert np.array_equal(x, before)  # restored to the exact bits


def test_numerical_gradient_restores_x_when_f_raises():
    x = np.ones(3)

    def boom(v):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        numerical_gradient(boom, x)
    np.testing.assert_array_equal(x, np.ones(3))


def test_numerical_gradient_at_given_indices_only():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4))
    before = x.copy()
    calls = []

    def f(v):
        calls.append(1)
        return float(np.sum(np.sin(v)))

    full = numerical_gradient(f, x.copy())
    calls.clear()
    picked = np.array([0, 5, 11])
    spot = numerical_gradient(f, x, indices=picked)
    assert len(calls) == 2 * len(picked)  # only the picked elements are perturbed
    assert spot.shape == x.shape and spot.dtype == x.dtype
    np.testing.assert_array_equal(spot.reshape(-1)[picked], full.reshape(-1)[picked])
    others = np.setdiff1d(np.arange(x.size), picked)
    assert not spot.reshape(-1)[others].any()  # the others stay 0
    np.testing.assert_allclose(spot.reshape(-1)[picked], np.cos(before).reshape(-1)[picked], rtol=1e-7)
    assert np.array_equal(x, before)
    # A list and a 2-D array of flat positions work too; no positions is all zeros.
    np.testing.assert_array_equal(numerical_gradient(f, x, indices=[5, 0, 11]), spot)
    np.testing.assert_array_equal(numerical_gradient(f, x, indices=picked.reshape(3, 1)), spot)
    assert not numerical_gradient(f, x, indices=np.array([], dtype=int)).any()


def test_numerical_gradient_refuses_what_it_cannot_perturb_in_place():
    with pytest.raises(TypeError, match="floating ndarray"):
        numerical_gradient(lambda v: 0.0, np.arange(3))
    with pytest.raises(ValueError, match="contiguous"):
        numerical_gradient(lambda v: 0.0, np.ones((3, 4)).T)


def test_check_layer_catches_a_wrong_backward():
    class BrokenReLU(lw.ReLU):
        def backward(self, dout):
            return super().backward(dout) * 1.001

    x = np.random.default_rng(0).uniform(0.5, 1.0, (3, 3))
    assert check_layer(lw.ReLU(), x)["x"] < 1e-7
    assert check_layer(BrokenReLU(), x)["x"] > 1e-4


def test_check_layer_catches_a_wrong_parameter_gradient():
    class BrokenAffine(lw.Affine):
        def backward(self, dout):
            dx = super().backward(dout)
            self.grads["b"] = self.grads["b"] * 0
            return dx

    rng = np.random.default_rng(0)
    errors = check_layer(BrokenAffine(rng.standard_normal((3, 2)), rng.standard_normal(2)),
                         rng.standard_normal((4, 3)))
    assert errors["W"] < 1e-7 and errors["b"] == pytest.approx(1.0)


def test_relative_error():
    assert relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert relative_error(np.array([1.0, 0.0]), np.array([1.1, 0.0])) == pytest.approx(0.1 / 1.1)


@pytest.mark.parametrize("case", list(standard_cases()), ids=lambda c: c.label)
def test_every_standard_case_passes(case):
    for seed in range(3):
        errors = case.run(seed=seed)
        assert errors and max(errors.values()) < 1e-7, (case.label, errors)

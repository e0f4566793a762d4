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

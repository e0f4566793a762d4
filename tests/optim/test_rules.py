"""The update rules: against torch.optim and hand-derived formulas, the book's names."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from optim_cases import CASES, SHAPES, make_problem, run, torch_trajectory

from layerwise.optim import (
    OPTIMIZERS,
    SGD,
    AdaGrad,
    Adam,
    Momentum,
    Nesterov,
    RMSprop,
    make_optimizer,
)


@pytest.mark.parametrize("case", CASES)
def test_float64_trajectory_matches_torch(case):
    ours, theirs = CASES[case]
    params, grads = make_problem(np.float64)
    initial = {k: v.copy() for k, v in params.items()}
    expected = torch_trajectory(theirs, params, grads)
    got = run(ours(), params, grads)
    for step, (e, g) in enumerate(zip(expected, got, strict=True)):
        for k in SHAPES:
            np.testing.assert_allclose(g[k], e[k], rtol=1e-12, atol=1e-13, err_msg=f"{case} step {step + 1} {k}")
    assert np.abs(got[-1]["W1"] - initial["W1"]).min() > 1e-3  # it did move


@pytest.mark.parametrize("case", CASES)
def test_float32_trajectory_matches_torch_and_stays_float32(case):
    ours, theirs = CASES[case]
    params, grads = make_problem(np.float32)
    expected = torch_trajectory(theirs, params, grads)
    opt = ours()
    got = run(opt, params, grads)
    for e, g in zip(expected, got, strict=True):
        for k in SHAPES:
            assert g[k].dtype == np.float32
            np.testing.assert_allclose(g[k], e[k], rtol=2e-5, atol=2e-6)
    for slot, arrays in opt.state.items():
        assert set(arrays) == (set(SHAPES) if opt.slots else set())
        for k, arr in arrays.items():
            assert arr.dtype == np.float32, (slot, k)
            assert arr.shape == SHAPES[k]


def test_nesterov_hand_derived_and_differs_from_the_books_formula():
    lr, mu = 0.1, 0.9
    p0 = np.array([1.0, -2.0])
    gs = [np.array([0.5, 1.0]), np.array([-1.0, 0.25]), np.array([2.0, -0.5])]
    params = {"w": p0.copy()}
    opt = Nesterov(lr=lr, momentum=mu)
    p, v = p0.copy(), np.zeros(2)
    book_p, book_v = p0.copy(), np.zeros(2)
    for g in gs:
        opt.update(params, {"w": g})
        # p ← p + μ²·v_old − (1 + μ)·lr·g; v ← μ·v − lr·g
        p = p + mu * mu * v - (1 + mu) * lr * g
        v = mu * v - lr * g
        # the book's common/optimizer.py: μ² times the *updated* v
        book_v = mu * book_v - lr * g
        book_p = book_p + mu * mu * book_v - (1 + mu) * lr * g
        np.testing.assert_allclose(params["w"], p, rtol=1e-14)
        np.testing.assert_allclose(opt.v["w"], v, rtol=1e-14)
    assert not np.allclose(params["w"], book_p, rtol=1e-3)


def test_adam_first_step_is_lr_times_sign_and_matches_hand_formula():
    g = np.array([3.0, -0.02, 1e-3])
    params = {"w": np.zeros(3)}
    opt = Adam(lr=0.01)
    opt.update(params, {"w": g})
    # m̂ = g, v̂ = g², so the step is lr·g/(|g| + eps)
    np.testing.assert_allclose(params["w"], -0.01 * g / (np.abs(g) + 1e-8), rtol=1e-14)
    assert opt.iter == opt.step == 1
    # second step, by hand
    g2 = np.array([-1.0, 0.5, 0.0])
    opt.update(params, {"w": g2})
    m = 0.9 * (0.1 * g) + 0.1 * g2
    v = 0.999 * (0.001 * g * g) + 0.001 * g2 * g2
    step = 0.01 * (m / (1 - 0.9**2)) / (np.sqrt(v / (1 - 0.999**2)) + 1e-8)
    np.testing.assert_allclose(params["w"], -0.01 * g / (np.abs(g) + 1e-8) - step, rtol=1e-13)


def test_book_attributes_and_names():
    params = {"W1": np.ones((2, 2))}
    grads = {"W1": np.full((2, 2), 0.5)}
    m = Momentum()
    m.update(params, grads)
    np.testing.assert_allclose(m.v["W1"], -0.01 * 0.5)
    a = AdaGrad()
    a.update({"W1": np.ones(2)}, {"W1": np.full(2, 2.0)})
    np.testing.assert_allclose(a.h["W1"], 4.0)
    r = RMSprop()
    r.update({"W1": np.ones(2)}, {"W1": np.full(2, 2.0)})
    np.testing.assert_allclose(r.h["W1"], 0.01 * 4.0)
    adam = Adam()
    adam.update({"W1": np.ones(2)}, {"W1": np.full(2, 2.0)})
    assert set(adam.m) == set(adam.v) == {"W1"} and adam.iter == 1
    assert repr(adam).startswith("Adam(lr=0.001, beta1=0.9, beta2=0.999")
    # The book's defaults.
    assert SGD().lr == 0.01 and Momentum().momentum == 0.9 and RMSprop().decay_rate == 0.99
    assert (Adam().lr, Adam().beta1, Adam().beta2) == (0.001, 0.9, 0.999)


@given(
    name=st.sampled_from(sorted(OPTIMIZERS)),
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple),
    scale=st.sampled_from([1e-30, 1e-3, 1.0, 1e3, 1e15]),
    seed=st.integers(0, 2**16),
)
def test_property_float32_finite_and_dtype_kept(name, shape, scale, seed):
    rng = np.random.default_rng(seed)
    params = {"w": rng.standard_normal(shape).astype(np.float32)}
    opt = make_optimizer(name, lr=1e-3)
    for _ in range(3):
        g = (scale * rng.standard_normal(shape)).astype(np.float32)
        opt.update(params, {"w": g})
    assert params["w"].dtype == np.float32 and params["w"].shape == shape
    assert np.all(np.isfinite(params["w"]))
    for arrays in opt.state.values():
        assert arrays["w"].dtype == np.float32 and np.all(np.isfinite(arrays["w"]))

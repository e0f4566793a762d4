"""Optimizer state, in-place updates, checks, state_dict, the registry."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from optim_cases import CASES, SHAPES, make_problem, run

from layerwise.errors import InputError, ShapeError, StateError
from layerwise.layers import Affine
from layerwise.models import TwoLayerNet
from layerwise.optim import (
    OPTIMIZERS,
    SGD,
    AdaGrad,
    Adam,
    Momentum,
    Nesterov,
    RMSprop,
    make_optimizer,
    optimizer_from_state_dict,
)

# -- each hyperparameter is checked in one place -------------------------------------------------
HYPER_VALUES = [0.5, 0.0, 1.0, -1.0, 1e-8, 2.0, np.float64(0.25), np.float32(0.75), 3, True, "0.1", "fast",
                None, float("nan"), float("inf")]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_update_is_in_place_and_a_layer_sees_it(name):
    rng = np.random.default_rng(1)
    layer = Affine(rng.standard_normal((3, 2)), np.zeros(2))
    W, b = layer.W, layer.b
    before = W.copy()
    opt = make_optimizer(name)
    for _ in range(2):
        opt.update(layer.params, {"W": np.ones((3, 2)), "b": np.ones(2)})
    assert layer.W is W and layer.b is b and layer.params["W"] is W
    assert not np.array_equal(W, before)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_model_params_updated_in_place(name):
    net = TwoLayerNet(4, 5, 3, seed=0, dtype=np.float32)
    ids = {k: id(v) for k, v in net.params.items()}
    before = {k: v.copy() for k, v in net.params.items()}
    x = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    t = np.array([0, 1, 2, 0, 1, 2])
    opt = make_optimizer(name, lr=0.1)
    for _ in range(3):
        opt.update(net.params, net.gradient(x, t))
    assert {k: id(v) for k, v in net.params.items()} == ids
    assert all(v.dtype == np.float32 for v in net.params.values())
    assert not np.array_equal(net.params["W2"], before["W2"])


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_no_parameter_sized_allocation_after_the_first_step(name):
    rng = np.random.default_rng(0)
    params = {"W": rng.standard_normal((400, 250)), "b": rng.standard_normal(250)}  # W is 800 kB
    grads = {"W": rng.standard_normal((400, 250)), "b": rng.standard_normal(250)}
    opt = make_optimizer(name, weight_decay=0.01)
    opt.update(params, grads)  # allocates state and scratch
    tracemalloc.start()
    try:
        opt.update(params, grads)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64_000, f"{name} allocated {peak} bytes in a step"


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_float32_kept_with_float64_gradients_and_numpy_scalar_lr(name):
    params = {"w": np.ones(5, dtype=np.float32)}
    opt = make_optimizer(name)
    opt.lr = np.float64(0.02)  # a schedule assigning a NumPy scalar
    assert type(opt.lr) is float
    for _ in range(3):
        opt.update(params, {"w": np.linspace(-1, 1, 5)})  # float64 gradient
    assert params["w"].dtype == np.float32
    for arrays in opt.state.values():
        assert all(a.dtype == np.float32 for a in arrays.values())


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_state_dict_round_trip_continues_bit_exactly(case, dtype):
    ours, _ = CASES[case]
    params, grads = make_problem(dtype)
    opt = ours()
    run(opt, params, grads[:10])
    state = opt.state_dict()
    json.dumps({k: v for k, v in state.items() if k != "arrays"})  # JSON-able apart from arrays
    snapshot = {k: v.copy() for k, v in params.items()}
    arrays_at_save = {k: v.copy() for k, v in state["arrays"].items()}

    expected = run(opt, params, grads[10:])
    # state_dict() handed out copies: continuing did not change them.
    assert all(np.array_equal(state["arrays"][k], v) for k, v in arrays_at_save.items())

    resumed = optimizer_from_state_dict(state)
    assert type(resumed) is type(opt) and resumed.step == 10
    got = run(resumed, snapshot, grads[10:])
    for e, g in zip(expected, got, strict=True):
        for k in SHAPES:
            assert np.array_equal(e[k], g[k]) and g[k].dtype == dtype

    # load_state_dict into a fresh instance made with other hyperparameters restores them.
    other = type(opt)(lr=0.5)
    other.load_state_dict(state)
    assert other.hyper() == opt.hyper()


def test_make_optimizer_names_and_errors():
    assert set(OPTIMIZERS) == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"}
    assert isinstance(make_optimizer("ADAM", lr=0.1), Adam)
    with pytest.raises(InputError, match=r"unknown optimizer 'adamw'.*sgd, momentum, nesterov, adagrad"):
        make_optimizer("adamw")
    with pytest.raises(InputError, match="takes no momentum"):
        make_optimizer("sgd", momentum=0.9)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: SGD(lr=0),
        lambda: SGD(lr=-0.1),
        lambda: SGD(lr=float("nan")),
        lambda: SGD(lr=True),
        lambda: SGD(lr="fast"),
        lambda: Momentum(momentum=1.0),
        lambda: Nesterov(momentum=-0.1),
        lambda: RMSprop(decay_rate=1.5),
        lambda: Adam(beta1=1.0),
        lambda: Adam(beta2=float("inf")),
        lambda: Adam(eps=0),
        lambda: AdaGrad(weight_decay=-1),
    ],
)
def test_invalid_hyperparameters_raise_input_error(factory):
    with pytest.raises(InputError):
        factory()


def test_bad_gradients_change_nothing():
    params = {"a": np.ones(3), "b": np.ones(2)}
    opt = Adam()
    with pytest.raises(ShapeError, match=r"'b'.*\(3,\).*\(2,\)"):
        opt.update(params, {"a": np.ones(3), "b": np.ones(3)})
    with pytest.raises(InputError, match="no gradient for parameter 'b'"):
        opt.update(params, {"a": np.ones(3)})
    with pytest.raises(InputError, match="floating ndarray"):
        opt.update({"a": np.ones(3, dtype=np.int64)}, {"a": np.ones(3)})
    frozen = np.ones(3)
    frozen.flags.writeable = False
    with pytest.raises(InputError, match="read-only"):
        opt.update({"a": frozen}, {"a": np.ones(3)})
    assert opt.step == 0 and all(not arrays for arrays in opt.state.values())
    assert all(np.array_equal(v, np.ones_like(v)) for v in params.values())


def test_none_gradient_freezes_a_parameter():
    params = {"a": np.ones(3), "b": np.ones(2)}
    opt = SGD(lr=0.5)
    opt.update(params, {"a": np.ones(3), "b": None})
    np.testing.assert_array_equal(params["a"], 0.5)
    np.testing.assert_array_equal(params["b"], 1.0)


def test_state_that_no_longer_fits_the_parameter_is_an_error():
    opt = Momentum()
    opt.update({"W": np.ones((2, 2))}, {"W": np.ones((2, 2))})
    with pytest.raises(StateError, match=r"v/W.*float64\[2, 2\].*float32\[2, 2\]"):
        opt.update({"W": np.ones((2, 2), np.float32)}, {"W": np.ones((2, 2), np.float32)})


def test_load_state_dict_rejects_foreign_state():
    state = Adam().state_dict()
    with pytest.raises(InputError, match="'Adam'"):
        SGD().load_state_dict(state)
    with pytest.raises(InputError, match="unexpected state array 'q/W1'"):
        Adam().load_state_dict({**state, "arrays": {"q/W1": np.zeros(2)}})
    with pytest.raises(InputError, match="unknown hyperparameters"):
        Adam().load_state_dict({**state, "hyper": {"momentum": 0.9}})
    with pytest.raises(InputError, match="step"):
        Adam().load_state_dict({**state, "step": -1})
    with pytest.raises(InputError, match="unknown optimizer type"):
        optimizer_from_state_dict({"type": "Lion"})


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_load_state_dict_checks_every_hyperparameter_as_assignment_does(name):
    cls = OPTIMIZERS[name]
    for hyper in cls.hyper_names:
        for value in HYPER_VALUES:
            by_assignment, by_state = cls(), cls()
            state = by_state.state_dict()
            try:
                setattr(by_assignment, hyper, value)
            except InputError as exc:
                with pytest.raises(InputError) as info:
                    by_state.load_state_dict({**state, "hyper": {hyper: value}})
                assert str(info.value) == str(exc), (hyper, value)
                assert by_state.hyper() == cls().hyper()  # nothing assigned
            else:
                by_state.load_state_dict({**state, "hyper": {hyper: value}})
                stored = getattr(by_state, hyper)
                assert type(stored) is float and stored == getattr(by_assignment, hyper), (hyper, value)


def test_a_hyperparameter_without_a_check_is_refused_when_the_class_is_made():
    with pytest.raises(TypeError, match=r"Sketchy\.lr_decay"):
        class Sketchy(SGD):
            hyper_names = ("lr", "lr_decay", "weight_decay")
            lr_decay = 0.5

"""kernels/updates.py: ``Optimizer.update`` through plans, scratch buffers and threads equals the
plain expression, the rule's ``_apply`` on the whole arrays (with g + λ·p under weight decay)."""

import sys

import numpy as np
import pytest

from layerwise.kernels import updates
from layerwise.optim import OPTIMIZERS

# The threads module the kernel splits with (monkeypatched as tests/test_threads.py does).
threads = sys.modules[updates.in_parts.__module__]

BIG = (400, 400)  # 160,000 elements: split across owned threads
SMALL = (7, 5)  # updated whole
assert np.prod(BIG) >= threads.SPLIT_MIN_ELEMENTS > np.prod(SMALL)  # the default split sizes (conftest)
STEPS = 3


@pytest.fixture
def two_threads(monkeypatch):
    """BLAS 'allowed' two threads, whatever the machine, and every part the kernel runs recorded."""
    monkeypatch.setattr(threads, "run_threads", lambda: (2, True))
    parts = []
    real = updates.in_parts

    def recording(fn, n, split=True):
        real(lambda part: (parts.append(part), fn(part))[1], n, split)

    monkeypatch.setattr(updates, "in_parts", recording)
    return parts


def plain_steps(name, hyper, p, grads):
    """The rule's formula on the whole arrays, step after step: what update() must equal."""
    ref = OPTIMIZERS[name](**hyper)
    state = {slot: np.zeros_like(p) for slot in ref.slots}
    for t, g in enumerate(grads, start=1):
        ref.step = t
        ref._begin_step()
        if ref.weight_decay:
            g = g + p * ref.weight_decay
        ref._apply(p, g, state, np.empty_like(p))
    return p, state


def run(name, hyper, dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    p0 = rng.standard_normal(shape).astype(dtype)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(STEPS)]
    params = {"W": p0.copy(), "b": rng.standard_normal(3).astype(dtype)}
    opt = OPTIMIZERS[name](**hyper)
    with threads.owned_threads():
        for g in grads:
            opt.update(params, {"W": g, "b": np.ones(3, dtype)})
    want_p, want_state = plain_steps(name, hyper, p0.copy(), grads)
    return opt, params["W"], want_p, want_state


@pytest.mark.parametrize("decay", [0.0, 0.1], ids=["plain", "weight_decay"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_split_update_equals_the_rule_on_whole_arrays(two_threads, name, dtype, decay):
    opt, got, want, want_state = run(name, {"weight_decay": decay}, dtype, BIG)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, want)
    for slot, arr in want_state.items():
        np.testing.assert_array_equal(opt.state[slot]["W"], arr)
    # The large parameter really went in two parts on every step (in either order: they run
    # at the same time); the 3-element bias never.
    n = BIG[0] * BIG[1]
    assert sorted((part.start, part.stop) for part in two_threads) == [(0, n // 2)] * STEPS + [(n // 2, n)] * STEPS


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_small_update_equals_the_rule_on_whole_arrays(two_threads, name, dtype):
    opt, got, want, want_state = run(name, {"weight_decay": 0.01}, dtype, SMALL)
    np.testing.assert_array_equal(got, want)
    for slot, arr in want_state.items():
        np.testing.assert_array_equal(opt.state[slot]["W"], arr)
    assert two_threads == []  # nothing large enough to split


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_non_contiguous_large_parameter_is_updated_whole(two_threads, name):
    rng = np.random.default_rng(1)
    p0 = rng.standard_normal(BIG)
    grads = [rng.standard_normal(BIG[::-1]) for _ in range(STEPS)]
    params = {"W": p0.copy().T}  # a transposed view: its flat view would be a copy
    opt = OPTIMIZERS[name]()
    with threads.owned_threads():
        for g in grads:
            opt.update(params, {"W": g})
    want, _ = plain_steps(name, {}, p0.copy().T, grads)
    np.testing.assert_array_equal(params["W"], want)
    assert two_threads == []


def test_a_plan_is_kept_while_it_stands_and_remade_when_its_state_is_replaced():
    opt = OPTIMIZERS["adam"]()
    p = np.zeros(4)
    opt.update({"W": p}, {"W": np.ones(4)})
    plan = opt._plans.current("W", p, opt.state)
    assert plan is not None and plan[0] is p and plan[1]["m"] is opt.state["m"]["W"]
    opt.update({"W": p}, {"W": np.ones(4)})
    assert opt._plans.current("W", p, opt.state) is plan  # reused, not remade
    opt.load_state_dict(opt.state_dict())  # new state arrays: the plan no longer stands
    assert opt._plans.current("W", p, opt.state) is None
    assert opt._plans.current("W", p.copy(), opt.state) is None  # another array under the name
    opt.update({"W": p}, {"W": np.ones(4)})
    assert opt._plans.current("W", p, opt.state)[1]["m"] is opt.state["m"]["W"]

"""kernels/split_sizes.py: the smallest pass, update and product worth splitting across the owned
threads, measured on this machine once and kept."""

import numpy as np
import pytest

from layerwise.kernels import kept_choices, measuring, split_sizes, threads, tuning, updates
from layerwise.optim import Adam


@pytest.fixture
def two_threads(monkeypatch, machine_split_sizes):
    monkeypatch.setattr(threads, "run_threads", lambda: (2, True))


def test_the_size_that_pays_is_where_splitting_stays_faster_interpolated_between_powers_of_two():
    whole = {1024: 10.0, 2048: 20.0, 4096: 40.0, 8192: 80.0}
    # split faster (below 0.95 of whole) from 4096 on: the ratio 1.2 at 2048 and 0.7 at 4096
    # crosses 0.95 half way, in the logarithm of the size
    split = {1024: 30.0, 2048: 24.0, 4096: 28.0, 8192: 40.0}
    assert split_sizes.smallest_that_pays(whole, split) == round(2048 * 2 ** 0.5)
    # a faster split at a small size does not count when a larger one is slower again
    assert split_sizes.smallest_that_pays(whole, {**split, 1024: 5.0}) == round(2048 * 2 ** 0.5)
    assert split_sizes.smallest_that_pays(whole, {k: v / 2 for k, v in whole.items()}) == 1024  # always
    assert split_sizes.smallest_that_pays(whole, {k: v * 2 for k, v in whole.items()}) == split_sizes.NEVER
    assert split_sizes.smallest_that_pays(whole, {**split, 8192: 79.0}) == split_sizes.NEVER  # within the margin


def test_outside_owned_threads_the_defaults_and_nothing_measured(monkeypatch, machine_split_sizes):
    monkeypatch.setattr(split_sizes, "_measure_pass", lambda dtype: pytest.fail("measured"))
    assert split_sizes.adopt() == split_sizes.DEFAULTS


def test_sizes_are_measured_once_set_for_the_splits_and_kept(two_threads, monkeypatch, tmp_path):
    monkeypatch.setenv(kept_choices.CACHE_ENV_VAR, str(tmp_path))
    monkeypatch.setattr(kept_choices, "_memory", {})
    sizes = (1024, 2048, 4096)
    measured = []

    def fake(pays_from):
        def measure(dtype):
            measured.append(pays_from)
            return {n: 1.0 for n in sizes}, {n: 0.5 if n >= pays_from else 2.0 for n in sizes}
        return measure

    monkeypatch.setattr(split_sizes, "_measure_pass", fake(2048))
    monkeypatch.setattr(split_sizes, "_measure_product", fake(4096))
    with threads.owned_threads():
        found = split_sizes.adopt()
        # the ratio crosses 0.95 between 1024 (2.0) and 2048 (0.5): 1024 · 2^(1.05 / 1.5)
        assert found == {"pass": round(1024 * 2 ** 0.7), "product": round(2048 * 2 ** 0.7)}
        assert threads.current_split_sizes() == (found["pass"], found["product"])
        assert threads.worth_splitting(found["pass"]) and not threads.worth_splitting(found["pass"] - 1)
        assert split_sizes.adopt() == found and measured == [2048, 4096]  # kept: not measured again
    monkeypatch.setattr(kept_choices, "_memory", {})  # another process: from the file
    with threads.owned_threads():
        assert split_sizes.adopt() == found and len(measured) == 2
    kept = split_sizes.kept_sizes()
    assert set(kept) == {"relu pass float32, 2 threads", "product float32, 2 threads"}
    assert kept["relu pass float32, 2 threads"]["us"]["2048"] == [1e6, 0.5e6]  # whole, split


def test_without_tuning_or_in_a_worker_the_defaults(two_threads, monkeypatch, tmp_path):
    monkeypatch.setenv(kept_choices.CACHE_ENV_VAR, str(tmp_path))
    monkeypatch.setattr(kept_choices, "_memory", {})
    monkeypatch.setattr(split_sizes, "_measure_pass", lambda dtype: pytest.fail("measured"))
    monkeypatch.setattr(split_sizes, "_measure_product", lambda dtype: pytest.fail("measured"))
    with threads.owned_threads():
        monkeypatch.setenv(kept_choices.TUNING_ENV_VAR, "0")
        assert split_sizes.adopt() == split_sizes.DEFAULTS
        monkeypatch.delenv(kept_choices.TUNING_ENV_VAR)
        monkeypatch.setattr(kept_choices, "_measuring_here", False)  # measure_nothing()
        assert split_sizes.adopt() == split_sizes.DEFAULTS


def test_a_real_measurement_gives_sizes_in_range_and_the_plans_adopt_them(two_threads, monkeypatch, tmp_path):
    monkeypatch.setenv(kept_choices.CACHE_ENV_VAR, str(tmp_path))
    monkeypatch.setattr(kept_choices, "_memory", {})
    with tuning.enter_plan("owned", 2):
        elements, macs = threads.current_split_sizes()
    kept = split_sizes.kept_sizes()
    assert kept["relu pass float32, 2 threads"]["min"] == elements and kept["product float32, 2 threads"]["min"] == macs
    for size in (elements, macs):
        assert size == split_sizes.NEVER or 1 << 14 <= size <= 1 << 30
    # every size measured both ways, in microseconds
    assert all(len(v) == 2 and min(v) > 0 for v in kept["relu pass float32, 2 threads"]["us"].values())


@pytest.mark.parametrize("pays_from", [1000, split_sizes.NEVER])
def test_an_update_is_split_from_its_rules_own_size(two_threads, monkeypatch, pays_from):
    asked = []

    def kept_or_measured(key, measure):
        asked.append(key)
        return pays_from

    monkeypatch.setattr(split_sizes, "_kept_or_measured", kept_or_measured)
    parts = []
    real = updates.in_parts
    monkeypatch.setattr(updates, "in_parts", lambda fn, n, split=True: real(lambda b: (parts.append(b), fn(b)), n))
    opt = Adam()
    n = split_sizes.SMALLEST + 100  # below the smallest size measured nothing is split, or looked up
    p, g = np.ones(n, np.float32), np.full(n, 0.5, np.float32)
    want = p.copy()
    with threads.owned_threads():
        for _ in range(2):
            opt.update({"W": p}, {"W": g})
    assert asked == ["split update Adam float32, 2 threads"]  # looked up once
    assert len(parts) == (4 if pays_from == 1000 else 0)  # two parts a step, or none
    small = np.ones(split_sizes.SMALLEST - 1, np.float32)
    with threads.owned_threads():
        opt.update({"b": small}, {"b": np.ones_like(small)})
    assert len(parts) == (4 if pays_from == 1000 else 0)  # whole, whatever was measured
    ref = Adam()
    state = {slot: np.zeros_like(want) for slot in ref.slots}
    for t in (1, 2):
        ref.step = t
        ref._begin_step()
        ref._apply(want, g, state, np.empty_like(want))
    np.testing.assert_array_equal(p, want)  # the same numbers either way


def test_an_updates_measurement_leaves_the_optimizer_alone(two_threads, monkeypatch, tmp_path):
    monkeypatch.setenv(kept_choices.CACHE_ENV_VAR, str(tmp_path))
    monkeypatch.setattr(kept_choices, "_memory", {})
    opt = Adam()
    p = np.ones(10, np.float32)
    with threads.owned_threads():
        opt.update({"W": p}, {"W": np.full(10, 0.5, np.float32)})
        size = split_sizes.update_min_elements("Adam", opt._apply, opt.slots, np.dtype(np.float32))
    assert size == split_sizes.NEVER or size >= 1 << 14
    assert opt.step == 1 and set(opt.state["m"]) == {"W"}  # only the real parameter's state
    assert "update Adam float32, 2 threads" in split_sizes.kept_sizes()


def test_sizes_measured_while_the_cores_gave_less_than_usual_are_not_kept(two_threads, monkeypatch, tmp_path):
    monkeypatch.setenv(kept_choices.CACHE_ENV_VAR, str(tmp_path))
    monkeypatch.setattr(kept_choices, "_memory", {})
    signature = kept_choices.machine_signature()
    measuring.cores_as_usual(signature, 2, 1.9)  # this machine's usual speed-up on 2 threads
    readings = iter([1.9, 1.0])  # around the pass's measurement: the second core gave nothing after it
    monkeypatch.setattr(measuring, "blas_speedup", lambda threads: next(readings, 1.9))
    measured = []

    def measure(dtype):
        measured.append(dtype)
        return {n: 1.0 for n in (1024, 2048)}, {n: 0.5 for n in (1024, 2048)}

    monkeypatch.setattr(split_sizes, "_measure_pass", measure)
    monkeypatch.setattr(split_sizes, "_measure_product", measure)
    with threads.owned_threads():
        found = split_sizes.adopt()
        assert found == {"pass": split_sizes.DEFAULTS["pass"], "product": 1024}  # the pass's default this run
        assert split_sizes.adopt() == found and len(measured) == 2  # not measured again in this process
    assert set(split_sizes.kept_sizes()) == {"product float32, 2 threads"}
    monkeypatch.setattr(split_sizes, "_disturbed", set())  # a later run: measured again, as usual now
    with threads.owned_threads():
        assert split_sizes.adopt() == {"pass": 1024, "product": 1024} and len(measured) == 3
    assert set(split_sizes.kept_sizes()) == {"relu pass float32, 2 threads", "product float32, 2 threads"}

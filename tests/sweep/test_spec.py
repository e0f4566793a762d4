"""What a sweep is: the ranges it searches, the checks on its settings, and the trial
configurations that follow from them (layerwise.sweep.spec)."""

import dataclasses
import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from layerwise.errors import InputError
from layerwise.sweep import BOOK_LR, BOOK_WEIGHT_DECAY, SweepSpec, parse_range

# -- parse_range -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("1e-6..1e-2", (1e-6, 1e-2)),
    ("0.001..0.1", (0.001, 0.1)),
    (" 1e-8 .. 1e-4 ", (1e-8, 1e-4)),  # float() forgives the spaces around a number
    ("1..100", (1.0, 100.0)),
])
def test_parse_range_reads_low_and_high(text, expected):
    assert parse_range(text, "--lr") == expected


@pytest.mark.parametrize("text, words", [
    ("1e-2..1e-6", "reversed"),
    ("1e-3..1e-3", "below"),  # an empty range is as useless as a reversed one
    ("0..1e-2", "positive"),
    ("-1..1", "positive"),
    ("1e-6..0", "positive"),
    ("1e-6..-1e-2", "positive"),
    ("a..b", "numbers"),
    ("1e-6..lots", "numbers"),
    ("..1e-2", "numbers"),
    ("1e-6-1e-2", "LOW..HIGH"),
    ("1e-6", "LOW..HIGH"),
    ("1e-6..1e-4..1e-2", "LOW..HIGH"),
    ("", "LOW..HIGH"),
    ("1e-6..inf", "finite"),
    ("nan..1e-2", "finite"),
    ("-inf..1", "finite"),
])
@pytest.mark.parametrize("name", ["--lr", "--weight-decay"])
def test_parse_range_refuses_with_the_option_named(text, words, name):
    with pytest.raises(InputError) as info:
        parse_range(text, name)
    message = str(info.value)
    assert message.startswith(f"{name} "), message
    assert repr(text) in message and words in message, message


# -- the checks of SweepSpec ---------------------------------------------------------------------


def test_the_defaults_are_the_books_search():
    spec = SweepSpec()
    assert spec.lr == BOOK_LR == (1e-6, 1e-2)
    assert spec.weight_decay == BOOK_WEIGHT_DECAY == (1e-8, 1e-4)
    assert spec.validation == 0.2 and spec.model == "mlp" and spec.optimizer == "sgd"


@pytest.mark.parametrize("trials", [0, -3, 2.5, True, "5"])
def test_trials_must_be_a_positive_whole_number(trials):
    with pytest.raises(InputError, match="--trials"):
        SweepSpec(trials=trials)


@pytest.mark.parametrize("model", ["two-layer", "convnet", "deep-convnet"])
def test_weight_decay_needs_the_mlp(model):
    with pytest.raises(InputError, match=r"--weight-decay needs --model mlp.*--model " + model):
        SweepSpec(model=model)
    assert SweepSpec(model=model, weight_decay=None).weight_decay is None


@pytest.mark.parametrize("trials", [2, 3, 5, 8, 10, 15, 20, 99])
def test_a_grid_over_two_axes_needs_a_square_number_of_trials(trials):
    with pytest.raises(InputError, match=rf"--grid.*square.*got {trials}"):
        SweepSpec(grid=True, trials=trials)


def test_a_grid_over_lr_alone_takes_any_number_of_trials():
    spec = SweepSpec(grid=True, trials=7, model="two-layer", weight_decay=None)
    assert len(spec.configs()) == 7


@pytest.mark.parametrize("validation", [0, 0.0, 1, 1.0, -0.2, 1.5, math.nan])
def test_validation_must_be_a_fraction(validation):
    with pytest.raises(InputError, match="--validation"):
        SweepSpec(validation=validation)


@pytest.mark.parametrize("setting, value, option", [
    ("epochs", 0, "--epochs"), ("batch_size", 0, "--batch-size"), ("epochs", 1.5, "--epochs"),
    ("model", "resnet", "--model"), ("activation", "gelu", "--activation"), ("optimizer", "lbfgs", "--optimizer"),
])
def test_other_settings_are_checked_by_their_option_name(setting, value, option):
    with pytest.raises(InputError, match=option):
        SweepSpec(**{setting: value})


# -- configs() -----------------------------------------------------------------------------------


def test_configs_are_the_same_for_the_same_spec():
    a, b = SweepSpec(trials=30, seed=4), SweepSpec(trials=30, seed=4)
    assert a.configs() == b.configs()
    assert a.configs() == a.configs()
    assert [c["trial"] for c in a.configs()] == list(range(30))


def test_configs_are_plain_values_a_worker_can_be_sent():
    configs = SweepSpec(trials=3, hidden=(20, 10)).configs()
    assert json.loads(json.dumps(configs)) == configs
    assert all(type(c["lr"]) is float and type(c["weight_decay"]) is float for c in configs)
    assert configs[0]["hidden"] == [20, 10]


def test_different_seeds_draw_different_trials():
    a, b = SweepSpec(trials=10, seed=0).configs(), SweepSpec(trials=10, seed=1).configs()
    assert {c["lr"] for c in a}.isdisjoint(c["lr"] for c in b)
    assert {c["weight_decay"] for c in a}.isdisjoint(c["weight_decay"] for c in b)


def test_every_trial_has_its_own_seed_and_the_sweep_one_split():
    configs = SweepSpec(trials=12, seed=5).configs()
    assert len({c["seed"] for c in configs}) == 12
    assert {c["split_seed"] for c in configs} == {5}


def test_the_draws_are_log_uniform():
    """The book's 10 ** uniform(-6, -2): the exponents, not the values, are spread evenly."""
    configs = SweepSpec(trials=2000, seed=0).configs()
    exponents = np.log10([c["lr"] for c in configs])
    quarters = np.histogram(exponents, bins=4, range=(-6, -2))[0]
    assert quarters.min() > 400, quarters  # 500 expected in each; a linear draw would put ~all in the last


positive = st.floats(min_value=1e-12, max_value=1e3, allow_nan=False, allow_infinity=False)


@st.composite
def ranges(draw):
    """A valid LOW..HIGH: from the next float above LOW (where rounding shows) to 8 decades."""
    low = draw(positive)
    kind = draw(st.sampled_from(["next float", "narrow", "wide"]))
    if kind == "next float":
        return low, float(np.nextafter(low, np.inf))
    factor = draw(st.floats(min_value=1 + 1e-12, max_value=1 + 1e-6) if kind == "narrow"
                  else st.floats(min_value=1 + 1e-6, max_value=1e8))
    return low, low * factor


@given(lr=ranges(), weight_decay=ranges(), seed=st.integers(0, 2**32 - 1), trials=st.integers(1, 50),
       grid=st.booleans())
def test_every_draw_lies_inside_its_range(lr, weight_decay, seed, trials, grid):
    if grid:
        trials = math.isqrt(trials) ** 2
    configs = SweepSpec(trials=trials, seed=seed, lr=lr, weight_decay=weight_decay, grid=grid).configs()
    assert len(configs) == trials
    for c in configs:
        assert lr[0] <= c["lr"] <= lr[1], (c["lr"], lr)
        assert weight_decay[0] <= c["weight_decay"] <= weight_decay[1], (c["weight_decay"], weight_decay)


def test_without_weight_decay_the_trials_have_none():
    configs = SweepSpec(trials=5, model="two-layer", weight_decay=None).configs()
    assert all(c["weight_decay"] == 0.0 for c in configs)


def test_the_grid_is_the_log_spaced_product():
    spec = SweepSpec(grid=True, trials=9, lr=(1e-4, 1e-2), weight_decay=(1e-8, 1e-6))
    pairs = [(c["lr"], c["weight_decay"]) for c in spec.configs()]
    lrs, wds = [1e-4, 1e-3, 1e-2], [1e-8, 1e-7, 1e-6]
    assert len(pairs) == 9 and len(set(pairs)) == 9
    for (lr, wd), (want_lr, want_wd) in zip(pairs, [(a, b) for a in lrs for b in wds], strict=True):
        assert lr == pytest.approx(want_lr, rel=1e-12) and wd == pytest.approx(want_wd, rel=1e-12)
    assert spec.points_per_axis == 3
    assert SweepSpec(grid=True, trials=9, seed=123, lr=(1e-4, 1e-2), weight_decay=(1e-8, 1e-6)).configs()[0]["lr"] \
        == pairs[0][0]  # a grid draws nothing: the seed does not move it


def test_a_grid_of_one_point_is_the_middle_of_the_range():
    (config,) = SweepSpec(grid=True, trials=1, lr=(1e-4, 1e-2), weight_decay=(1e-8, 1e-6)).configs()
    assert config["lr"] == pytest.approx(1e-3) and config["weight_decay"] == pytest.approx(1e-7)


def test_a_grid_over_lr_alone():
    configs = SweepSpec(grid=True, trials=5, lr=(1e-5, 1e-1), model="convnet", weight_decay=None).configs()
    np.testing.assert_allclose([c["lr"] for c in configs], [1e-5, 1e-4, 1e-3, 1e-2, 1e-1], rtol=1e-12)


# -- sweep.json ----------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", [
    SweepSpec(),
    SweepSpec(dataset="/data/mnist", model="two-layer", hidden=(64,), weight_decay=None, optimizer="adam",
              epochs=3, batch_size=32, trials=7, lr=(1e-4, 1e-1), seed=9, validation=0.1),
    SweepSpec(grid=True, trials=16, hidden=(100, 50, 25), weight_decay=(1e-7, 1e-3), dtype="float64",
              extra={"note": "x"}),
])
def test_to_dict_and_from_dict_round_trip(spec):
    data = json.loads(json.dumps(spec.to_dict()))
    back = SweepSpec.from_dict(data)
    assert back == spec
    assert back.configs() == spec.configs()


def test_from_dict_refuses_an_unknown_setting():
    data = SweepSpec().to_dict() | {"learning_rate": 3}
    with pytest.raises(InputError, match="learning_rate"):
        SweepSpec.from_dict(data)


def test_from_dict_checks_the_values_too():
    with pytest.raises(InputError, match="--trials"):
        SweepSpec.from_dict(SweepSpec().to_dict() | {"trials": 0})


def test_differences_name_the_changed_settings():
    a = SweepSpec()
    b = dataclasses.replace(a, epochs=5, lr=(1e-4, 1e-2))
    changes = a.differences(b)
    assert len(changes) == 2
    assert "epochs: 20 -> 5" in changes
    assert any(c.startswith("lr: ") and "0.0001" in c for c in changes), changes
    assert a.differences(a) == [] and a.differences(SweepSpec()) == []
    assert b.differences(a) == ["epochs: 5 -> 20", "lr: [0.0001, 0.01] -> [1e-06, 0.01]"]

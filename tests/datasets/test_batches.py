"""Mini-batches: each sample once per epoch, partial last batch, seeded, resumable, no copies."""

from __future__ import annotations

import json
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from layerwise.datasets import BatchLoader, iterate_minibatches, steps_per_epoch
from layerwise.errors import InputError, ShapeError


def data(n: int, features: int = 3):
    """Sample i is recognisable: x[i] is filled with i, t[i] == i."""
    x = np.repeat(np.arange(n, dtype=np.float32)[:, None], features, axis=1)
    return x, np.arange(n, dtype=np.int64)


def epoch_ids(batches) -> list[np.ndarray]:
    out = []
    for xb, tb in batches:
        assert np.array_equal(xb[:, 0], tb)  # x and t stay paired
        out.append(tb.copy())  # the buffers are reused: keep a copy
    return out


@given(n=st.integers(0, 60), batch_size=st.integers(1, 25), drop_last=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_each_sample_exactly_once_per_epoch(n, batch_size, drop_last, seed):
    x, t = data(n)
    loader = BatchLoader(x, t, batch_size, rng=seed, drop_last=drop_last)
    for _ in range(2):
        batches = epoch_ids(loader)
        assert len(batches) == len(loader) == steps_per_epoch(n, batch_size, drop_last)
        seen = np.concatenate(batches) if batches else np.array([], dtype=np.int64)
        assert len(np.unique(seen)) == len(seen)  # never twice (the book's draw repeats)
        if drop_last:
            assert len(seen) == n - n % batch_size
            assert all(len(b) == batch_size for b in batches)
        else:
            assert sorted(seen.tolist()) == list(range(n))  # every sample, once
    assert loader.epoch == 2


def test_last_partial_batch():
    x, t = data(10)
    sizes = [len(tb) for _, tb in iterate_minibatches(x, t, 4, rng=0)]
    assert sizes == [4, 4, 2]
    sizes = [len(tb) for _, tb in iterate_minibatches(x, t, 4, rng=0, drop_last=True)]
    assert sizes == [4, 4]
    assert steps_per_epoch(10, 4) == 3 and steps_per_epoch(10, 4, drop_last=True) == 2
    assert steps_per_epoch(8, 4) == 2 == steps_per_epoch(8, 4, drop_last=True)
    assert steps_per_epoch(3, 4, drop_last=True) == 0 and steps_per_epoch(0, 4) == 0


def test_seeded_determinism_and_shuffling():
    x, t = data(50)
    a = epoch_ids(iterate_minibatches(x, t, 8, rng=np.random.default_rng(7)))
    b = epoch_ids(iterate_minibatches(x, t, 8, rng=7))
    c = epoch_ids(iterate_minibatches(x, t, 8, rng=8))
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(np.concatenate(a), np.concatenate(c))
    assert not np.array_equal(np.concatenate(a), np.arange(50))  # actually shuffled
    ordered = epoch_ids(iterate_minibatches(x, t, 8, shuffle=False))
    assert np.array_equal(np.concatenate(ordered), np.arange(50))


def test_consecutive_epochs_differ_and_follow_the_generator():
    x, t = data(30)
    loader = BatchLoader(x, t, 7, rng=3)
    e0, e1 = np.concatenate(epoch_ids(loader)), np.concatenate(epoch_ids(loader))
    assert not np.array_equal(e0, e1)
    rng = np.random.default_rng(3)  # the documented rule: one permutation per epoch
    assert np.array_equal(e0, rng.permutation(30)) and np.array_equal(e1, rng.permutation(30))


def test_buffers_are_reused_unless_copy():
    x, t = data(20)
    it = iterate_minibatches(x, t, 6, rng=0)
    x1, t1 = next(it)
    first = t1.copy()
    x2, t2 = next(it)
    assert np.shares_memory(x1, x2) and np.shares_memory(t1, t2)
    assert not np.array_equal(t1, first)  # overwritten, as documented
    it = iterate_minibatches(x, t, 6, rng=0, copy=True)
    x1, t1 = next(it)
    first = t1.copy()
    x2, _ = next(it)
    assert not np.shares_memory(x1, x2) and np.array_equal(t1, first)
    assert not np.shares_memory(x1, x)


def test_no_copy_of_the_dataset_per_epoch():
    x, t = data(20000, features=100)  # 8 MB of x
    loader = BatchLoader(x, t, 64, rng=0)
    tracemalloc.start()
    try:
        for _ in range(2):
            for _ in loader:
                pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The permutation (160 kB) and the two buffers (~26 kB), nowhere near x's 8 MB.
    assert peak < 1_000_000, peak


def test_one_hot_and_image_shaped_data():
    x = np.arange(10 * 2 * 3, dtype=np.float64).reshape(10, 1, 2, 3)
    t = np.eye(10, dtype=np.float32)
    for xb, tb in iterate_minibatches(x, t, 4, rng=1):
        assert xb.shape[1:] == (1, 2, 3) and xb.dtype == np.float64
        assert tb.shape[1:] == (10,) and tb.dtype == np.float32
        idx = tb.argmax(axis=1)
        np.testing.assert_array_equal(xb, x[idx])


def test_resume_mid_epoch_with_the_function():
    x, t = data(23)
    rng = np.random.default_rng(11)
    saved = rng.bit_generator.state  # at the epoch's start
    full = epoch_ids(iterate_minibatches(x, t, 5, rng=rng))
    after_full = rng.bit_generator.state
    resumed_rng = np.random.default_rng()
    resumed_rng.bit_generator.state = saved
    rest = epoch_ids(iterate_minibatches(x, t, 5, rng=resumed_rng, start_batch=3))
    assert [b.tolist() for b in rest] == [b.tolist() for b in full[3:]]
    assert resumed_rng.bit_generator.state == after_full


@pytest.mark.parametrize("stop_after", [0, 1, 4, 5])  # 5 batches per epoch: 5 = epoch end
def test_loader_resume_from_state_dict_is_bit_exact(stop_after):
    x, t = data(23)
    reference = BatchLoader(x, t, 5, rng=42)
    expected = [epoch_ids(reference) for _ in range(3)]

    run = BatchLoader(x, t, 5, rng=42)
    epoch_ids(run)  # epoch 0
    it = iter(run)
    for _ in range(stop_after):
        next(it)
    state = json.loads(json.dumps(run.state_dict()))  # what a checkpoint would store
    del it, run

    resumed = BatchLoader(x, t, 5, rng=0)  # different seed: the state decides
    resumed.load_state_dict(state)
    assert resumed.epoch == (1 if stop_after < 5 else 2)
    got = epoch_ids(resumed)
    if stop_after < 5:
        assert [b.tolist() for b in got] == [b.tolist() for b in expected[1][stop_after:]]
        got = epoch_ids(resumed)
    assert [b.tolist() for b in got] == [b.tolist() for b in expected[2]]
    assert resumed.rng.bit_generator.state == reference.rng.bit_generator.state


def test_abandoned_epoch_continues_on_next_iter():
    x, t = data(20)
    reference = np.concatenate(epoch_ids(BatchLoader(x, t, 6, rng=5)))
    loader = BatchLoader(x, t, 6, rng=5)
    for _ in zip(range(2), loader, strict=False):
        pass
    assert loader.batch == 2 and loader.epoch == 0
    rest = np.concatenate(epoch_ids(loader))
    assert np.array_equal(rest, reference[12:])
    assert loader.epoch == 1 and loader.batch == 0


def test_argument_errors():
    x, t = data(10)
    with pytest.raises(ShapeError, match="different numbers of samples"):
        BatchLoader(x, t[:9], 2)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InputError, match="batch_size"):
            BatchLoader(x, t, bad)
    with pytest.raises(InputError, match="start_batch"):
        iterate_minibatches(x, t, 4, rng=0, start_batch=4)
    with pytest.raises(InputError, match="rng"):
        BatchLoader(x, t, 2, rng="seed")
    loader = BatchLoader(x, t, 4, rng=0)
    with pytest.raises(InputError, match="malformed"):
        loader.load_state_dict({"epoch": 0})
    with pytest.raises(InputError, match="out of range"):
        loader.load_state_dict({**loader.state_dict(), "batch": 3})

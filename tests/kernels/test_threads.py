"""layerwise owning the threads: passes and products split across them give the same numbers."""

import contextlib
import threading

import numpy as np
import pytest
from conftest import assert_close_for_dtype
from hypothesis import given, settings
from hypothesis import strategies as st

import layerwise as lw
import layerwise.train
from layerwise.kernels import blas_limits
from layerwise.kernels import threads as _threads
from layerwise.kernels.conv import im2col
from layerwise.kernels.pool import max_pool, max_pool_backward
from layerwise.kernels.tuning import ThreadPlan
from layerwise.layers import ReLU
from layerwise.optim import Adam


def _blas_limits() -> list[int]:
    return [lib.num_threads for lib in blas_limits._blas().lib_controllers]


@pytest.fixture
def two_threads(monkeypatch):
    """Two threads for layerwise, whatever the number of CPUs (the pool runs the parts on one
    CPU as well; only the speed differs)."""
    monkeypatch.setattr(_threads, "run_threads", lambda: (2, True))


def test_owned_threads_limits_blas_restores_it_and_has_one_owner(two_threads):
    before = _blas_limits()
    seen = {}
    with _threads.owned_threads() as workers:
        assert workers == 2 and _threads._owned == 2
        assert all(n == 1 for n in _blas_limits())  # no spinning BLAS threads meanwhile
        with _threads.owned_threads() as again:  # re-entrant in the owning thread
            assert again == 2
        other = threading.Thread(target=lambda: seen.setdefault("workers", _threads.owned_threads().__enter__()))
        other.start()
        other.join()
        assert seen["workers"] == 1  # another thread does not own them meanwhile
        assert _threads._owned == 2
    assert _threads._owned == 0 and _blas_limits() == before


def test_paused_ownership_runs_the_owners_work_on_it_alone_and_resumes(two_threads):
    with _threads.owned_threads():
        with _threads.paused_ownership():
            assert _threads._owned == 0 and _threads.chunk_threads() == 1
            assert all(n == 1 for n in _blas_limits())  # BLAS stays on one thread: the other core is busy
            callers = set()
            _threads.in_parts(lambda part: callers.add((threading.get_ident(), part)), 1 << 20)
            assert callers == {(threading.get_ident(), ...)}  # one call, here
        assert _threads._owned == 2
        with pytest.raises(KeyError), _threads.paused_ownership():
            raise KeyError  # resumed whatever ends the block
        assert _threads._owned == 2
    with _threads.paused_ownership():  # nothing owned: nothing to pause
        assert _threads._owned == 0
    assert _threads._owned == 0


def test_in_parts_covers_the_range_once_on_several_threads(two_threads):
    parts, threads = [], set()
    both_started = threading.Barrier(2, timeout=10)

    def record(part):
        parts.append(part)
        threads.add(threading.get_ident())
        both_started.wait()  # whichever part starts first waits for the other: they overlap

    with _threads.owned_threads():
        _threads.in_parts(record, 11)
    covered = sorted(i for part in parts for i in range(11)[part])
    assert covered == list(range(11)) and len(parts) == 2
    assert len(threads) == 2  # the caller's and a pool thread's, on any number of CPUs


@pytest.mark.parametrize(("n", "size", "owned", "expected"), [
    (100, 36, False, [33, 33, 34]),  # equal chunks of at most 36, in order
    (100, 1000, False, [100]),
    (100, 1000, True, [50, 50]),  # at least one chunk per owned thread
    (100, 36, True, [25, 25, 25, 25]),  # as many for each of the 2 owned threads
    (3, 2, True, [1, 2]),  # 2 chunks (of at most 2) are already one each
    (1, 1000, True, [1]),
    (5, 1, True, [1] * 5),  # no more chunks than images
    (0, 4, True, []),
])
def test_in_chunks_covers_the_batch_once_in_equal_chunks(two_threads, n, size, owned, expected):
    chunks, threads = [], set()

    def record(chunk):
        chunks.append(chunk)
        threads.add(threading.get_ident())

    with _threads.owned_threads() if owned else contextlib.nullcontext():
        _threads.in_chunks(record, n, size)
    chunks.sort(key=lambda c: c.start)
    assert [c.stop - c.start for c in chunks] == expected
    assert [i for c in chunks for i in range(n)[c]] == list(range(n))
    if not owned:
        assert threads == {threading.get_ident()}


def test_in_chunks_inside_a_part_takes_the_sizes_chunks_in_order_whatever_the_load(two_threads):
    seen = {}

    def part(rows):
        chunks = []
        _threads.in_chunks(chunks.append, 100, 36)
        seen[rows.start] = ([c.stop - c.start for c in chunks], threading.get_ident())

    with _threads.owned_threads():
        _threads.in_parts(part, 2)
        assert {start: sizes for start, (sizes, _) in seen.items()} == {0: [33, 33, 34], 1: [33, 33, 34]}
        # at the top, another thread holding the pool (a prediction beside a training) changes
        # which thread runs the chunks, not the chunks
        with _threads._busy:
            order = []
            _threads.in_chunks(order.append, 100, 36)
        assert [c.stop - c.start for c in order] == [25, 25, 25, 25]


def test_in_chunks_runs_the_chunks_on_the_owned_threads(two_threads):
    threads = set()
    both_started = threading.Barrier(2, timeout=10)

    def record(chunk):
        threads.add(threading.get_ident())
        if chunk.start < 4:
            both_started.wait()  # the first two chunks overlap: two threads run them

    with _threads.owned_threads():
        _threads.in_chunks(record, 8, 2)
    assert len(threads) == 2


def test_in_parts_caller_takes_the_parts_no_pool_thread_has_started(two_threads):
    """A pool thread that cannot run yet (here: every pool thread busy; in life: its core taken
    by another process) is not waited for: the calling thread runs its part too."""
    release = threading.Event()
    pool = _threads._pool()
    blockers = [pool.submit(release.wait, 10) for _ in range(pool._max_workers)]
    runners = []
    try:
        with _threads.owned_threads():
            _threads.in_parts(lambda part: runners.append((part, threading.get_ident())), 10)
    finally:
        release.set()
        for blocker in blockers:
            blocker.result()
    assert runners == [(slice(0, 5), threading.get_ident()), (slice(5, 10), threading.get_ident())]


def test_in_parts_runs_whole_when_not_owned_not_worth_it_or_inside_a_part(two_threads):
    calls = []
    _threads.in_parts(calls.append, 10)  # not owned: BLAS keeps its threads
    with _threads.owned_threads():
        _threads.in_parts(calls.append, 10, split=False)
        _threads.in_parts(calls.append, 1)  # one sample cannot be split

        def nested(part):
            _threads.in_parts(lambda inner: calls.append(("inner", inner)), 10)

        _threads.in_parts(nested, 4)
    assert calls[:3] == [..., ..., ...]
    assert calls[3:] == [("inner", ...), ("inner", ...)]  # a part never waits on the pool


def test_in_parts_raises_a_parts_error_after_every_part_finished(two_threads):
    done = []

    def fail_second(part):
        if part.start:
            raise ValueError("part failed")
        threading.Event().wait(0.05)
        done.append(part)

    with _threads.owned_threads(), pytest.raises(ValueError, match="part failed"):
        _threads.in_parts(fail_second, 8)
    assert len(done) == 1
    with _threads.owned_threads():  # the pool is free again
        _threads.in_parts(done.append, 8)
    assert len(done) == 3


@pytest.mark.parametrize("shape", [(2048, 96, 128), (40, 600, 1000), (30, 60000, 25)],
                         ids=["row blocks", "column blocks", "inner sums"])
def test_split_matmul_equals_the_plain_product(two_threads, shape):
    m, k, n = shape
    assert m * k * n >= _threads.SPLIT_MIN_MACS
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    with _threads.owned_threads():
        split = _threads.matmul(a, b)
        transposed = _threads.matmul(b.T, a.T)  # views, as Affine's backward passes them
    np.testing.assert_allclose(split, a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(transposed, (a @ b).T, rtol=1e-12, atol=1e-12)
    a32 = a.astype(np.float32)
    with _threads.owned_threads():
        assert _threads.matmul(a32, b.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("shape", [(2048, 96, 128), (40, 600, 1000), (30, 60000, 25), (100, 784, 50)],
                         ids=["row blocks", "column blocks", "inner sums", "unsplit"])
def test_matmul_adds_the_bias_row_in_every_regime(two_threads, shape):
    m, k, n = shape
    rng = np.random.default_rng(1)
    a, b, bias = rng.standard_normal((m, k)), rng.standard_normal((k, n)), rng.standard_normal(n)
    with _threads.owned_threads():
        out = _threads.matmul(a, b, add=bias)
        row = _threads.matmul(a, b, add=bias.reshape(1, -1))
    np.testing.assert_allclose(out, a @ b + bias, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(row, out)


def test_split_passes_equal_the_serial_ones_bit_for_bit(two_threads):
    rng = np.random.default_rng(1)
    # A convolution's output: channels-last memory, 138,240 values (enough to split).
    x = rng.standard_normal((8, 24, 24, 30)).transpose(0, 3, 1, 2)
    dout = rng.standard_normal(x.shape)
    serial_relu, split_relu = ReLU(), ReLU()
    expected = (serial_relu.forward(x), serial_relu.backward(dout), max_pool(x, 2, 2, 2),
                im2col(x, 5, 5, 1, 2))
    with _threads.owned_threads():
        got = (split_relu.forward(x), split_relu.backward(dout), max_pool(x, 2, 2, 2),
               im2col(x, 5, 5, 1, 2))
    for e, g in zip(expected[:2] + expected[3:], got[:2] + got[3:], strict=True):
        np.testing.assert_array_equal(g, e)
        assert g.strides == e.strides  # the same memory layout
    (out_e, arg_e), (out_g, arg_g) = expected[2], got[2]
    np.testing.assert_array_equal(out_g, out_e)
    np.testing.assert_array_equal(arg_g, arg_e)
    d = rng.standard_normal(out_e.shape)
    serial = max_pool_backward(d, arg_e, x.shape, 2, 2, 2, channels_last=True)
    with _threads.owned_threads():
        split = max_pool_backward(d, arg_e, x.shape, 2, 2, 2, channels_last=True)
        general = max_pool_backward(d, arg_e, x.shape, 2, 2, 2, tiled_fast_path=False)
    np.testing.assert_array_equal(split, serial)
    np.testing.assert_array_equal(general, serial)


def test_optimizer_updates_a_large_parameter_in_slices_with_the_same_numbers(two_threads):
    rng = np.random.default_rng(2)
    p0 = rng.standard_normal((600, 300)).astype(np.float32)
    grads = [rng.standard_normal(p0.shape).astype(np.float32) for _ in range(3)]
    serial, split = {"W": p0.copy()}, {"W": p0.copy()}
    transposed = {"W": p0.copy().T}  # not contiguous: updated whole, in place
    opt_serial, opt_split, opt_t = Adam(lr=1e-3), Adam(lr=1e-3), Adam(lr=1e-3)
    for g in grads:
        opt_serial.update(serial, {"W": g})
        with _threads.owned_threads():
            opt_split.update(split, {"W": g})
            opt_t.update(transposed, {"W": g.T})
    np.testing.assert_array_equal(split["W"], serial["W"])
    np.testing.assert_array_equal(transposed["W"].T, serial["W"])
    assert not np.array_equal(serial["W"], p0)


def _train_convnet(steps: int, plan: str | None = None) -> tuple[list[float], dict]:
    """(Patch both ``threads.run_threads`` and the Trainer's, or a machine with another number
    of CPUs replaces the plan given here by the shape rule's.)"""
    rng = np.random.default_rng(3)
    x = rng.random((steps * 40, 1, 28, 28))
    t = rng.integers(0, 10, len(x))
    model = lw.SimpleConvNet(seed=4).astype(np.float64)
    trainer = lw.Trainer(model, Adam(lr=1e-3), x, t, epochs=1, batch_size=40, seed=5,
                         train_eval_samples=1, progress=False, log=None)
    if plan is not None:
        trainer.thread_plan = ThreadPlan(plan, 2, "the test's")
    history = trainer.fit()
    assert plan is None or trainer.thread_plan.plan == plan
    return history.step_loss, {k: v.copy() for k, v in model.params.items()}


@pytest.mark.parametrize(("plan", "handoffs_per_step"), [("owned", 6), ("split", 1)])
def test_a_convnet_trains_to_the_same_weights_on_owned_threads(monkeypatch, plan, handoffs_per_step):
    # SimpleConvNet's steps make arrays of 40 x 30 x 24 x 24 values: the Trainer owns the
    # threads and either splits the convolution-ReLU-pooling run (models.fusion: its chunks,
    # forward and backward), the Affine products and Adam ("owned"), or runs each half of the
    # batch through the whole network on a thread ("split").
    for module in (_threads, layerwise.train):
        monkeypatch.setattr(module, "run_threads", lambda: (1, True))
    losses_serial, params_serial = _train_convnet(3)
    for module in (_threads, layerwise.train):
        monkeypatch.setattr(module, "run_threads", lambda: (2, True))
    submitted = []
    pool = _threads._pool()
    original_submit = pool.submit
    monkeypatch.setattr(pool, "submit", lambda fn, *a: submitted.append(fn) or original_submit(fn, *a))
    before = _blas_limits()
    losses_split, params_split = _train_convnet(3, plan)
    assert len(submitted) >= 3 * handoffs_per_step  # parts really ran on the pool
    assert _blas_limits() == before and _threads._owned == 0
    np.testing.assert_allclose(losses_split, losses_serial, rtol=1e-12)
    for name, value in params_serial.items():
        np.testing.assert_allclose(params_split[name], value, rtol=1e-10, atol=1e-12, err_msg=name)


def test_the_trainer_gives_the_threads_back_when_training_fails(two_threads):
    rng = np.random.default_rng(6)
    x, t = rng.random((80, 1, 28, 28)), rng.integers(0, 10, 80)
    model = lw.SimpleConvNet(seed=7)
    before = _blas_limits()
    trainer = lw.Trainer(model, lw.SGD(lr=1e6), x, t, epochs=3, batch_size=40, progress=False, log=None)
    with pytest.raises(lw.TrainingDiverged):
        trainer.fit()
    assert _blas_limits() == before and _threads._owned == 0


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 8), d=st.integers(1, 9), o=st.integers(1, 7),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_affine_forward_equals_matmul_plus_bias(n, d, o, dtype, seed):
    rng = np.random.default_rng(seed)
    x, W, b = (rng.standard_normal(s).astype(dtype) for s in ((n, d), (d, o), (o,)))
    out = lw.Affine(W, b).forward(x)
    assert out.dtype == dtype
    # Affine multiplies with np.dot, the plain expression with np.matmul: NumPy may hand the same
    # product to another BLAS routine (gemv for one row, gemm for several), equal to rounding.
    assert_close_for_dtype(out, x @ W + b, dtype, terms=d + 1)



def test_chunk_threads_says_how_in_chunks_would_spread_chunks_now(two_threads):
    assert _threads.chunk_threads() == _threads.parts_at_once() == 1  # nothing owned: in order on the caller
    seen = []
    with _threads.owned_threads():
        assert (_threads.chunk_threads(), _threads.parts_at_once()) == (2, 1)
        _threads.in_parts(lambda part: seen.append((_threads.chunk_threads(), _threads.parts_at_once())), 10)
    assert seen == [(1, 2), (1, 2)]  # inside a part: its chunks in order, beside the other part


def test_sum_in_chunks_adds_the_chunks_in_order_on_any_thread(two_threads):
    import numpy as np

    values = [np.float32(1e8), np.float32(1.0), np.float32(-1e8), np.float32(1.0)]  # order changes the sum
    in_order = ((values[0] + values[1]) + values[2]) + values[3]
    seen = []
    with _threads.owned_threads():
        total = _threads.sum_in_chunks(lambda part: seen.append(part) or np.array(values[part.start]), 4, 1)
    assert len(seen) == 4 and total == in_order
    assert _threads.sum_in_chunks(lambda part: np.zeros(1), 0, 1) is None  # no chunks


def test_side_by_side_runs_the_copies_at_once_each_as_a_part(two_threads):
    import threading

    arrived = threading.Barrier(3, timeout=30)  # passes only if all three copies run at once
    seen = []

    def copy():
        arrived.wait()
        seen.append((threading.get_ident(), _threads.chunk_threads()))

    with _threads.owned_threads():
        seconds = _threads.side_by_side(copy, 3)
    assert seconds > 0 and len(seen) == 3 and len({ident for ident, _ in seen}) == 3
    assert {chunks for _, chunks in seen} == {1}  # inside a part: in_chunks runs in order there
    assert (threading.get_ident(), 1) in seen  # the caller is one of them ...
    assert _threads.chunk_threads() == 1 and not getattr(_threads._part, "inside", False)  # ... and is restored


def test_side_by_side_reraises_a_copys_error_after_all_have_ended():
    import threading

    calls = []

    def copy():
        calls.append(1)
        if threading.current_thread() is not threading.main_thread():
            raise ValueError("in a helper")

    with pytest.raises(ValueError, match="in a helper"):
        _threads.side_by_side(copy, 2)
    assert len(calls) == 2

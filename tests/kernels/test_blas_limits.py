"""BLAS's thread limits: the user's number followed process-wide, blocks that hold their own, and
an MLP's BLAS threads following the cores other processes leave free."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import layerwise as lw
import layerwise.train
from layerwise.kernels import blas_limits
from layerwise.kernels import threads as _threads


def _blas_limits() -> list[int]:
    return [lib.num_threads for lib in blas_limits._blas().lib_controllers]


@pytest.fixture
def two_threads(monkeypatch):
    """Two threads for layerwise, whatever the number of CPUs."""
    monkeypatch.setattr(_threads, "run_threads", lambda: (2, True))


def _fit_mlp_recording(monkeypatch, run_threads):
    """Train a 784-50-10 MLP one epoch under ``run_threads``; the BLAS limits and the Trainer's
    CoreShare seen at each step."""
    monkeypatch.setattr(layerwise.train, "run_threads", lambda: run_threads)
    model = lw.TwoLayerNet(784, 50, 10, seed=0)
    x, t = np.zeros((200, 784), np.float32), np.zeros(200, np.int64)
    trainer = lw.Trainer(model, lw.SGD(lr=0.1), x, t, epochs=1, progress=False, log=None)
    seen = []
    gradient = model.gradient
    monkeypatch.setattr(model, "gradient",
                        lambda *a: seen.append((_blas_limits(), trainer._core_share)) or gradient(*a))
    before = _blas_limits()
    trainer.fit()
    assert _blas_limits() == before and trainer._core_share is None and _threads._owned == 0
    return seen, trainer


def test_an_mlp_shares_blas_threads_when_they_were_left_to_layerwise(monkeypatch):
    # 100 x 50 activations are too small to split: BLAS splits the products, on the cores
    # other processes leave free.
    seen, trainer = _fit_mlp_recording(monkeypatch, (2, False))
    assert len(seen) == 2 and sum(trainer.shared_thread_steps.values()) == 2
    for limits, share in seen:
        assert isinstance(share, blas_limits.CoreShare) and share.threads == 2
        assert limits == [share.now] * len(limits)


def test_an_mlp_keeps_the_threads_the_user_fixed(monkeypatch):
    for threads in (1, 2):
        seen, trainer = _fit_mlp_recording(monkeypatch, (threads, True))
        assert not trainer.shared_thread_steps
        assert [share for _, share in seen] == [None, None]
        assert all(limits == [threads] * len(limits) for limits, _ in seen)


class FakeShare:
    """What other processes used, window by window, as CpuShare would report it."""

    def __init__(self, ncpus, others):
        self.ncpus, self._others = ncpus, list(others)

    def others(self):
        return self._others.pop(0)


def test_core_share_gives_cores_back_at_once_and_takes_them_after_two_free_windows():
    before = _blas_limits()
    # None: no window has passed yet. 1.1 busy cores of 2 leave one; 0.1 leave both.
    cores = blas_limits.CoreShare(2, FakeShare(2, [None, 0.1, 1.1, None, 0.9, 0.2, 1.0, 0.2, 0.1, 0.0, 2.0]))
    decisions = []
    with blas_limits.blas_limit(2):
        for _ in range(11):
            decisions.append(cores.check())
            assert _blas_limits() == [cores.now] * len(before)
    assert decisions == [2, 2, 1, 1, 1, 1, 1, 1, 2, 2, 1]
    assert _blas_limits() == before


def test_core_share_never_goes_below_one_or_above_its_threads():
    cores = blas_limits.CoreShare(2, FakeShare(8, [7.9, 0.0, 0.0, 0.0]))
    with blas_limits.blas_limit(2):
        assert [cores.check() for _ in range(4)] == [1, 1, 2, 2]


def test_share_cores_starts_where_the_last_block_left_off(monkeypatch):
    monkeypatch.setattr(blas_limits, "_shared", None)
    before = _blas_limits()
    with blas_limits.share_cores(2) as cores:
        assert _blas_limits() == [2] * len(before)
        cores.share = FakeShare(2, [1.0])
        assert cores.check() == 1
    assert _blas_limits() == before
    with blas_limits.share_cores(2) as again:  # the next fit() under the same load
        assert again is cores and _blas_limits() == [1] * len(before)
    with blas_limits.share_cores(3) as other:  # another thread count: decided afresh
        assert other is not cores and other.now == 3


def _blas_inside_affine(monkeypatch) -> list[int]:
    """Where an Affine layer's product runs, the BLAS limit it sees, call by call."""
    seen: list[int] = []
    forward = lw.Affine.forward

    def probe(self, x, *args, **kwargs):
        seen.append(blas_limits.blas_threads())
        return forward(self, x, *args, **kwargs)

    monkeypatch.setattr(lw.Affine, "forward", probe)
    return seen


@pytest.mark.parametrize("batch", [1, 5, 100])
def test_set_num_threads_limits_blas_in_a_whole_batch_prediction_until_unset(monkeypatch, batch):
    """Regression: predict of a batch run whole (no chunks) ran its products on every BLAS
    thread after set_num_threads(1); only the Trainer's plans and predict's chunks limited BLAS."""
    net = lw.TwoLayerNet(784, 50, 10, seed=0)
    x = np.random.default_rng(0).random((batch, 784), dtype=np.float32)
    seen = _blas_inside_affine(monkeypatch)
    with threadpool_limits(limits=2):
        before = blas_limits.blas_threads()
        if before < 2:
            pytest.skip("BLAS runs on one thread on this machine: nothing to limit")
        lw.set_num_threads(1)
        net.predict(x)
        assert seen == [1, 1] and _blas_limits() == [1] * len(_blas_limits())
        lw.set_num_threads(2)
        net.predict(x)
        assert seen[2:] == [2, 2]
        lw.set_num_threads(None)  # the limits before the first number come back
        assert blas_limits.blas_threads() == before
        net.predict(x)
        assert seen[4:] == [before, before]


def test_nested_blocks_on_one_thread_restore_blas_when_the_outermost_ends(monkeypatch):
    # On one thread owned_threads does not count itself as owning (no split), so a predict
    # inside a training enters it again: each block restores its own limits.
    monkeypatch.setattr(_threads, "run_threads", lambda: (1, True))
    with threadpool_limits(limits=2):
        before = _blas_limits()
        with _threads.owned_threads():
            with _threads.owned_threads() as inner:
                assert inner == 1 and _blas_limits() == [1] * len(before)
            assert _blas_limits() == [1] * len(before)
        assert _blas_limits() == before


@pytest.mark.parametrize("block", ["owned_threads", "blas1 plan", "share_cores"])
def test_a_number_set_while_a_block_holds_blas_applies_when_it_ends(two_threads, block):
    """Regression: set_num_threads on another thread while a training held BLAS at one
    thread (owning the threads, the "blas1" plan, or sharing cores under load) recorded that 1
    as the limits before, so unsetting the number left BLAS on one thread for good; and BLAS
    ran on the user's number while layerwise split the work."""
    holds = {"owned_threads": _threads.owned_threads, "blas1 plan": lambda: blas_limits.blas_limit(1),
             "share_cores": lambda: blas_limits.share_cores(1)}[block]
    with threadpool_limits(limits=2):
        before = blas_limits.blas_threads()
        if before < 2:
            pytest.skip("BLAS runs on one thread on this machine: nothing to limit")
        ones = [1] * len(_blas_limits())
        try:
            with holds():
                setter = threading.Thread(target=lw.set_num_threads, args=(2,))
                setter.start()
                setter.join()
                assert _blas_limits() == ones  # deferred: the block keeps BLAS on one thread
                lw.set_num_threads(1)  # the last number set is the one applied
            assert _blas_limits() == ones  # the user's number, applied as the block ended
        finally:
            lw.set_num_threads(None)
        assert blas_limits.blas_threads() == before  # not the block's 1


def test_the_variable_limits_blas_from_the_start(tmp_path):
    """LAYERWISE_THREADS=1 holds for BLAS from import on, in a process of its own."""
    code = (
        "import numpy as np, layerwise as lw\n"
        "from threadpoolctl import threadpool_info\n"
        "forward = lw.Affine.forward\n"
        "seen = []\n"
        "def probe(self, x, *a, **k):\n"
        "    seen.append(max(i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas'))\n"
        "    return forward(self, x, *a, **k)\n"
        "lw.Affine.forward = probe\n"
        "lw.TwoLayerNet(784, 50, 10, seed=0).predict(np.ones((5, 784), np.float32))\n"
        "print(seen)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    result = subprocess.run([sys.executable, "-c", code], env={**env, "LAYERWISE_THREADS": "1"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[1, 1]"


def test_a_bad_variable_does_not_stop_the_import():
    """A bad LAYERWISE_THREADS is named where the number is asked for, not at import."""
    code = "import layerwise as lw\ntry:\n    lw.get_num_threads()\nexcept ValueError as e:\n    print(e)\n"
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "LAYERWISE_THREADS": "lots"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "LAYERWISE_THREADS must be a whole number of threads" in result.stdout

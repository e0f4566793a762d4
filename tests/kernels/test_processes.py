"""Worker processes for a training step's parts (kernels.processes): the shared block's layout,
starting and stopping real workers, and every way a worker can fail, each a WorkerLost that
says which worker and why, with the pool closed after it."""

import os
import signal
import time

import numpy as np
import pytest

from layerwise.kernels import processes
from layerwise.kernels.processes import Layout, PartProcesses, WorkerLost

pytestmark = pytest.mark.skipif(not processes.supported(), reason="worker processes need POSIX")


def net_spec():
    """A small network's setup message, as models.batch_parts makes it."""
    from layerwise.layers import Affine, Relu
    from layerwise.models import Sequential
    from layerwise.models.batch_parts import layer_configs

    model = Sequential([Affine(np.ones((3, 4)), np.zeros(4)), Relu(), Affine(np.ones((4, 2)), np.zeros(2))])
    arrays = {f"param {name}": (p.shape, p.dtype) for name, p in model.params.items()}
    arrays |= {"x 0": ((5, 3), np.float64), "t 0": ((5,), np.int64)}
    arrays |= {f"grad 0 {name}": (p.shape, p.dtype) for name, p in model.params.items()}
    spec = {"key": "k", "rows": 5, "config": model.config(), "dtype": "float64", "layers": layer_configs(model)}
    return model, spec, Layout.of(arrays)


def test_the_layout_aligns_every_array_and_views_them_in_place():
    layout = Layout.of({"a": ((3,), np.float32), "b": ((2, 5), np.float64), "c": ((0,), np.int64),
                        "d": ((7,), np.uint8)})
    offsets = [offset for offset, _, _ in layout.places.values()]
    assert offsets == [0, 64, 192, 192] and all(o % processes.ALIGN == 0 for o in offsets)
    assert layout.size == 256
    block = bytearray(layout.size)
    views = layout.views(block)
    assert views["b"].shape == (2, 5) and views["b"].dtype == np.float64
    views["b"][1, 4] = 2.5
    assert np.frombuffer(block, np.float64, 1, 64 + 9 * 8)[0] == 2.5  # the view is the block
    assert Layout.of({}).size == processes.ALIGN  # an empty block is still a block to map


def test_a_pool_sets_its_workers_up_answers_and_leaves_no_file_or_process_behind():
    model, spec, layout = net_spec()
    folder = processes.SHARED_FOLDER if os.path.isdir(processes.SHARED_FOLDER) else None
    before = set(os.listdir(folder)) if folder else set()
    pool = PartProcesses(2)
    try:
        pool.setup(spec, layout)
        if folder:  # unlinked once mapped: nothing is left if either side dies
            assert {f for f in os.listdir(folder) if f.startswith("layerwise-parts-")} <= before
        for name, (layer, key) in model._param_slots.items():
            pool.views[f"param {name}"][...] = layer.params[key]
        pool.views["x 0"][:4] = np.arange(12.0).reshape(4, 3)
        pool.views["t 0"][:4] = [0, 1, 1, 0]
        pool.send(0, ("step", (0, 4, 0.5, [], None, np.geterr())))
        loss = pool.receive(0)
        expected = model.gradient(np.arange(12.0).reshape(4, 3), np.array([0, 1, 1, 0]))
        assert loss == pytest.approx(model.loss_layer.loss)
        for name, g in expected.items():
            np.testing.assert_allclose(pool.views[f"grad 0 {name}"], 0.5 * g)
        pool.send(1, ("peak_rss", None))
        assert pool.receive(1) > 1 << 20
        workers = [process for process, _ in pool._workers]
    finally:
        pool.close()
    assert 1 << 20 < processes.largest_worker_peak() < 1 << 30  # its own peak, reported as it stopped
    assert pool.closed and all(process.poll() is not None for process in workers)
    pool.close()  # twice: nothing more to do


def test_a_worker_killed_is_a_worker_lost_naming_the_signal():
    pool = PartProcesses(1)
    process = pool._workers[0][0]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with pytest.raises(WorkerLost, match=r"worker process 1 of 1 stopped \(killed by signal 9\)"):
        pool.send(0, ("peak_rss", None))
        pool.receive(0)
    assert pool.closed


def test_a_worker_that_fails_its_part_sends_its_traceback():
    pool = PartProcesses(1)
    pool.send(0, ("step", (0, 1, 1.0, [], None, {})))
    with pytest.raises(WorkerLost, match=r"(?s)failed:.*RuntimeError: a step before any setup"):
        pool.receive(0)
    assert pool.closed


def test_a_setup_the_worker_cannot_build_is_a_worker_lost():
    _, spec, layout = net_spec()
    spec["layers"] = spec["layers"][:1]  # as if the trainer's network differed from its config
    pool = PartProcesses(1)
    with pytest.raises(WorkerLost, match="rebuilt from its config differs"):
        pool.setup(spec, layout)
    assert pool.closed


def test_a_worker_that_hangs_is_given_up_on(monkeypatch):
    pool = PartProcesses(1)
    started = time.perf_counter()
    with pytest.raises(WorkerLost, match=r"gave no answer within 0\.2 s"):
        pool.receive(0, timeout=0.2)  # asked nothing: it never answers
    assert time.perf_counter() - started < 10
    assert pool.closed


def test_a_worker_that_cannot_start_is_a_worker_lost(monkeypatch):
    monkeypatch.setattr(processes, "WORKER_MODULE", "layerwise.no_such_module")
    _, spec, layout = net_spec()
    pool = PartProcesses(1)
    with pytest.raises(WorkerLost, match=r"stopped \(exit status 1\)"):
        pool.setup(spec, layout)


def test_the_plan_block_holds_its_pool_and_closes_it():
    assert processes.active() == (0, None)
    with processes.processes_plan(2) as parts:
        assert parts == 2 and processes.active() == (2, None)
        pool = processes.start_pool(1)
        with processes.processes_plan(3) as inner:  # nested: the outer block's
            assert inner == 2 and processes.active() == (2, pool)
        assert processes.active() == (2, pool) and not pool.closed
        processes.forget_pool()  # a lost pool: the block goes on without processes
        assert processes.active() == (-1, None)
    assert processes.active() == (0, None)
    pool.close()
    with processes.processes_plan(2):
        pool = processes.start_pool(1)
    assert pool.closed
    with pytest.raises(RuntimeError, match="outside processes_plan"):
        processes.start_pool(1)


def test_a_worker_imports_the_layerwise_its_trainer_imported(monkeypatch):
    # A script that put a source tree on sys.path itself (no install) must get workers from it.
    import subprocess
    from pathlib import Path

    import layerwise

    started = []

    class Recorded(subprocess.Popen):
        def __init__(self, args, **kwargs):
            started.append(kwargs["env"]["PYTHONPATH"])
            super().__init__(args, **kwargs)

    monkeypatch.setattr(processes.subprocess, "Popen", Recorded)
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    pool = PartProcesses(1)
    pool.close()
    root = str(Path(layerwise.__file__).resolve().parents[1])
    assert started == [f"{root}{os.pathsep}/somewhere/else"]

"""The worker process's side of the "processes" plan (models.part_worker): its message loop,
run here over a socket pair, and a learner's script without a main guard training with it."""

import mmap
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
from multiprocessing.connection import Connection

import numpy as np
import pytest

import layerwise as lw
from layerwise.kernels.processes import Layout
from layerwise.layers import Affine, Dropout, Relu
from layerwise.models import Sequential
from layerwise.models.batch_parts import layer_configs
from layerwise.models.part_worker import serve

needs_processes = pytest.mark.skipif(not lw.kernels.processes.supported(), reason="worker processes need POSIX")


@pytest.fixture
def worker():
    """A connection to ``serve`` running on a thread of this process; stopped at the end."""
    ours, theirs = socket.socketpair()
    connection = Connection(ours.detach())
    loop = threading.Thread(target=serve, args=(Connection(theirs.detach()),), daemon=True)
    loop.start()

    def ask(*message):
        connection.send(message)
        assert connection.poll(30)
        return connection.recv()

    yield ask
    connection.send(("stop", None))
    loop.join(10)
    assert not loop.is_alive()


def network():
    rng = np.random.default_rng(0)
    return Sequential([Affine(rng.standard_normal((4, 6)), rng.standard_normal(6)), Relu(), Dropout(0.5, seed=3),
                       Affine(rng.standard_normal((6, 3)), rng.standard_normal(3))], weight_decay_lambda=0.1)


def shared_block(model, rows):
    arrays = {f"param {name}": (p.shape, p.dtype) for name, p in model.params.items()}
    arrays |= {"x 0": ((rows, 4), np.float64), "t 0": ((rows,), np.int64)}
    arrays |= {f"grad 0 {name}": (p.shape, p.dtype) for name, p in model.params.items()}
    layout = Layout.of(arrays)
    handle, path = tempfile.mkstemp()
    os.ftruncate(handle, layout.size)
    block = mmap.mmap(handle, layout.size)
    os.close(handle)
    return path, layout, layout.views(block)


def test_the_worker_computes_its_part_with_the_trainers_weights_and_draws(worker, tmp_path):
    model = network()
    path, layout, views = shared_block(model, 5)
    spec = {"config": model.config(), "dtype": "float64", "layers": layer_configs(model)}
    try:
        assert worker("setup", spec, path, layout) == ("ok", None)
    finally:
        os.unlink(path)
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    for _ in range(3):
        for name, p in model.params.items():
            p *= 1.5  # the trainer's weights change between steps ...
            views[f"param {name}"][...] = p  # ... and it copies them into the block
        views["x 0"][:4], views["t 0"][:4] = x[:4], t[:4]
        state = model._layers[2].rng.bit_generator.state
        kind, loss = worker("step", (0, 4, 0.25, [state], None, np.geterr()))
        expected = model.gradient(x[:4], t[:4])  # the same draws: the generator's state was sent
        assert kind == "ok" and loss == pytest.approx(model.loss_layer.loss, rel=1e-14)
        for name, g in expected.items():
            np.testing.assert_allclose(views[f"grad 0 {name}"], 0.25 * g, rtol=1e-14, err_msg=name)
    kind, peak = worker("peak_rss", None)
    assert kind == "ok" and peak > 1 << 20


def test_the_worker_handles_floating_point_errors_as_the_trainer_does(worker, recwarn):
    model = network()
    path, layout, views = shared_block(model, 2)
    spec = {"config": model.config(), "dtype": "float64", "layers": layer_configs(model)}
    worker("setup", spec, path, layout)
    os.unlink(path)
    for name, p in model.params.items():
        views[f"param {name}"][...] = p * 1e300  # a diverged copy: its products overflow
    views["x 0"][:2], views["t 0"][:2] = np.ones((2, 4)), [0, 1]
    state = model._layers[2].rng.bit_generator.state
    kind, _ = worker("step", (0, 2, 1.0, [state], None, {"over": "ignore", "invalid": "ignore"}))
    assert kind == "ok" and not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    kind, text = worker("step", (0, 2, 1.0, [state], None, {"over": "raise", "invalid": "raise"}))
    assert kind == "error" and "FloatingPointError" in text


def test_the_worker_answers_what_it_cannot_do_and_goes_on(worker):
    kind, text = worker("step", (0, 1, 1.0, [], None, {}))
    assert kind == "error" and "a step before any setup" in text
    kind, text = worker("dance", None)
    assert kind == "error" and "unknown message 'dance'" in text
    model = network()
    path, layout, _ = shared_block(model, 2)
    spec = {"config": model.config(), "dtype": "float64", "layers": layer_configs(model)[:2]}
    kind, text = worker("setup", spec, path, layout)
    os.unlink(path)
    assert kind == "error" and "the network rebuilt from its config differs" in text
    assert worker("peak_rss", None)[0] == "ok"  # still serving


def test_the_worker_ends_when_the_trainer_goes():
    ours, theirs = socket.socketpair()
    loop = threading.Thread(target=serve, args=(Connection(theirs.detach()),), daemon=True)
    loop.start()
    ours.close()  # the trainer gone without a word
    loop.join(10)
    assert not loop.is_alive()


@needs_processes
def test_a_script_without_a_main_guard_trains_once_on_the_processes_plan(tmp_path):
    # multiprocessing's "spawn" would run the script again in each worker; layerwise's workers
    # start as ``python -m layerwise.models.part_worker`` and never import the script.
    script = tmp_path / "train_convnet.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        import layerwise as lw
        from layerwise.kernels import processes
        from layerwise.kernels.tuning import ThreadPlan

        start = processes.start_pool
        processes.start_pool = lambda count: print("workers", count, flush=True) or start(count)
        print("script ran", flush=True)
        rng = np.random.default_rng(0)
        x, t = rng.random((60, 1, 12, 12)), rng.integers(0, 10, 60)
        model = lw.SimpleConvNet((1, 12, 12), {"filter_num": 4, "filter_size": 3, "pad": 0, "stride": 1}, 10, 10,
                                 seed=0)
        trainer = lw.Trainer(model, lw.Adam(lr=1e-3), x, t, epochs=1, batch_size=20, progress=False, log=None)
        trainer.thread_plan = ThreadPlan("processes", 2, "kept from the checkpoint")
        trainer.fit()
        print("trained", trainer.thread_plan.plan, len(trainer.history.step_loss), flush=True)
    """))
    env = {**os.environ, "LAYERWISE_THREADS": "2", "LAYERWISE_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-W", "error::RuntimeWarning", str(script)], capture_output=True,
                          text=True, timeout=120, env=env, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["script ran", "workers 1", "trained processes 3"]

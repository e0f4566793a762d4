"""A training step's batch in parts, one per owned thread (models.batch_parts): the same
gradient, loss and Dropout masks as the whole batch, to float rounding."""

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layerwise as lw
import layerwise.train
from layerwise.gradcheck import relative_error
from layerwise.kernels import threads
from layerwise.layers import Affine, BatchNormalization, Convolution, Dropout, MeanSquaredError, Pooling, Relu
from layerwise.models import Sequential
from layerwise.models.batch_parts import _replica, gradient, splittable


@pytest.fixture
def two_threads(monkeypatch):
    """Two threads for layerwise, whatever the number of CPUs (only the speed differs)."""
    monkeypatch.setattr(threads, "run_threads", lambda: (2, True))


def convnet(seed=0, dropout="inverted", decay=0.0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return Sequential([
        Convolution(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), pad=1), Relu(),
        Pooling(2, 2, stride=2), Affine(rng.standard_normal((3 * 3 * 3, 5)), rng.standard_normal(5)), Relu(),
        Dropout(0.4, mode=dropout, seed=seed), Affine(rng.standard_normal((5, 4)), rng.standard_normal(4)),
    ], weight_decay_lambda=decay).astype(dtype)


def batch(n, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 2, 6, 6)), rng.integers(0, 4, n)


def mlp_with_two_dropouts():
    """A float32 MLP with squared error, weight decay and two Dropouts of either mode."""
    r = np.random.default_rng(7)
    return Sequential([
        Affine(r.standard_normal((6, 8)), r.standard_normal(8)), Relu(), Dropout(0.3, seed=1),
        Affine(r.standard_normal((8, 8)), r.standard_normal(8)), Relu(), Dropout(0.5, mode="book", seed=2),
        Affine(r.standard_normal((8, 3)), r.standard_normal(3)),
    ], loss=MeanSquaredError(), weight_decay_lambda=0.01).astype(np.float32)


def rng_states(model):
    return [la.rng.bit_generator.state for la in model if isinstance(la, Dropout)]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(2, 9), seed=st.integers(0, 2**16), dropout=st.sampled_from(["inverted", "book"]),
       decay=st.sampled_from([0.0, 0.1]))
def test_the_batch_in_parts_gives_the_whole_batchs_gradient_loss_and_masks(two_threads, n, seed, dropout, decay):
    whole, parts = convnet(seed, dropout, decay), convnet(seed, dropout, decay)
    x, t = batch(n, seed)
    expected = whole.gradient(x, t)
    with threads.split_batches() as count:
        got = gradient(parts, x, t)
    assert count == 2 and splittable(parts)
    assert parts.loss_layer.loss == pytest.approx(whole.loss_layer.loss, rel=1e-13)
    for name, g in expected.items():
        np.testing.assert_allclose(got[name], g, rtol=1e-12, atol=1e-14, err_msg=name)
        assert parts.grads[name] is got[name]  # the model's own grads, as model.gradient leaves them
    assert rng_states(parts) == rng_states(whole)  # the same draws: the same masks, and the same next ones
    dropped = next(la for la in parts if isinstance(la, Dropout))
    np.testing.assert_array_equal(dropped.mask, next(la for la in whole if isinstance(la, Dropout)).mask[: n // 2])


@pytest.mark.parametrize("parts", [2, 3])
def test_one_hot_labels_squared_error_float32_two_dropouts_and_more_parts(monkeypatch, parts):
    monkeypatch.setattr(threads, "run_threads", lambda: (parts, True))
    rng = np.random.default_rng(parts)

    x = rng.standard_normal((11, 6)).astype(np.float32)
    t = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 11)]  # one-hot rows
    whole, cut = mlp_with_two_dropouts(), mlp_with_two_dropouts()
    expected = whole.gradient(x, t)
    with threads.split_batches() as count:
        got = gradient(cut, x, t)
    assert count == parts
    assert cut.loss_layer.loss == pytest.approx(whole.loss_layer.loss, rel=1e-5)
    for name, g in expected.items():
        assert got[name].dtype == np.float32
        np.testing.assert_allclose(got[name], g, rtol=1e-4, atol=1e-6, err_msg=name)
    assert rng_states(cut) == rng_states(whole)


def test_the_split_gradient_passes_the_gradient_check(two_threads):
    model = convnet(3, decay=0.05)
    model._layers = [la for la in model if not isinstance(la, Dropout)]  # a fixed function to differentiate
    model._index_tensors()
    x, t = batch(5, 3)
    numerical = model.numerical_gradient(x, t)
    with threads.split_batches():
        analytic = gradient(model, x, t)
    for name, g in numerical.items():
        assert relative_error(analytic[name], g) < 1e-7, name


def test_replicas_share_the_weights_an_optimizer_updates(two_threads):
    whole, parts = convnet(4), convnet(4)
    sgd_whole, sgd_parts = lw.Adam(lr=0.01), lw.Adam(lr=0.01)
    for step in range(4):
        x, t = batch(8, step)
        sgd_whole.update(whole.params, whole.gradient(x, t))
        with threads.split_batches():
            sgd_parts.update(parts.params, gradient(parts, x, t))
    for name, w in whole.params.items():
        np.testing.assert_allclose(parts.params[name], w, rtol=1e-10, atol=1e-12, err_msg=name)


def test_what_cannot_be_cut_runs_whole(two_threads):
    rng = np.random.default_rng(0)
    norm = Sequential([Affine(rng.standard_normal((4, 3)), np.zeros(3)), BatchNormalization(np.ones(3), np.zeros(3))])
    x, t = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)

    class Custom(Relu):  # a layer layerwise knows nothing about may look at the whole batch
        pass

    custom = Sequential([Affine(rng.standard_normal((4, 3)), np.zeros(3)), Custom()])
    other_generator = convnet()
    next(la for la in other_generator if isinstance(la, Dropout)).rng = np.random.Generator(np.random.MT19937(0))
    philox = convnet()  # advance() moves Philox by blocks of 4 draws, not by draws
    next(la for la in philox if isinstance(la, Dropout)).rng = np.random.Generator(np.random.Philox(0))
    shared = np.random.default_rng(0)  # two layers drawing from one stream: parts cannot start mid-stream
    one_stream = Sequential([Affine(rng.standard_normal((4, 3)), np.zeros(3)), Dropout(0.5, seed=shared),
                             Dropout(0.5, seed=shared)])
    patched = convnet()
    patched.gradient = lambda x, t: Sequential.gradient(patched, x, t)  # a wrapper the replicas would not run
    for model in (norm, custom, other_generator, philox, one_stream, patched):
        assert not splittable(model)
    for model, data in ((norm, (x, t)), (custom, (x, t)), (convnet(), batch(1))):  # one sample: nothing to cut
        reference = copy.deepcopy(model).gradient(*data)
        with threads.split_batches():
            got = gradient(model, *data)
        for name, g in reference.items():
            np.testing.assert_array_equal(got[name], g)  # model.gradient itself: bit for bit


def test_a_one_dimensional_input_is_one_sample_and_is_not_cut(two_threads):
    # Regression: a 1-D input's squared error is a sum (one sample), not a mean over rows,
    # so the loss of two parts weighted by their sizes was half the whole's.
    model = Sequential([lw.layers.Sigmoid()], loss=MeanSquaredError())
    x, t = np.arange(6.0), np.zeros(6)
    whole = model.loss(x, t)
    with threads.split_batches():
        gradient(model, x, t)
    assert model.loss_layer.loss == whole


def test_a_replica_of_a_book_net_names_its_own_layers():
    # The book's nets compute through ``net.layers`` (an OrderedDict made once): a replica
    # whose OrderedDict still held the original's layers would run the model's own caches.
    net = lw.TwoLayerNet(4, 5, 3, seed=0)
    original = list(net.layers.values())  # made and kept on the model first
    replica = _replica(net, {})
    assert list(replica.layers.values()) == replica._layers
    assert not any(a is b for a, b in zip(replica.layers.values(), original, strict=True))
    assert list(net.layers.values()) == original


def test_without_the_split_plan_the_batch_is_whole(two_threads):
    model = convnet()
    with threads.owned_threads():
        assert threads.batch_parts() == 1
        reference = copy.deepcopy(model).gradient(*batch(6))
        got = gradient(model, *batch(6))
    for name, g in reference.items():
        np.testing.assert_array_equal(got[name], g)


def test_a_trainer_on_the_split_plan_trains_as_on_one_thread(monkeypatch, tmp_path):
    monkeypatch.setenv("LAYERWISE_TUNING", "0")
    monkeypatch.setenv("LAYERWISE_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    x, t = rng.random((100, 1, 20, 20)), rng.integers(0, 10, 100)  # activations worth splitting

    submitted = []
    pool = threads._pool()
    submit = pool.submit
    monkeypatch.setattr(pool, "submit", lambda fn, *a: submitted.append(fn) or submit(fn, *a))

    def run(threads_):
        for module in (threads, layerwise.train):
            monkeypatch.setattr(module, "run_threads", lambda: (threads_, True))
        model = lw.SimpleConvNet((1, 20, 20), {"filter_num": 8, "filter_size": 3, "pad": 0, "stride": 1}, 20, 10,
                                 seed=0, dtype=np.float64)
        trainer = lw.Trainer(model, lw.Adam(lr=1e-3), x, t, epochs=2, batch_size=50, progress=False, log=None)
        trainer.fit()
        return trainer

    one = run(1)
    assert not submitted
    two = run(2)
    assert (one.thread_plan.plan, two.thread_plan.plan) == ("blas", "split")
    assert len(submitted) >= 4  # a part on the pool in each of the 4 steps
    np.testing.assert_allclose(two.history.step_loss, one.history.step_loss, rtol=1e-10)


def test_a_kept_split_plan_for_a_model_that_cannot_be_cut_runs_owned(monkeypatch):
    monkeypatch.setattr(layerwise.train, "run_threads", lambda: (2, True))
    model = convnet(dtype=np.float32)
    next(la for la in model if isinstance(la, Dropout)).rng = np.random.Generator(np.random.MT19937(0))
    x, t = batch(8)
    trainer = lw.Trainer(model, lw.SGD(), x, t, epochs=1, batch_size=4, progress=False, log=None)
    trainer.thread_plan = lw.kernels.tuning.ThreadPlan("split", 2, "kept from the checkpoint")
    plan = trainer.plan_threads()
    assert plan.plan == "owned" and plan.how == "kept from the checkpoint; this model cannot be split"


# -- the parts in worker processes (the "processes" plan) ------------------------------------

needs_processes = pytest.mark.skipif(not lw.kernels.processes.supported(), reason="worker processes need POSIX")


def cases(count):
    rng = np.random.default_rng(count)
    for _ in range(count):
        seed = int(rng.integers(2**16))
        yield (int(rng.integers(2, 10)), seed, str(rng.choice(["inverted", "book"])), float(rng.choice([0.0, 0.1])))


@needs_processes
def test_the_parts_in_processes_give_the_whole_batchs_gradient_loss_and_masks(two_threads):
    with lw.kernels.processes.processes_plan(2):  # one worker serves every case (set up anew for each)
        for n, seed, dropout, decay in cases(12):
            whole, parts = convnet(seed, dropout, decay), convnet(seed, dropout, decay)
            x, t = batch(n, seed)
            expected = whole.gradient(x, t)
            got = gradient(parts, x, t)
            assert lw.kernels.processes.active()[1] is not None  # still in processes: no worker lost
            assert parts.loss_layer.loss == pytest.approx(whole.loss_layer.loss, rel=1e-13)
            for name, g in expected.items():
                np.testing.assert_allclose(got[name], g, rtol=1e-12, atol=1e-14, err_msg=name)
                assert parts.grads[name] is got[name]
            assert rng_states(parts) == rng_states(whole)
            dropped = next(la for la in parts if isinstance(la, Dropout))
            whole_mask = next(la for la in whole if isinstance(la, Dropout)).mask
            np.testing.assert_array_equal(dropped.mask, whole_mask[: n // 2])  # the first part's, computed here


@needs_processes
def test_the_parts_in_processes_are_the_parts_on_threads(two_threads):
    model_threads, model_processes = convnet(5, dtype=np.float32), convnet(5, dtype=np.float32)
    x, t = batch(9, 5)
    with threads.split_batches():
        on_threads = gradient(model_threads, x, t)
    with lw.kernels.tuning.enter_plan("processes", 2):
        in_processes = gradient(model_processes, x, t)
    for name, g in on_threads.items():  # the same sums of the same parts (BLAS on one thread in both)
        np.testing.assert_allclose(in_processes[name], g, rtol=1e-6, atol=1e-7, err_msg=name)


@needs_processes
@pytest.mark.parametrize("parts", [2, 3])
def test_processes_with_one_hot_labels_squared_error_float32_and_two_dropouts(parts):
    rng = np.random.default_rng(parts)

    x = rng.standard_normal((11, 6)).astype(np.float32)
    t = np.eye(3, dtype=np.float32)[rng.integers(0, 3, 11)]
    whole, cut = mlp_with_two_dropouts(), mlp_with_two_dropouts()
    expected = whole.gradient(x, t)
    with lw.kernels.processes.processes_plan(parts):
        got = gradient(cut, x, t)
        assert len(lw.kernels.processes.active()[1]._workers) == parts - 1
    assert cut.loss_layer.loss == pytest.approx(whole.loss_layer.loss, rel=1e-5)
    for name, g in expected.items():
        assert got[name].dtype == np.float32
        np.testing.assert_allclose(got[name], g, rtol=1e-4, atol=1e-6, err_msg=name)
    assert rng_states(cut) == rng_states(whole)


@needs_processes
def test_the_gradient_in_processes_passes_the_gradient_check():
    model = convnet(3, decay=0.05)
    model._layers = [la for la in model if not isinstance(la, Dropout)]
    model._index_tensors()
    x, t = batch(5, 3)
    numerical = model.numerical_gradient(x, t)
    with lw.kernels.processes.processes_plan(2):
        analytic = gradient(model, x, t)
    for name, g in numerical.items():
        assert relative_error(analytic[name], g) < 1e-7, name


@needs_processes
def test_the_workers_see_every_update_of_the_weights_and_a_new_batch_size():
    whole, parts = convnet(4), convnet(4)
    adam_whole, adam_parts = lw.Adam(lr=0.01), lw.Adam(lr=0.01)
    with lw.kernels.processes.processes_plan(2):
        for step, n in enumerate([8, 8, 3, 12, 8]):  # smaller, then larger than the block was made for
            x, t = batch(n, step)
            adam_whole.update(whole.params, whole.gradient(x, t))
            adam_parts.update(parts.params, gradient(parts, x, t))
        parts.params["W1"][...] *= 0.5  # a change in place between steps reaches the workers too
        whole.params["W1"][...] *= 0.5
        x, t = batch(6, 9)
        expected, got = whole.gradient(x, t), gradient(parts, x, t)
        assert lw.kernels.processes.active()[1] is not None
    for name, w in whole.params.items():
        np.testing.assert_allclose(parts.params[name], w, rtol=1e-10, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-10, atol=1e-12, err_msg=name)


@needs_processes
def test_a_network_of_the_users_own_class_runs_its_batch_here():
    class MyNet(Sequential):  # its methods would not exist in a worker rebuilt from the config
        pass

    model = convnet()
    model.__class__ = MyNet
    assert splittable(model) and not lw.models.batch_parts.in_processes(model)
    reference = copy.deepcopy(model).gradient(*batch(6))
    with lw.kernels.processes.processes_plan(2):
        got = gradient(model, *batch(6))
        assert lw.kernels.processes.active() == (2, None)  # no worker started
    for name, g in reference.items():
        np.testing.assert_array_equal(got[name], g)


@needs_processes
def test_a_worker_that_dies_leaves_a_warning_and_the_same_numbers(two_threads):
    whole, parts = convnet(6), convnet(6)
    with lw.kernels.processes.processes_plan(2):
        x, t = batch(8, 0)
        whole.gradient(x, t), gradient(parts, x, t)
        worker = lw.kernels.processes.active()[1]._workers[0][0]
        worker.kill()
        worker.wait()
        for step in (1, 2):  # the step that finds it dead, and one after
            x, t = batch(8, step)
            expected = whole.gradient(x, t)
            if step == 1:
                with pytest.warns(RuntimeWarning, match=r"worker process 1 of 1 stopped \(killed by signal 9\); "
                                                        "training goes on with every part in this process"):
                    got = gradient(parts, x, t)
            else:
                got = gradient(parts, x, t)
            assert lw.kernels.processes.active() == (-1, None)
            for name, g in expected.items():
                np.testing.assert_allclose(got[name], g, rtol=1e-12, atol=1e-14, err_msg=name)
            assert rng_states(parts) == rng_states(whole)


@needs_processes
def test_workers_that_cannot_start_leave_a_warning_and_the_same_numbers(monkeypatch):
    monkeypatch.setattr(lw.kernels.processes, "WORKER_MODULE", "layerwise.no_such_module")
    whole, parts = convnet(2), convnet(2)
    x, t = batch(7, 2)
    with lw.kernels.processes.processes_plan(2), pytest.warns(RuntimeWarning, match=r"exit status 1"):
        got = gradient(parts, x, t)
    for name, g in whole.gradient(x, t).items():
        np.testing.assert_allclose(got[name], g, rtol=1e-12, atol=1e-14, err_msg=name)


@needs_processes
def test_a_trainer_on_the_processes_plan_trains_as_on_one_thread_and_stops_its_workers(monkeypatch, tmp_path):
    monkeypatch.setenv("LAYERWISE_TUNING", "0")
    monkeypatch.setenv("LAYERWISE_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(0)
    x, t = rng.random((100, 1, 20, 20)), rng.integers(0, 10, 100)
    pools = []
    start = lw.kernels.processes.start_pool
    monkeypatch.setattr(lw.kernels.processes, "start_pool", lambda count: pools.append(start(count)) or pools[-1])

    def run(threads_, plan=None):
        for module in (threads, layerwise.train):
            monkeypatch.setattr(module, "run_threads", lambda: (threads_, True))
        model = lw.SimpleConvNet((1, 20, 20), {"filter_num": 8, "filter_size": 3, "pad": 0, "stride": 1}, 20, 10,
                                 seed=0, dtype=np.float64)
        trainer = lw.Trainer(model, lw.Adam(lr=1e-3), x, t, epochs=2, batch_size=50, progress=False, log=None)
        if plan:
            trainer.thread_plan = lw.kernels.tuning.ThreadPlan(plan, threads_, "kept from the checkpoint")
        trainer.fit()
        return trainer

    one = run(1)
    two = run(2, "processes")
    assert two.thread_plan.plan == "processes" and len(pools) == 1
    assert pools[0].closed and all(process.poll() is not None for process, _ in pools[0]._workers)
    assert lw.kernels.processes.active() == (0, None)
    np.testing.assert_allclose(two.history.step_loss, one.history.step_loss, rtol=1e-10)


def test_a_kept_processes_plan_for_a_model_of_the_users_class_runs_its_parts_on_threads(monkeypatch):
    monkeypatch.setattr(layerwise.train, "run_threads", lambda: (2, True))

    class MyNet(Sequential):
        pass

    model = convnet(dtype=np.float32)
    model.__class__ = MyNet
    x, t = batch(8)
    trainer = lw.Trainer(model, lw.SGD(), x, t, epochs=1, batch_size=4, progress=False, log=None)
    trainer.thread_plan = lw.kernels.tuning.ThreadPlan("processes", 2, "kept from the checkpoint")
    plan = trainer.plan_threads()
    assert plan.plan == "split" and plan.how == "kept from the checkpoint; this model cannot run in processes"

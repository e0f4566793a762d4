"""Sequential: params as a live view, accuracy, predict in chunks, numerical gradients, weight files."""

import threading

import numpy as np
import pytest

import layerwise as lw
import layerwise.models.sequential
from layerwise import Affine, ReLU, SoftmaxWithLoss
from layerwise.errors import ShapeError
from layerwise.kernels import blas_limits
from layerwise.kernels.cache_sizes import inference_chunk_bytes
from layerwise.models import Sequential, TwoLayerNet


def data(n=7, d=5, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, c, n)


def _write(path, params):
    lw.io.save_book_params({"b1": np.zeros(5), "W2": np.zeros((5, 3)), "b2": np.zeros(3), **params}, path)
    return path


def test_params_is_a_live_view_non_inplace_update_still_trains():
    # The book's nets keep params and layers sharing arrays: `params[k] = params[k] - lr*g`
    # silently stops training. Here the assignment reaches the layer.
    x, t = data(n=50, seed=3)
    net = TwoLayerNet(5, 8, 3, weight_init_std=0.5, seed=0, dtype=np.float64)
    before = net.loss(x, t)
    for _ in range(50):
        grads = net.gradient(x, t)
        for key in grads:
            net.params[key] = net.params[key] - 0.5 * grads[key]
    assert net.layers["Affine1"].W is net.params["W1"] and net[0] is net.layers["Affine1"]
    assert net.loss(x, t) < before * 0.9


def test_params_assignment_checks_shape():
    net = TwoLayerNet(5, 4, 3)
    with pytest.raises(ShapeError, match="W1"):
        net.params["W1"] = np.zeros((4, 5))


def test_accuracy_counts_the_last_partial_batch():
    # The book's accuracy() drops the last partial batch but divides by N.
    net = Sequential([Affine(np.eye(3), np.zeros(3))])
    x = np.eye(3)[np.arange(25) % 3] * 5.0
    t = np.arange(25) % 3
    assert net.accuracy(x, t, batch_size=10) == 1.0
    assert net.accuracy(x, (t + 1) % 3, batch_size=10) == 0.0


def test_accuracy_accepts_one_hot_labels():
    net = Sequential([Affine(np.eye(3), np.zeros(3))])
    x = np.eye(3) * 2
    assert net.accuracy(x, np.eye(3)) == 1.0


def test_first_layer_skips_input_gradient():
    net = TwoLayerNet(5, 4, 3)
    assert net[0].needs_input_grad is False
    assert net[2].needs_input_grad is True


def test_float32_end_to_end():
    x, t = data()
    net = TwoLayerNet(5, 4, 3, seed=0, dtype=np.float32)
    assert net.dtype == np.float32
    grads = net.gradient(x.astype(np.float32), t)
    assert all(g.dtype == np.float32 for g in grads.values())
    assert net.predict(x).dtype == np.float32  # float64 input converted to the model's dtype


def test_load_state_dict_errors_name_the_tensor():
    net = TwoLayerNet(5, 4, 3)
    state = net.state_dict()
    state["W2"] = np.zeros((5, 5))
    with pytest.raises(ShapeError, match=r"W2.*\(5, 5\).*\(4, 3\)"):
        net.load_state_dict(state)
    with pytest.raises(ShapeError, match="missing"):
        net.load_state_dict({"W1": state["W1"]})


def test_sequential_default_loss_and_summary():
    net = Sequential([Affine(np.zeros((4, 2)), np.zeros(2)), ReLU()])
    assert isinstance(net.loss_layer, SoftmaxWithLoss)
    assert "Affine(4 -> 2" in net.summary((1, 4))


def test_eval_predict_runs_large_batches_in_chunks_with_the_same_scores(monkeypatch):
    import tracemalloc

    from layerwise.kernels import threads as _threads
    from layerwise.layers import Convolution

    monkeypatch.setattr(_threads, "run_threads", lambda: (1, True))  # chunks in order, on this thread

    model = lw.DeepConvNet(seed=0, dropout_mode="inverted", final_dropout=False, dtype=np.float32)
    chunk = model.inference_batch_size((1, 28, 28), 4)
    # Sized by the second convolution's input and output, 16·28·28 values each (its im2col is
    # made a few images at a time whatever the chunk).
    assert chunk == inference_chunk_bytes() // (2 * 16 * 28 * 28 * 4)
    x = np.random.default_rng(0).random((3 * chunk + 5, 1, 28, 28), dtype=np.float32)
    calls = []
    first = model.layers[0]
    original = first.forward
    first.forward = lambda x, train=True: calls.append(len(x)) or original(x, train)
    scores = model.predict(x)
    # Four near-equal chunks of at most `chunk`, in order (3·chunk + 5 rows on any cache size).
    assert len(calls) == 4 and sum(calls) == len(x) and max(calls) <= chunk and max(calls) - min(calls) <= 1
    one_by_one = np.concatenate([model.predict(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(scores, one_by_one, rtol=1e-5, atol=1e-5)
    calls.clear()
    # Training mode is one batch: backward needs the whole batch's caches.
    model.predict(x, train_flg=True)
    assert calls == [len(x)]
    first.forward = original
    # Memory stays bounded: unchunked, 1,000 images need a 431 MB im2col matrix.
    big = np.zeros((1000, 1, 28, 28), np.float32)
    tracemalloc.start()
    model.predict(big)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * 2**20
    assert isinstance(first, Convolution)


def test_inference_chunk_for_mlps_and_bad_shapes():
    model = lw.TwoLayerNet(784, 50, 10, seed=0)
    # The largest array forward makes is the hidden layer's (50 values a sample).
    assert model.inference_batch_size((784,), 4) == inference_chunk_bytes() // (50 * 4)
    with pytest.raises(lw.ShapeError, match="784"):
        model.predict(np.zeros((5000, 783), np.float32))


def test_eval_predict_runs_chunks_on_several_threads_with_the_same_scores(monkeypatch):
    from layerwise.kernels import threads as _threads

    # This machine's cache decides the sizes; these are the 2-core AMD VM's.
    monkeypatch.setattr(layerwise.models.sequential, "inference_chunk_bytes", lambda threads: 2**22 * min(threads, 2))
    model = lw.SimpleConvNet(seed=1, dtype=np.float32)
    x = np.random.default_rng(1).random((700, 1, 28, 28), dtype=np.float32)
    chunk = model.inference_batch_size((1, 28, 28), 4)
    on_threads = model.inference_batch_size((1, 28, 28), 4, threads=2)
    assert len(x) > 4 * chunk and 700 // 3 > on_threads > chunk  # several threads: longer chunks
    monkeypatch.setattr(_threads, "run_threads", lambda: (1, True))
    sizes = []
    original = model._forward
    monkeypatch.setattr(model, "_forward", lambda xb, *a: sizes.append(len(xb)) or original(xb, *a))
    sequential = model.predict(x)
    assert max(sizes) <= chunk and len(sizes) == -(-len(x) // chunk) and sum(sizes) == len(x)
    sizes.clear()
    threads_seen = set()
    two_threads_seen = threading.Event()

    def spy(xb, train_flg, layers=None):
        threads_seen.add(threading.get_ident())
        if len(threads_seen) >= 2:
            two_threads_seen.set()
        two_threads_seen.wait(timeout=10)  # the first part waits for a second thread to take one
        assert layers is not None and layers[0] is not model[0]  # each thread has its own caches
        assert layers[0].params is model[0].params  # ... and the same weights
        # BLAS on one thread while the chunks run in parallel.
        assert all(lib.num_threads == 1 for lib in blas_limits._blas().lib_controllers)
        sizes.append(len(xb))
        return original(xb, train_flg, layers)

    monkeypatch.setattr(_threads, "run_threads", lambda: (3, True))
    monkeypatch.setattr(model, "_forward", spy)
    parallel = model.predict(x)
    # Three equal parts of 233-234 images, each in chunks of at most `on_threads`, taken by
    # the calling thread and the shared pool's threads (on any number of CPUs).
    assert len(threads_seen) >= 2
    assert max(sizes) <= on_threads and sum(sizes) == len(x)
    assert len(sizes) == sum(-(-part // on_threads) for part in (233, 233, 234))
    np.testing.assert_allclose(parallel, sequential, rtol=1e-5, atol=1e-6)  # other chunk boundaries


def test_a_second_parallel_predict_runs_sequentially_and_leaves_blas_limits_alone(monkeypatch):
    # The BLAS limit is process-wide: while one predict holds it at 1, another must not record
    # that 1 as "the previous limit" (it would restore BLAS to one thread for good).
    import threading

    from layerwise.kernels import threads as _threads

    model = lw.SimpleConvNet(seed=2)
    x = np.random.default_rng(2).random((600, 1, 28, 28), dtype=np.float32)
    monkeypatch.setattr(_threads, "run_threads", lambda: (2, True))
    before = [lib.num_threads for lib in blas_limits._blas().lib_controllers]
    reference = model.predict(x)
    seen = set()
    original = model._forward
    monkeypatch.setattr(model, "_forward",
                        lambda xb, train, layers=None: seen.add(threading.get_ident()) or original(xb, train, layers))
    owner_inside, release = threading.Event(), threading.Event()

    def other_owner():  # another predict (or a Trainer) owning the threads meanwhile
        with _threads.owned_threads() as workers:
            assert workers == 2
            owner_inside.set()
            release.wait(30)

    owner = threading.Thread(target=other_owner)
    owner.start()
    assert owner_inside.wait(30)
    try:
        again = model.predict(x)
    finally:
        release.set()
        owner.join()
    assert seen == {threading.get_ident()}  # ran here, chunk by chunk
    np.testing.assert_allclose(again, reference, rtol=1e-5, atol=1e-6)  # other chunk boundaries
    assert [lib.num_threads for lib in blas_limits._blas().lib_controllers] == before


def test_numerical_gradient_is_float64_for_a_float32_net():
    x, t = data(n=4, d=6)
    net = lw.TwoLayerNet(6, 5, 3, weight_init_std=0.5, seed=0, dtype=np.float32)
    before = {k: v.copy() for k, v in net.params.items()}
    numerical = net.numerical_gradient(x, t)
    assert all(g.dtype == np.float64 for g in numerical.values())
    assert net.dtype == np.float32  # the net itself is untouched
    for k in before:
        np.testing.assert_array_equal(net.params[k], before[k])
    twin = lw.TwoLayerNet(6, 5, 3, weight_init_std=0.5, seed=0)  # the same weights, in float64
    expected = twin.numerical_gradient(x, t)
    analytic = twin.gradient(x, t)
    for k in numerical:
        # float64 differences of float32-rounded weights: as close to the float64 twin's
        # analytic gradient as float32 weights allow, far closer than float32 differences.
        np.testing.assert_allclose(numerical[k], expected[k], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(expected[k], analytic[k], rtol=1e-6, atol=1e-9)


def test_save_params_and_load_params_round_trip(tmp_path):
    net = lw.MultiLayerNetExtend(6, [5], 3, use_batchnorm=True, seed=0)
    x, t = data(n=8, d=6)
    net.gradient(x, t)  # moves the running statistics
    path = tmp_path / "params.pkl"
    net.save_params(path)
    other = lw.MultiLayerNetExtend(6, [5], 3, use_batchnorm=True, seed=1)
    other.load_params(path)
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[name], value)
    np.testing.assert_array_equal(other.predict(x), net.predict(x))
    # A book file holds parameters only: buffers the file lacks keep their values.
    params_only = tmp_path / "book.pkl"
    lw.io.save_book_params(dict(net.params), params_only)
    lw.MultiLayerNetExtend(6, [5], 3, use_batchnorm=True, seed=1).load_params(params_only)
    with pytest.raises(ShapeError, match=r"wrong\.pkl.*W1"):
        lw.TwoLayerNet(6, 5, 3).load_params(_write(tmp_path / "wrong.pkl", {"W1": np.zeros((2, 2))}))


def test_load_params_refuses_a_pickle_that_would_run_code(tmp_path):
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'ran'}",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"W1": Evil()}))
    with pytest.raises(lw.UnsafePickleError, match=r"evil\.pkl"):
        lw.TwoLayerNet(6, 5, 3).load_params(path)
    assert not (tmp_path / "ran").exists()

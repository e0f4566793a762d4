"""Sequential and the book's nets: gradients, naming, the book's defects not repeated."""

import numpy as np
import pytest

import layerwise as lw
from layerwise import Affine, ReLU, Sigmoid, SoftmaxWithLoss
from layerwise.errors import ShapeError
from layerwise.gradcheck import check_model
from layerwise.models import MultiLayerNet, Sequential, TwoLayerNet, build_model


def data(n=7, d=5, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, c, n)


def test_two_layer_net_book_api_and_gradients():
    x, t = data()
    net = TwoLayerNet(5, 4, 3, weight_init_std=1.0, seed=1, dtype=np.float64)
    assert list(net.params) == ["W1", "b1", "W2", "b2"]
    assert net.params["W1"].shape == (5, 4) and net.params["b2"].shape == (3,)
    grads = net.gradient(x, t)
    numerical = net.numerical_gradient(x, t)
    for key in grads:
        np.testing.assert_allclose(grads[key], numerical[key], rtol=1e-6, atol=1e-9)
    assert max(check_model(net, x, t).values()) < 1e-7
    assert 0 <= net.accuracy(x, t) <= 1
    assert net.predict(x).shape == (7, 3)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("decay", [0.0, 0.1])
def test_multilayer_net_gradients(activation, decay):
    x, t = data()
    net = MultiLayerNet(5, [6, 4], 3, activation=activation, weight_init_std=activation,
                        weight_decay_lambda=decay, seed=2, dtype=np.float64)
    assert list(net.params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert max(check_model(net, x, t).values()) < 1e-7


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


def test_config_round_trip_and_state_dict():
    net = MultiLayerNet(5, [6], 3, seed=0)
    clone = build_model(net.config(), dtype=net.dtype)
    clone.load_state_dict(net.state_dict())
    x, _ = data()
    np.testing.assert_array_equal(clone.predict(x), net.predict(x))
    seq = Sequential([Affine(np.ones((5, 2)), np.zeros(2)), Sigmoid(), Affine(np.ones((2, 3)), np.zeros(3))])
    clone = build_model(seq.config(), dtype=np.float64)
    clone.load_state_dict(seq.state_dict())
    np.testing.assert_allclose(clone.predict(x), seq.predict(x), rtol=1e-6)


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


def test_deep_convnet_book_layout_and_final_dropout_option():
    from layerwise.models import DeepConvNet

    book = DeepConvNet(seed=0)
    names = [type(la).__name__ for la in book.layers]
    assert names[-2:] == ["Affine", "Dropout"] and names.count("Convolution") == 6
    assert [f"W{i}" for i in range(1, 9)] == [k for k in book.params if k.startswith("W")]
    lean = DeepConvNet(seed=0, final_dropout=False, dropout_mode="inverted")
    assert type(lean.layers[-1]).__name__ == "Affine"
    rebuilt = build_model(lean.config())
    assert [type(la).__name__ for la in rebuilt.layers] == [type(la).__name__ for la in lean.layers]


def test_eval_predict_runs_large_batches_in_chunks_with_the_same_scores(monkeypatch):
    import tracemalloc

    from layerwise import _threads
    from layerwise.layers import Convolution

    monkeypatch.setattr(_threads, "blas_threads", lambda: 1)  # chunks in order, on this thread

    model = lw.DeepConvNet(seed=0, dropout_mode="inverted", final_dropout=False, dtype=np.float32)
    chunk = model.inference_batch_size((1, 28, 28), 4)
    # The largest temporary is the second convolution's im2col: 28·28 rows of 16·3·3 values.
    assert chunk == model.inference_chunk_bytes // (28 * 28 * 16 * 9 * 4)
    x = np.random.default_rng(0).random((3 * chunk + 5, 1, 28, 28), dtype=np.float32)
    calls = []
    first = model.layers[0]
    original = first.forward
    first.forward = lambda x, train=True: calls.append(len(x)) or original(x, train)
    scores = model.predict(x)
    assert calls == [chunk, chunk, chunk, 5]
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
    assert model.inference_batch_size((784,), 4) == model.inference_chunk_bytes // (50 * 4)
    with pytest.raises(lw.ShapeError, match="784"):
        model.predict(np.zeros((5000, 783), np.float32))


def test_eval_predict_runs_chunks_on_several_threads_with_the_same_scores(monkeypatch):
    from layerwise import _threads

    model = lw.SimpleConvNet(seed=1, dtype=np.float32)
    x = np.random.default_rng(1).random((700, 1, 28, 28), dtype=np.float32)
    chunk = model.inference_batch_size((1, 28, 28), 4)
    assert len(x) > 4 * chunk
    monkeypatch.setattr(_threads, "blas_threads", lambda: 1)
    sequential = model.predict(x)
    threads_seen = set()
    original = model._forward

    def spy(xb, train_flg, layers=None):
        import threading

        threads_seen.add(threading.get_ident())
        assert layers is not None and layers[0] is not model[0]  # each thread has its own caches
        assert layers[0].params is model[0].params  # ... and the same weights
        # BLAS on one thread while the chunks run in parallel.
        assert all(lib.num_threads == 1 for lib in _threads._blas().lib_controllers)
        return original(xb, train_flg, layers)

    monkeypatch.setattr(_threads, "blas_threads", lambda: 3)
    monkeypatch.setattr(model, "_forward", spy)
    parallel = model.predict(x)
    # Three equal parts of 233-234 images, each in chunks of at most `chunk`, on the shared
    # pool's threads (as many as the machine has CPUs, so 2 or more here and in CI).
    assert len(threads_seen) >= min(2, __import__("os").cpu_count())
    assert all(threading_id != __import__("threading").get_ident() for threading_id in threads_seen)
    np.testing.assert_allclose(parallel, sequential, rtol=1e-5, atol=1e-6)  # other chunk boundaries


def test_a_second_parallel_predict_runs_sequentially_and_leaves_blas_limits_alone(monkeypatch):
    # The BLAS limit is process-wide: while one predict holds it at 1, another must not record
    # that 1 as "the previous limit" (it would restore BLAS to one thread for good).
    import threading

    from layerwise import _threads

    model = lw.SimpleConvNet(seed=2)
    x = np.random.default_rng(2).random((600, 1, 28, 28), dtype=np.float32)
    monkeypatch.setattr(_threads, "blas_threads", lambda: 2)
    before = [lib.num_threads for lib in _threads._blas().lib_controllers]
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
    assert [lib.num_threads for lib in _threads._blas().lib_controllers] == before

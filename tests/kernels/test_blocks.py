"""kernels.blocks: tall products in blocks of rows equal the plain products, and the block
size is measured once on the machine and kept (kernels.tuning.product_blocks)."""

import json
import threading

import numpy as np
import pytest
from book_reference import SEEDS
from conftest import assert_close_for_dtype
from hypothesis import given
from hypothesis import strategies as st

from layerwise import functional
from layerwise.kernels import blocks, fused, kept_choices, threads, tuning
from layerwise.kernels.activations import relu_grad
from layerwise.kernels.conv import conv_forward, conv_input_grad, im2col_dot, im2col_weight_grad
from layerwise.kernels.pool import max_pool, max_pool_backward


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LAYERWISE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(kept_choices, "_memory", {})
    monkeypatch.setattr(blocks, "_decided", {})
    return tmp_path / "cache" / "tuning.json"


def forced_blocks(monkeypatch, rows: int) -> list[str]:
    """Every product in blocks of ``rows`` rows (0: whole), whatever its size; returns the
    keys asked for."""
    asked: list[str] = []
    monkeypatch.setattr(blocks, "_decided", {})
    monkeypatch.setattr(blocks, "MIN_ROWS", 0)
    monkeypatch.setattr(tuning, "product_blocks", lambda key, measure: asked.append(key) or rows)
    return asked


def operand(rng, shape, layout, dtype):
    a = rng.standard_normal(shape).astype(dtype)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":
        return np.repeat(a, 2, axis=1)[:, ::2]
    return a


@given(st.integers(0, 700), st.integers(1, 40), st.integers(1, 40), st.sampled_from([0, 128, 256]),
       st.sampled_from(["C", "F", "strided"]), st.sampled_from([np.float32, np.float64]), SEEDS)
def test_rows_dot_and_inner_dot_equal_the_plain_products(M, K, N, rows, layout, dtype, seed):
    with pytest.MonkeyPatch.context() as monkeypatch:
        forced_blocks(monkeypatch, rows)
        rng = np.random.default_rng(seed)
        a, b, d = operand(rng, (M, K), layout, dtype), rng.standard_normal((K, N)).astype(dtype), \
            rng.standard_normal((M, N)).astype(dtype)
        largest = {name: float(np.abs(v).max(initial=0)) for name, v in (("a", a), ("b", b), ("d", d))}
        y = blocks.rows_dot(a, b if layout == "C" else np.asfortranarray(b))  # col_W is a transposed view
        assert y.shape == (M, N) and y.dtype == dtype
        assert_close_for_dtype(y, a.astype(np.float64) @ b, dtype, terms=K, scale=largest["a"] * largest["b"] * K)
        dW = blocks.inner_dot(a, d)
        assert dW.shape == (K, N) and dW.dtype == dtype
        assert_close_for_dtype(dW, a.T.astype(np.float64) @ d, dtype, terms=M, ulps=16,
                               scale=largest["a"] * largest["d"] * max(M, 1))


@pytest.mark.parametrize("layout", ["C", "F"])
def test_rows_dot_writes_into_out_block_by_block(monkeypatch, layout):
    forced_blocks(monkeypatch, 128)
    rng = np.random.default_rng(0)
    a, b = operand(rng, (300, 26), layout, np.float64), rng.standard_normal((26, 30))
    out = np.full((300, 30), np.nan)
    assert blocks.rows_dot(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)
    # an out that blocks could not be views of gets the whole product, not a lost copy
    wide = np.full((300, 60), np.nan)
    blocks.rows_dot(a, b, out=wide[:, ::2])
    np.testing.assert_allclose(wide[:, ::2], a @ b, rtol=1e-12, atol=1e-12)
    assert np.isnan(wide[:, 1::2]).all()


def test_small_products_run_whole_unmeasured(monkeypatch):
    asked = []
    monkeypatch.setattr(blocks, "_decided", {})
    monkeypatch.setattr(tuning, "product_blocks", lambda key, measure: asked.append(key) or 128)
    a = np.ones((blocks.MIN_ROWS - 1, 4))
    assert blocks.block_rows("rows", a, np.ones((4, 3))) == 0 and asked == []
    assert blocks.block_rows("rows", np.ones((blocks.MIN_ROWS, 4)), np.ones((4, 3))) == 128
    assert asked == [f"rows K4 N3 float64 a C b C, BLAS threads {blocks.blas_threads()}"]


def test_the_block_size_is_measured_once_kept_and_read_back(monkeypatch, cache):
    measured = []

    def measure():
        measured.append(1)
        return {0: 2.0, 128: 1.5, 256: 1.0, 512: 1.2, 1024: 1.9, 2048: 2.5}

    assert tuning.product_blocks("rows K26 N30", measure) == 256
    assert tuning.product_blocks("rows K26 N30", measure) == 256 and measured == [1]
    stored = json.loads(cache.read_text())["machines"][kept_choices.machine_signature()]["product rows K26 N30"]
    assert stored["rows"] == 256 and stored["ms"]["0"] == 2000.0
    monkeypatch.setattr(kept_choices, "_memory", {})  # a new process: only the file remembers
    assert tuning.product_blocks("rows K26 N30", measure) == 256 and measured == [1]
    assert tuning.kept_blocks()["rows K26 N30"]["rows"] == 256


def test_blocks_only_when_clearly_faster_and_never_with_tuning_off(monkeypatch, cache):
    almost = {0: 1.0, 128: 0.99, 256: 1.1, 512: 1.2, 1024: 1.3, 2048: 1.4}  # within MARGIN
    assert tuning.product_blocks("inner K8 N8", lambda: almost) == 0
    monkeypatch.setenv(kept_choices.TUNING_ENV_VAR, "0")
    assert tuning.product_blocks("inner K9 N9", lambda: {0: 9.0, 128: 1.0}) == 0
    assert "inner K9 N9" not in tuning.kept_blocks()


def test_a_failing_measurement_runs_whole_and_is_not_kept(cache):
    def broken():
        raise MemoryError("no room for the sample")

    assert tuning.product_blocks("rows K1 N1", broken) == 0
    assert "rows K1 N1" not in tuning.kept_blocks()


@pytest.mark.parametrize("op", ["rows", "inner"])
@pytest.mark.parametrize(("a_layout", "b_layout"), [("C", "C"), ("F", "C"), ("strided", "F"), ("C", "strided")])
def test_the_measurement_times_every_block_size(op, a_layout, b_layout):
    seconds = blocks._time_blocks(op, 26, 30, np.dtype(np.float32), a_layout, b_layout)
    assert set(seconds) == set(tuning.BLOCK_ROWS)
    assert all(0 < s < 1 for s in seconds.values())


def test_a_real_measurement_is_kept_for_the_product_that_asked(cache):
    a, b = np.ones((blocks.MIN_ROWS, 26), np.float32), np.ones((26, 30), np.float32)
    rows = blocks.block_rows("rows", np.asfortranarray(a), b)
    kept = tuning.kept_blocks()[f"rows K26 N30 float32 a F b C, BLAS threads {blocks.blas_threads()}"]
    assert kept["rows"] == rows and set(kept["ms"]) == {str(r) for r in tuning.BLOCK_ROWS}


@pytest.mark.parametrize("rows", [0, 128])
def test_the_convolution_kernels_in_blocks_equal_the_books(monkeypatch, rows):
    asked = forced_blocks(monkeypatch, rows)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 10, 10))
    W, b = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    col_W = W.transpose(0, 2, 3, 1).reshape(4, -1).T
    book_col = functional.im2col(x, 3, 3, 1, 1)  # (N·OH·OW, C·FH·FW), the book's column order
    y = im2col_dot(x, col_W, b, 3, 3, 1, 1)
    np.testing.assert_allclose(y, book_col @ W.reshape(4, -1).T + b, rtol=1e-12, atol=1e-12)
    d = rng.standard_normal(y.shape)
    dW = im2col_weight_grad(d, x, 3, 3, 1, 1)
    np.testing.assert_allclose(dW.reshape(4, 3, 3, 2).transpose(0, 3, 1, 2).reshape(4, -1), d.T @ book_col,
                               rtol=1e-12, atol=1e-12)
    dx = conv_input_grad(d, W, x.shape, 1, 1)  # 4 <= 2·2 channels: by correlation, an im2col product
    np.testing.assert_allclose(dx, functional.col2im(d @ W.reshape(4, -1), x.shape, 3, 3, 1, 1),
                               rtol=1e-12, atol=1e-12)
    assert {key.split(" K")[0] for key in asked} == {"rows", "inner"}


@pytest.mark.parametrize("rows", [0, 128])
def test_the_fused_run_in_blocks_equals_the_three_layers(monkeypatch, rows):
    forced_blocks(monkeypatch, rows)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 1, 20, 20))  # one channel: col is column-major, as SimpleConvNet's
    W, b = rng.standard_normal((5, 1, 5, 5)), rng.standard_normal(5)
    col_W = W.transpose(0, 2, 3, 1).reshape(5, -1).T
    made = fused.conv_relu_pool(x, col_W, b, 5, 5, 1, 0, 2, keep_cols=True)
    y = (functional.im2col(x, 5, 5, 1, 0) @ W.reshape(5, -1).T + b).reshape(3, 16, 16, 5).transpose(0, 3, 1, 2)
    out, arg_max = max_pool(np.maximum(y, 0), 2, 2, 2)
    np.testing.assert_allclose(made.out, out, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(made.arg_max, arg_max)
    np.testing.assert_array_equal(made.mask, y <= 0)
    dout = rng.standard_normal(out.shape)
    d = relu_grad(max_pool_backward(dout, arg_max, y.shape, 2, 2, 2), y <= 0).transpose(0, 2, 3, 1).reshape(-1, 5)
    dW, db, _ = fused.conv_relu_pool_backward(dout, x, W, made.passed, made.arg_max, 1, 0, 2, False, made.cols)
    np.testing.assert_allclose(dW, d.T @ functional.im2col(x, 5, 5, 1, 0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, d.sum(axis=0), rtol=1e-12, atol=1e-12)


def test_a_product_asked_while_another_thread_measures_runs_whole_at_once(cache):
    # Regression: conv_way's measurement holds the machine lock while it runs im2col_dot, whose
    # chunks run on the pool; their products asked for the lock to measure their block size, and
    # DeepConvNet's predict on 2 threads hung for ever.
    sizes = {0: 2.0, 128: 1.0, 256: 1.5, 512: 1.5, 1024: 1.5, 2048: 1.5}
    asked = []
    with kept_choices.machine_lock():
        worker = threading.Thread(target=lambda: asked.append(tuning.product_blocks("rows K3 N3", lambda: sizes)),
                                  daemon=True)
        worker.start()
        worker.join(timeout=30)
        assert not worker.is_alive(), "the product waited for the measuring thread's lock"
        assert tuning.product_blocks("rows K3 N4", lambda: sizes) == 128  # the holder itself measures
    assert asked == [None] and "rows K3 N3" not in tuning.kept_blocks()
    assert tuning.product_blocks("rows K3 N3", lambda: sizes) == 128  # measured once the lock is free


def test_a_convolution_measured_on_two_threads_does_not_hang(monkeypatch, cache):
    monkeypatch.setattr(threads, "run_threads", lambda: (2, True))
    rng = np.random.default_rng(3)
    # channels-last, as between layers; large enough that Winograd's way is measured
    x = rng.standard_normal((32, 28, 28, 16)).transpose(0, 3, 1, 2)
    W = rng.standard_normal((16, 16, 3, 3))
    col_W = W.transpose(0, 2, 3, 1).reshape(16, -1).T
    done = []

    def predict_on_two_threads() -> None:  # Winograd or im2col measured, im2col's chunks on the pool
        with threads.owned_threads():
            done.append(conv_forward(x, col_W, np.zeros(16), 3, 3, 1, 1))

    worker = threading.Thread(target=predict_on_two_threads, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the convolution's measurement hung"
    np.testing.assert_allclose(done[0], functional.im2col(x, 3, 3, 1, 1) @ W.reshape(16, -1).T, rtol=1e-10, atol=1e-10)


def test_a_decision_is_asked_once_per_process_unless_another_thread_was_measuring(monkeypatch):
    answers = iter([None, 256])  # busy first (another thread measuring), then kept
    asked = []
    monkeypatch.setattr(blocks, "_decided", {})
    monkeypatch.setattr(tuning, "product_blocks", lambda key, measure: asked.append(key) or next(answers))
    a, b = np.ones((blocks.MIN_ROWS, 4), np.float32), np.ones((4, 3), np.float32)
    assert blocks.block_rows("inner", a, b) == 0  # whole, this once
    assert [blocks.block_rows("inner", a, b) for _ in range(3)] == [256] * 3
    assert len(asked) == 2
    monkeypatch.setenv(kept_choices.TUNING_ENV_VAR, "0")  # tuning turned off: asked again (and tuning says whole)
    monkeypatch.setattr(tuning, "product_blocks", lambda key, measure: asked.append(key) or 0)
    assert blocks.block_rows("inner", a, b) == 0 and len(asked) == 3

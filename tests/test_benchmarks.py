"""The benchmark runner (``python -m benchmarks``): its bookkeeping, and one small real run.

No timing is asserted here (speed is the benchmark's own report); these tests check that the
runner runs, that both implementations train the same network the same way, and that what it
counts and prints is right.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require_fixture

from benchmarks.nets import NETS, Gemm, copy_floor, epoch_flops, gemm_floor, inference_flops, step_copies, step_gemms
from benchmarks.run import (
    _paired,
    choices_table,
    conv_chunk,
    conv_ways_table,
    inference_table,
    parse_args,
    product_blocks_table,
    training_table,
)
from layerwise.layers import Dropout
from layerwise.models import DeepConvNet, MultiLayerNet, SimpleConvNet, TwoLayerNet

ROOT = Path(__file__).resolve().parents[1]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def test_the_products_of_a_two_layer_step() -> None:
    model = TwoLayerNet(784, 50, 10, seed=0)
    shapes = [(g.M, g.K, g.N) for g in step_gemms(model, 100, (784,))]
    # forward x·W1, dW1 = xᵀ·dout (no dx for the first layer), forward h·W2, dW2, dh = dout·W2ᵀ
    assert shapes == [(100, 784, 50), (784, 100, 50), (100, 50, 10), (50, 100, 10), (100, 10, 50)]
    per_step = 2 * (100 * 784 * 50 * 2 + 100 * 50 * 10 * 3)
    assert epoch_flops(model, 60_000, 100, (784,)) == pytest.approx(600 * per_step)
    assert inference_flops(model, 10_000, (784,)) == 2 * 10_000 * (784 * 50 + 50 * 10)


def test_the_products_of_a_convnet_step() -> None:
    model = SimpleConvNet((1, 28, 28), {"filter_num": 30, "filter_size": 5}, 100, 10, seed=0)
    gemms = step_gemms(model, 100, (1, 28, 28))
    conv = [g for g in gemms if g.what.startswith("Convolution")]
    rows = 100 * 24 * 24  # output positions of a 5x5 filter on 28x28, no padding
    assert [(g.M, g.K, g.N) for g in conv] == [(rows, 25, 30), (25, rows, 30)]  # dW as colᵀ·d; no dx
    affine = [(g.M, g.K, g.N) for g in gemms if g.what.startswith("Affine")]
    assert affine == [(100, 4320, 100), (4320, 100, 100), (100, 100, 4320),
                      (100, 100, 10), (100, 100, 10), (100, 10, 100)]
    assert Gemm("x", 2, 3, 4).flops == 48


def test_a_convolutions_products_note_the_chunks_kernels_conv_cuts_the_batch_into(monkeypatch) -> None:
    from layerwise.kernels import cache_sizes

    monkeypatch.setattr(cache_sizes, "conv_chunk_bytes", lambda: 24 * 24 * 25 * 8 * 30)  # 30 float64 images
    model = SimpleConvNet((1, 28, 28), {"filter_num": 30, "filter_size": 5}, 100, 10, seed=0)
    forward, dW = [g for g in step_gemms(model, 100, (1, 28, 28)) if g.what.startswith("Convolution")]
    assert forward.chunks == dW.chunks == 4  # 100 images, at most 30 a chunk
    rows = 100 * 24 * 24
    assert (forward.chunk().M, forward.chunk().K, forward.chunk().N) == (rows // 4, 25, 30)  # rows divided
    assert (dW.chunk().M, dW.chunk().K, dW.chunk().N) == (25, rows // 4, 30)  # the inner sum divided
    assert all(g.chunks == 1 for g in step_gemms(model, 100, (1, 28, 28)) if g.what.startswith("Affine"))


def _fake_products(monkeypatch, cost: dict[tuple[int, ...], float], other: float = 9.0) -> None:
    """np.matmul that takes cost[out.shape] seconds (``other`` for any other shape) on a fake clock."""
    import time

    clock = [0.0]
    real_matmul = np.matmul

    def fake_matmul(a, b, out=None):
        result = real_matmul(a, b, out=out)
        clock[0] += cost.get(result.shape, other)
        return result

    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(np, "matmul", fake_matmul)


def test_the_gemm_floor_takes_the_faster_of_the_whole_product_and_its_chunks(monkeypatch) -> None:
    cost = {(400, 8): 1.0, (100, 8): 0.1, (40, 8): 1.0}  # (rows, columns): the chunks of the first are faster
    _fake_products(monkeypatch, cost)
    chunked, slow_chunks = Gemm("a forward", 400, 3, 8, chunks=4), Gemm("b forward", 40, 3, 8, chunks=1)
    # 4 chunks of 0.1 beat the whole 1.0; a product without chunks counts whole
    assert gemm_floor([chunked, slow_chunks], steps=10, reps=2) == pytest.approx(10 * (4 * 0.1 + 1.0))
    cost[(100, 8)] = 0.3  # now 4 chunks (1.2) are slower than the whole product
    assert gemm_floor([chunked], steps=1, reps=1) == pytest.approx(1.0)


def test_the_gemm_floor_takes_a_product_in_blocks_of_rows_where_faster(monkeypatch) -> None:
    # 512 rows: in blocks of 128 one stacked product (4, 128, 8), of 256 (2, 256, 8); a weight
    # gradient sums blocks of its inner axis, (4, 3, 8) stacked
    cost = {(512, 8): 1.0, (4, 128, 8): 0.25, (2, 256, 8): 0.5, (3, 8): 1.0, (4, 3, 8): 0.125}
    _fake_products(monkeypatch, cost)
    forward, grad = Gemm("c forward", 512, 3, 8), Gemm("c dW", 3, 512, 8, a_t=True)
    assert gemm_floor([forward, grad], steps=1, reps=1) == pytest.approx(0.25 + 0.125)
    few = Gemm("d forward", 200, 3, 8)  # too few rows for blocks: whole
    cost[(200, 8)] = 0.5
    assert gemm_floor([few], steps=1, reps=1) == pytest.approx(0.5)


def _result(lw: list[float], pt: list[float]) -> dict:
    return {
        "net": "mlp-small", "threads": 1, "lw_epoch_s": lw, "torch_epoch_s": pt, "gemm_floor_s": 0.5,
        "epoch_gflop": 1.0, "lw_test_acc": [0.8] * len(lw), "torch_test_acc": [0.81] * len(pt),
        "weight_difference_f64": 1e-16, "loadavg": [[0.5, 0, 0], [0.7, 0, 0]], "other_cpu_cores": 0.0,
    }


def test_the_ratio_of_each_epoch_pair_is_reported_beside_the_ratio_of_medians() -> None:
    # Both implementations slow down together (the machine's drift): each pair's ratio stays 0.5,
    # while the medians' ratio is 2 / 2 = 1.0 when lw's slow epoch pairs with PyTorch's fast one.
    result = _result([1.0, 2.0, 4.0], [2.0, 4.0, 8.0])
    assert _paired(result) == "0.50 (0.50-0.50)"
    assert _paired(_result([1.0, 3.0, 2.0], [2.0, 2.0, 2.0])) == "1.00 (0.50-1.50)"
    table = training_table([result], {1: {"gemm_gflops": 100.0}})
    header, rule, row = table.splitlines()
    assert header.count("|") == rule.count("|") == row.count("|")
    cells = dict(zip(header.split("|"), row.split("|"), strict=True))
    assert cells[" ratio lw/PT "].strip() == "**0.50**"
    assert cells[" ratio per epoch pair "].strip() == "0.50 (0.50-0.50)"
    assert cells[" lw/floor "].strip() == "4.0"
    assert cells[" copy floor s "].strip() == ""  # a run saved before the copy floor existed
    result["copy_floor_s"] = 0.5
    cells = dict(zip(header.split("|"), training_table([result], {1: {"gemm_gflops": 100.0}}).splitlines()[2]
                     .split("|"), strict=True))
    assert cells[" copy floor s "].strip() == "0.50" and cells[" lw/(GEMM + copy floor) "].strip() == "2.0"


def test_the_copy_floor_counts_each_array_a_step_must_write() -> None:
    copies = step_copies(SimpleConvNet(seed=0), 100, (1, 28, 28))
    conv = [(what.rsplit(" ", 1)[1], n) for what, n in copies if what.startswith("Convolution")]
    assert conv == [("out", 100 * 30 * 24 * 24), ("col", 100 * 24 * 24 * 25)]  # no dx: the first layer
    assert copies[2] == ("Relu() out", 100 * 30 * 24 * 24) and copies[3] == ("Relu() dx", 100 * 30 * 24 * 24)
    deep = [(what, n) for what, n in step_copies(DeepConvNet(seed=0), 100, (1, 28, 28)) if what.endswith("dx col")]
    # every convolution but the first (no dx) takes dx by correlation, FN <= 2·C: dout unfolded 3x3
    assert [n for _, n in deep] == [100 * 16 * 28 * 28 * 9, 100 * 16 * 14 * 14 * 9 * 2, 100 * 32 * 14 * 14 * 9,
                                    100 * 32 * 8 * 8 * 9 * 2, 100 * 64 * 8 * 8 * 9]
    assert copy_floor([("a", 1000), ("b", 10)], steps=10, reps=2, threads=2) > 0
    assert copy_floor([("a", 1000), ("b", 10)], steps=10, reps=2, threads=2, batch=10) > 0
    # a prediction writes each layer's output and each convolution's col, no gradients
    forward = step_copies(DeepConvNet(seed=0), 100, (1, 28, 28), forward_only=True)
    assert [what.rsplit(" ", 1)[1] for what, _ in forward[:4]] == ["out", "col", "out", "out"]
    assert not any(what.endswith("dx") or what.endswith("dx col") for what, _ in forward)


def test_the_copy_floor_takes_one_thread_when_the_pool_costs_more(monkeypatch) -> None:
    # A fake clock: each copy takes 1 us, and handing a step to the pool 1 ms.
    import concurrent.futures
    import time

    import benchmarks.nets as nets

    clock = [0.0]
    real = np.copyto

    def copyto(dst, src):
        clock[0] += 1e-6
        real(dst, src)

    class SlowPool:
        def __init__(self, workers: int) -> None:
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> bool:
            return False

        def map(self, fn, items):
            clock[0] += 1e-3
            return [fn(item) for item in items]

    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(nets.np, "copyto", copyto)
    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", SlowPool)
    # two arrays, each in 2 parts: 4 copies a step, 4 us on one thread
    assert copy_floor([("a", 10), ("b", 10)], steps=3, reps=2, threads=2) == pytest.approx(3 * 4e-6)


def test_the_copy_floor_copies_an_array_larger_than_a_chunk_in_chunks(monkeypatch) -> None:
    import benchmarks.nets as nets

    sizes = []
    real = np.copyto
    monkeypatch.setattr(nets.np, "copyto", lambda dst, src: (sizes.append(dst.size), real(dst, src)))
    monkeypatch.setattr("layerwise.kernels.cache_sizes.conv_chunk_bytes", lambda: 4 * 300)  # 3 samples of 100 floats
    copy_floor([("big", 1000), ("small", 20)], steps=1, reps=1, threads=1, batch=10)
    # per step: "big" as 3 chunks of 3 samples and one of 1, "small" (80 bytes) whole
    assert sizes[:5] == [300, 300, 300, 100, 20]


def test_the_inference_table_adds_each_sides_best_batch_and_the_choices_are_shown() -> None:
    result = {"net": "mlp-small", "threads": 2, "infer_n": 10000, "inference": [
        {"batch": 100, "lw_s": [0.010], "torch_s": [0.008], "gemm_floor_s": 0.004},
        {"batch": 1000, "lw_s": [0.006], "torch_s": [0.009], "gemm_floor_s": 0.003}]}
    best = inference_table([result]).splitlines()[-1]
    assert best.startswith("| mlp-small | 2 | best: lw 1000, PT 100 | 6.0 | 8.0 |") and "**1.33**" in best
    assert inference_table([result]).splitlines()[2].endswith("| n/a | n/a |")  # no predictions compared then
    result["inference"][0].update(same_class=9_999, max_abs_diff=2e-6, score_scale=12.5)
    assert inference_table([result]).splitlines()[2].endswith("| **9,999 of 10,000** | 2.0e-06 of 12.5 |")
    result.update(lw_thread_plan={"plan": "blas1", "how": "measured", "ms_per_step": {
        "blas": 0.2, "blas1": 0.15, "owned": 0.21}}, lw_inference_chunk_bytes={
        "bytes": 8 * 2**20, "images": 18, "last_level_cache": [32 * 2**20, 2]})
    assert choices_table([result]).splitlines()[-1] == (
        "| mlp-small | 2 | blas1 (measured) | 0.2 / 0.15 / 0.21 / - / - | - | 8 MiB (32 MiB cache / 2 CPUs / 2) "
        "= 18 images | - |")  # no convolution; the BLAS threads not shared (blas1)
    shared = {**result, "lw_blas_threads_by_epoch": [{"2": 600}, {"2": 580, "1": 20}]}
    assert "| 2: 600; 2: 580, 1: 20 |" in choices_table([shared])  # 20 steps gave a core to another process
    one_thread = {**result, "threads": 1, "lw_inference_chunk_bytes": {
        "bytes": 4 * 2**20, "images": 9, "last_level_cache": [32 * 2**20, 2], "share_parts": 4}}
    assert "| 4 MiB (32 MiB cache / 2 CPUs / 4) = 9 images |" in choices_table([one_thread])  # a quarter on one


def test_the_convolution_ways_kept_are_shown_once_each() -> None:
    way = {"way": "winograd 4x4", "ms": {"im2col": 2.06, "winograd": 1.6, "winograd by sums": 1.7,
                                          "winograd 4x4": 1.2}, "measured": "2026-12-05"}
    before_sums = {"way": "winograd", "ms": {"im2col": 2.06, "winograd": 1.6}}  # kept before the sums were a way
    results = [{"lw_conv_ways": {"C32 FN32 14x14 pad 2 float32, BLAS threads 1, chunks on 1": way}},
               {"lw_conv_ways": {"C32 FN32 14x14 pad 2 float32, BLAS threads 1, chunks on 1": way,
                                 "C16 FN16 28x28 pad 1 float32, BLAS threads 1, chunks on 1": {"way": "im2col"},
                                 "C64 FN64 8x8 pad 1 float32, BLAS threads 1, chunks on 1": before_sums}},
               {}]  # a run from before the choice
    assert conv_ways_table(results).splitlines()[2:] == [
        "| C16 FN16 28x28 pad 1 float32, BLAS threads 1, chunks on 1 | im2col | - / - / - / - |",
        "| C32 FN32 14x14 pad 2 float32, BLAS threads 1, chunks on 1 | winograd 4x4 | 2.06 / 1.6 / 1.7 / 1.2 |",
        "| C64 FN64 8x8 pad 1 float32, BLAS threads 1, chunks on 1 | winograd | 2.06 / 1.6 / - / - |"]
    assert conv_ways_table([{}]) == ""


def test_the_product_block_sizes_kept_are_shown_once_each() -> None:
    blocked = {"rows": 512, "ms": {"0": 0.116, "128": 0.0856, "512": 0.0839}, "measured": "2026-12-06"}
    whole = {"rows": 0, "ms": {"0": 0.2, "128": 0.3}}
    results = [{"lw_product_blocks": {"rows K26 N30 float32 a F b C, BLAS threads 1": blocked}},
               {"lw_product_blocks": {"rows K26 N30 float32 a F b C, BLAS threads 1": blocked,
                                      "inner K26 N30 float32 a F b C, BLAS threads 2": whole}},
               {}]  # a run from before the choice
    assert product_blocks_table(results).splitlines() == [
        "| product (op, sizes, dtype, layouts, threads) | rows per block | ms by rows 0 / 128 / 512 |",
        "|---|--:|--:|",
        "| inner K26 N30 float32 a F b C, BLAS threads 2 | whole | 0.2 / 0.3 / - |",
        "| rows K26 N30 float32 a F b C, BLAS threads 1 | 512 | 0.116 / 0.0856 / 0.0839 |"]
    assert product_blocks_table([{}]) == ""


def test_the_split_sizes_kept_are_shown_once_each() -> None:
    from benchmarks.run import split_sizes_table

    record = {"min": 698_649, "us": {"524288": [192.8, 169.7], "16384": [6.9, 45.5]}}
    never = {"min": 1 << 40, "us": {"16384": [3.8, 20.9]}}
    table = split_sizes_table([{"lw_split_sizes": {"pass float32, 2 threads": record}},
                               {"lw_split_sizes": {"pass float32, 2 threads": record,
                                                   "update SGD float32, 2 threads": never}}, {}])
    assert table.splitlines()[2:] == [
        "| pass float32, 2 threads | 698,649 | 16,384: 6.9 / 45.5, 524,288: 192.8 / 169.7 |",
        "| update SGD float32, 2 threads | never | 16,384: 3.8 / 20.9 |"]
    assert split_sizes_table([{}]) == ""  # a run saved before the sizes were measured


def test_the_convolution_chunk_is_what_the_worker_recorded() -> None:
    from benchmarks.worker import _conv_chunk
    from layerwise.kernels.cache_sizes import conv_chunk_bytes

    recorded = _conv_chunk(DeepConvNet(seed=0, dtype=np.float32), 100, (1, 28, 28))
    per_image = 28 * 28 * 3 * 3 * 16 * 4  # the largest col: the 2nd layer's, 3x3x16 float32 values a position
    assert recorded["bytes"] == conv_chunk_bytes()
    assert recorded["images"] == max(1, min(100, conv_chunk_bytes() // per_image)) and recorded["batch"] == 100
    recorded.update(bytes=4 * 2**20, images=9, last_level_cache=[32 * 2**20, 2])
    assert conv_chunk(recorded) == "4 MiB (32 MiB cache / 2 CPUs / 4) = 9 of 100 images of the largest col"
    assert _conv_chunk(TwoLayerNet(784, 50, 10, seed=0), 100, (784,)) is None
    assert conv_chunk(None) == "-"  # no convolution, or a run saved before they ran in chunks


def test_an_unknown_network_is_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--nets", "mlp-small,resnet"])
    assert "unknown nets ['resnet']" in capsys.readouterr().err
    assert parse_args(["--nets", "mlp-small", "--threads", "1"]).threads == [1]
    assert set(NETS) == {"mlp-small", "mlp-wide", "convnet", "deep-convnet"}
    assert parse_args([]).nets == ["mlp-small", "mlp-wide", "convnet"]  # DeepConvNet only when asked


def test_a_small_run_trains_both_implementations_alike_and_reports_it(tmp_path: Path) -> None:
    """The runner end to end, as a user runs it: one epoch of the 784-50-10 net at one thread,
    inference at batch 100, the peak-memory and accuracy jobs; then ``--report`` of its JSON."""
    require_fixture(FASHION_DIR)
    pytest.importorskip("torch")  # the test extra installs it
    raw_path = tmp_path / "run.json"
    command = [sys.executable, "-m", "benchmarks", "--nets", "mlp-small", "--threads", "1", "--epochs", "1",
               "--infer-batches", "100", "--infer-reps", "1", "--floor-reps", "2", "--warmup-steps", "2",
               "--check-steps", "2", "--accuracy-seeds", "1", "--json", str(raw_path), "--quiet"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 0, run.stderr
    raw = json.loads(raw_path.read_text())

    (training,) = raw["training"]
    assert (training["net"], training["threads"]) == ("mlp-small", 1)
    assert len(training["lw_epoch_s"]) == len(training["torch_epoch_s"]) == 1
    assert training["lw_blas_threads_by_epoch"] == [{}]  # one thread: no cores to share
    assert min(training["lw_epoch_s"] + training["torch_epoch_s"]) > 0
    # Same initial weights, same sample order, same arithmetic: the float64 twins agree to
    # rounding, and the float32 runs reach the same test accuracy.
    assert training["weight_difference_f64"] < 1e-12
    assert training["lw_test_acc"][0] > 0.7
    assert abs(training["lw_test_acc"][0] - training["torch_test_acc"][0]) < 0.01
    (inference,) = training["inference"]
    assert inference["batch"] == 100 and inference["gemm_floor_s"] > 0 and inference["copy_floor_s"] > 0
    # inference against a twin with the trained weights: the same function, in float32
    assert inference["same_class"] >= 9_990 and training["infer_n"] == 10_000
    assert 0 < inference["max_abs_diff"] <= 1e-4 * inference["score_scale"]
    assert training["gemm_floor_s"] > 0 and training["epoch_gflop"] == pytest.approx(9.588)
    assert training["copy_floor_s"] > 0
    assert training["lw_thread_plan"]["how"] == "one thread" and training["lw_inference_chunk_bytes"]["images"] > 0

    memory = {m["impl"]: m for m in raw["memory"]}
    assert memory["layerwise"]["torch_imported"] is False
    assert memory["layerwise"]["peak_rss_mb"] >= memory["layerwise"]["rss_after_data_mb"] > 0
    (accuracy,) = raw["accuracy"]
    assert accuracy["runs"][0]["seed"] == 0

    assert "| mlp-small | 1 |" in run.stdout and "ratio per epoch pair" in run.stdout
    again = subprocess.run([sys.executable, "-m", "benchmarks", "--report", str(raw_path)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == run.stdout.strip()


def _target_row(net, threads, lw, pt, floor, inference):
    return {"net": net, "threads": threads, "lw_epoch_s": [lw], "torch_epoch_s": [pt], "gemm_floor_s": floor,
            "copy_floor_s": floor / 2, "inference": inference}


def test_the_targets_table_says_what_is_met_and_the_floor_where_not() -> None:
    from benchmarks.targets import targets_table

    row = _target_row

    infer = [{"batch": 100, "lw_s": [2.0], "torch_s": [1.0], "gemm_floor_s": 0.8, "copy_floor_s": 0.2},
             {"batch": 1000, "lw_s": [0.9], "torch_s": [1.5], "gemm_floor_s": 0.7}]
    raw = {"machines": {"1": {}, "2": {}}, "training": [
        row("mlp-small", 1, 0.5, 1.0, 0.1, []), row("mlp-small", 2, 0.6, 1.0, 0.1, []),
        row("deep-convnet", 1, 2.0, 1.0, 1.1, infer), row("deep-convnet", 2, 2.0, 1.0, 0.9, infer)],
        "accuracy": [{"net": "deep-convnet", "runs": [{"lw_test_acc": [0.85], "torch_test_acc": [0.84]}]}],
        "memory": [{"net": "deep-convnet", "impl": "layerwise", "peak_rss_mb": 500},
                   {"net": "deep-convnet", "impl": "torch", "peak_rss_mb": 560}]}
    lines = {line.split(" | ")[0][2:]: line for line in targets_table(raw).splitlines()[2:]}
    assert lines["784-50-10 training, lw/PT time ≤ 0.55"] == (
        "| 784-50-10 training, lw/PT time ≤ 0.55 | 0.50 | 0.60 | not met | "
        "2 threads: 0.10 (GEMM), 0.15 (GEMM + copies) |")
    assert lines["DeepConvNet training (200 steps), lw/PT time ≤ 1.0"].endswith(
        "| 2.00 | 2.00 | not met | 1 thread: 1.10 (GEMM), 1.65 (GEMM + copies); "
        "2 threads: 0.90 (GEMM), 1.35 (GEMM + copies) |")
    # products alone 0.8 s, and 0.2 s of copies: PyTorch's 1.0 s over them
    assert lines["DeepConvNet inference, batch 100, speed-up ≥ 1"].endswith(
        "| 0.50 | 0.50 | not met | 1 thread: 1.25 (products), 1.00 (products + copies); "
        "2 threads: 1.25 (products), 1.00 (products + copies) |")
    # each side at its best batch: layerwise 0.9 s (batch 1000) against PyTorch's 1.0 s (batch 100)
    assert lines["DeepConvNet inference, each side's best batch, speed-up ≥ 1"].endswith("| 1.11 | 1.11 | met |  |")
    assert "+1.00 points (1 seeds)" in lines["DeepConvNet test-accuracy gap of means ≤ 0.5 points"]
    assert "not met" in lines["DeepConvNet test-accuracy gap of means ≤ 0.5 points"]
    assert "500 MB vs 560 MB" in lines["DeepConvNet training epoch, peak RSS under PyTorch's"]
    assert "SimpleConvNet" not in "".join(lines)  # not in this run: no row
    # saved before the runner compared the predictions
    assert lines["DeepConvNet inference, the same predictions (same weights, batch 100)"].endswith(
        "| - | - | not measured |  |")


def test_the_same_predictions_are_met_only_when_every_test_image_agrees() -> None:
    from benchmarks.targets import targets_table

    def run(same: list[int]) -> dict:
        return {"machines": {"1": {}, "2": {}}, "training": [
            {**_target_row("deep-convnet", n, 1.0, 1.0, 0.5, [
                {"batch": 100, "lw_s": [1.0], "torch_s": [1.0], "same_class": k, "max_abs_diff": 1e-5,
                 "score_scale": 10.0}]), "infer_n": 10_000} for n, k in zip((1, 2), same, strict=True)]}

    title = "DeepConvNet inference, the same predictions (same weights, batch 100)"
    rows = {line.split(" | ")[0][2:]: line for line in targets_table(run([10_000, 10_000])).splitlines()[2:]}
    assert rows[title] == (f"| {title} | 10,000 of 10,000 the same class | 10,000 of 10,000 the same class | met |  |")
    rows = {line.split(" | ")[0][2:]: line for line in targets_table(run([10_000, 9_999])).splitlines()[2:]}
    assert rows[title].endswith("| 9,999 of 10,000 the same class | not met |  |")


def test_the_targets_across_machines_put_each_run_in_a_column() -> None:
    from benchmarks.targets import across_table

    row = _target_row
    fast = {"machines": {"1": {}, "2": {}}, "training": [row("mlp-small", 1, 0.5, 1.0, 0.1, []),
                                                      row("mlp-small", 2, 0.5, 1.0, 0.1, []),
                                                      row("convnet", 1, 3.0, 4.0, 1.0, []),
                                                      row("convnet", 2, 3.0, 4.0, 2.0, [])]}
    slow = {"machines": {"1": {}}, "training": [row("mlp-small", 1, 0.7, 1.0, 0.1, [])]}
    lines = across_table([("zen4/skylakex", fast), ("other/haswell", slow)]).splitlines()
    assert lines[0] == "| target | zen4/skylakex | other/haswell |"
    rows = {line.split(" | ")[0][2:]: line for line in lines[2:]}
    assert rows["784-50-10 training, lw/PT time ≤ 0.55"] == (
        "| 784-50-10 training, lw/PT time ≤ 0.55 | 0.50 / 0.50: met | 0.70: **not met**, floor 0.15 |")
    assert across_table([("a", {**fast, "training": [row("mlp-small", 1, 0.5, 1.0, 0.1, []),
                                                     row("mlp-small", 2, 0.6, 1.0, 0.2, [])]})]).splitlines()[2] == (
        "| 784-50-10 training, lw/PT time ≤ 0.55 | 0.50 / 0.60: **not met**, floor at 2 threads 0.30 |")
    # lw over its GEMM floor (3.0 / 1.0, 3.0 / 2.0) and over GEMM + copies (3.0 / 1.5, 3.0 / 3.0)
    assert rows["SimpleConvNet training, lw/GEMM floor ≤ 1.7"] == (
        "| SimpleConvNet training, lw/GEMM floor ≤ 1.7 | 3.0 / 1.5 (2.0 / 1.0 of GEMM + copy floor): **not met** |  |")


@pytest.mark.parametrize("shared", [False, True], ids=["own generators", "one shared generator"])
def test_the_torch_twins_dropout_draws_the_masks_the_layers_draw(shared: bool) -> None:
    """With ``same_masks`` the twin of a net with Dropout computes, step after step, what the
    layerwise net computes in training: the same units dropped, so the same outputs; also
    when the Dropout layers draw from one generator, in turn."""
    torch = pytest.importorskip("torch")
    from benchmarks import torch_nets

    model = MultiLayerNet(20, [30, 30], 5, use_dropout=True, seed=3, dtype=np.float64)
    layers = list(model)
    dropouts = [layer for layer in layers if isinstance(layer, Dropout)]
    assert len(dropouts) == 2
    if shared:
        one = np.random.default_rng(5)
        for layer in dropouts:
            layer.rng = one
    twin = torch_nets.to_torch(model, same_masks=True).double().train()
    x = np.random.default_rng(0).standard_normal((8, 20))
    for _ in range(3):  # each forward draws the next mask on both sides
        ours = x
        for layer in layers:
            ours = layer.forward(ours, train=True)
        theirs = twin(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(theirs, ours, rtol=1e-12, atol=1e-14)
    twin.eval()  # and the identity in evaluation, as inverted dropout is
    np.testing.assert_allclose(twin(torch.from_numpy(x)).detach().numpy(), model.predict(x), rtol=1e-12)


def test_deep_convnets_float64_twins_agree_to_rounding(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's float64 check on DeepConvNet, its 3×3 convolutions by Winograd's F(4×4)
    whatever this machine would choose, and Dropout: the twins' weights after 2 Adam steps
    agree to rounding (3e-12 here). Regression: after 5 steps it read 9e-3 with ``nn.Dropout``
    and the book's zero biases, and with the same masks but zero biases 4e-3 (3.5e-3 after
    these 2 steps): Winograd's ±1e-17 against PyTorch's exact zeros at the ReLU's kink. F(2×2)
    leaves fewer such values; after 2 steps from zero biases it read 3.5e-13."""
    require_fixture(FASHION_DIR)
    pytest.importorskip("torch")
    from benchmarks import worker
    from layerwise.kernels import tuning

    monkeypatch.setattr(tuning, "conv_way", lambda key, measure: "winograd 4x4")

    spec = NETS["deep-convnet"]
    x, t, _, _ = worker._load(spec.flatten, 200)
    assert worker._agreement(spec, x, t, 0, 2) < 1e-9

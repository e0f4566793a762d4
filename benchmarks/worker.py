"""One measurement in a fresh process: ``python -m benchmarks.worker '<json job>'``.

The runner (``run.py``) starts one worker per measurement so every number comes from a clean
process: thread pools sized once, and a peak RSS that belongs to that measurement alone.
The worker prints its result as one JSON line on stdout.

Jobs:
  machine  large-GEMM throughput (2048² float32) and the BLAS library in use
  compare  a network trained by layerwise and by PyTorch in this process, epoch by epoch
           alternating, from the same initial weights and in the same sample order; then
           test accuracy, inference throughput and the GEMM-only floor
  memory   peak RSS of training one network with one implementation (PyTorch not imported
           for layerwise)
"""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
from typing import Any

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from .nets import NETS, copy_floor, epoch_flops, gemm_floor, inference_flops, step_copies, step_gemms


def _load(flatten: bool, train_images: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fashion-MNIST as the benchmarks train on it: the first ``train_images`` training images
    (None: all), and the test set."""
    from layerwise.datasets import load_fashion_mnist

    (x, t), (x_test, t_test) = load_fashion_mnist(flatten=flatten, dtype=np.float32, download=False)
    n = train_images or len(x)
    return x[:n], t[:n], x_test, t_test


def _blas() -> dict[str, Any]:
    """The BLAS NumPy calls (OpenBLAS's kernel name shows OPENBLAS_CORETYPE's effect)."""
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            return {k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
    return {}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _workers_peak_rss_mb() -> float:
    """The largest peak RSS of layerwise's worker processes (the "processes" thread plan, stopped
    when ``fit`` ends) as each reported it (Linux's VmHWM: RUSAGE_CHILDREN's ru_maxrss counts the
    parent's pages a child shared between fork and exec, 306 MB of never-used memory for
    SimpleConvNet's worker); 0 when none ran."""
    try:
        from layerwise.kernels import processes  # inside the job, as the other layerwise imports here
    except ImportError:  # a tree before the processes plan
        return 0.0
    return processes.largest_worker_peak() / 2**20


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


#: Seconds to wait before each timed run. After its work an implementation's idle threads spin
#: on (OpenBLAS's for ~0.1 s, PyTorch's OpenMP threads for < 20 ms; measured) and, with 2 threads
#: on 2 cores, take a core from whatever runs next: timed right after the other implementation,
#: a 2-thread inference pass measured up to 2x slower. Waiting first lets them go idle.
SETTLE_S = 0.25


def _settle() -> None:
    """Wait SETTLE_S, busy: on this VM a core that sleeps even 0.25 s comes back slow for a while
    (the next 784-50-10 epoch 0.26 s instead of 0.19 s, measured), while spinning keeps it warm."""
    end = time.perf_counter() + SETTLE_S
    while time.perf_counter() < end:
        pass


def _best(fn, reps: int) -> list[float]:
    times = []
    for _ in range(reps):
        _settle()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _predictions_agree(model, twin, x: np.ndarray, batch: int) -> dict:
    """How far ``model.predict`` and its PyTorch ``twin`` (the same weights) agree on ``x`` run
    in batches of ``batch``: ``same_class``, the samples whose highest score is the same class;
    ``max_abs_diff``, the largest difference of any score; ``score_scale``, the largest score
    (PyTorch's), for reading that difference."""
    from . import torch_nets

    ours = np.concatenate([model.predict(x[s : s + batch]) for s in range(0, len(x), batch)])
    theirs = torch_nets.predict(twin, x, batch)
    return {"same_class": int(np.sum(ours.argmax(axis=1) == theirs.argmax(axis=1))),
            "max_abs_diff": float(np.max(np.abs(ours - theirs))),
            "score_scale": float(np.max(np.abs(theirs)))}


def machine(job: dict) -> dict:
    """Large-GEMM throughput: best of 5 2048×2048 float32 products, NumPy (and PyTorch)."""
    import torch

    n, size = job["threads"], 2048
    torch.set_num_threads(n)
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    out = np.empty_like(a)
    flops = 2 * size**3
    with threadpool_limits(n, user_api="blas"):
        np.matmul(a, a, out=out)
        numpy_best = min(_best(lambda: np.matmul(a, a, out=out), 5))
        ta = torch.from_numpy(a)
        ta @ ta
        torch_best = min(_best(lambda: ta @ ta, 5))
        blas = _blas()
    return {"gemm_gflops": flops / numpy_best / 1e9, "torch_gemm_gflops": flops / torch_best / 1e9,
            "blas": blas, "torch_cpu_capability": torch.backends.cpu.get_cpu_capability()}


def _layerwise_trainer(spec, model, x, t, seed):
    from layerwise.optim import make_optimizer
    from layerwise.train import Trainer

    optimizer = make_optimizer(spec.optimizer, lr=spec.lr)
    # No test split and a one-image training-accuracy sample: the timed epoch is the batch
    # loop; accuracy is measured outside the timing.
    return Trainer(model, optimizer, x, t, epochs=1, batch_size=spec.batch_size, seed=seed,
                   train_eval_samples=1, progress=False, log=None)


def _chunk_bytes(model, x_test, threads: int) -> dict:
    """The evaluation chunk layerwise's predict takes here on ``threads`` threads, and where
    its size came from."""
    from layerwise.kernels.cache_sizes import inference_chunk_bytes, inference_share_parts, last_level_cache

    cache = last_level_cache()
    return {"bytes": model.inference_chunk_bytes or inference_chunk_bytes(threads),
            "images": model.inference_batch_size(x_test.shape[1:], x_test.dtype.itemsize, threads),
            "last_level_cache": cache, "share_parts": inference_share_parts(threads)}


def _conv_chunk(model, batch: int, sample_shape: tuple[int, ...]) -> dict | None:
    """The im2col chunk layerwise's convolutions take here (``cache_sizes.conv_chunk_bytes``), and
    how many images of the network's largest col it holds at its training batch; None for a
    network without convolutions."""
    from layerwise.kernels.cache_sizes import conv_chunk_bytes, last_level_cache
    from layerwise.kernels.conv import images_per_chunk
    from layerwise.layers import Convolution

    shape, largest = (1, *sample_shape), 0
    for layer in model:
        if isinstance(layer, Convolution):
            _, C, FH, FW = layer.params["W"].shape
            col_values = int(np.prod(layer.output_shape(shape)[2:])) * C * FH * FW  # one image's im2col
            largest = max(largest, col_values * layer.params["W"].dtype.itemsize)
        shape = layer.output_shape(shape)
    if not largest:
        return None
    return {"bytes": conv_chunk_bytes(), "images": images_per_chunk(largest, batch), "batch": batch,
            "last_level_cache": last_level_cache()}


def _layerwise_epoch(trainer) -> float:
    trainer.epochs = trainer.epoch + 1
    _settle()
    start = time.perf_counter()
    trainer.fit()
    return time.perf_counter() - start


def _warm_up(spec, x, t, seed, steps: int) -> None:
    """``steps`` steps of both implementations on throwaway twins: BLAS and OpenMP threads
    started and lazy initialisation done before anything is timed."""
    from . import torch_nets

    n = steps * spec.batch_size
    model = spec.build(seed)
    tmodel = torch_nets.to_torch(model)
    _layerwise_epoch(_layerwise_trainer(spec, model, x[:n], t[:n], seed))
    run = torch_nets.TorchRun(tmodel, torch_nets.make_optimizer(spec.optimizer, tmodel.parameters(), spec.lr),
                              x[:n], t[:n], spec.batch_size)
    run.epoch(np.random.default_rng(seed).permutation(n))


def _agreement(spec, x, t, seed, steps: int) -> float:
    """Train float64 twins ``steps`` steps from the same weights on the same batches, with the
    same dropout masks (``torch_nets.SameMaskDropout``), and return how far apart their weights
    end up (max |Δ| / max |w|). Float64 because Adam turns float32 rounding in a near-zero
    gradient into a full ±lr step; in float64 a tiny number says both implementations compute
    the same thing."""
    from . import torch_nets

    n = steps * spec.batch_size
    model = spec.build(seed).astype(np.float64)
    # Biases off zero: with the book's zero biases a convolution's output over a window of
    # zeros is exactly 0 by im2col and ±1e-17 by Winograd, and the ReLU passes the gradient
    # of one and not of the other (both are subgradients at the kink). On DeepConvNet that
    # made the twins' first bias steps differ by 2·lr: with the same dropout masks its check
    # read 4e-3 after 5 steps from zero biases, 2e-12 to 7e-12 from these.
    biases = np.random.default_rng(seed)
    for layer in model:
        if "b" in layer.params:
            layer.params["b"][...] = biases.uniform(-0.01, 0.01, layer.params["b"].shape)
    tmodel = torch_nets.to_torch(model, same_masks=True).double()
    x64 = x[:n].astype(np.float64)
    _layerwise_epoch(_layerwise_trainer(spec, model, x64, t[:n], seed))
    run = torch_nets.TorchRun(tmodel, torch_nets.make_optimizer(spec.optimizer, tmodel.parameters(), spec.lr),
                              x64, t[:n], spec.batch_size)
    run.epoch(np.random.default_rng(seed).permutation(n))  # the Trainer's first permutation
    return torch_nets.weight_difference(model, tmodel)


def compare(job: dict) -> dict:
    import torch

    from . import torch_nets

    spec = NETS[job["net"]]
    threads, epochs, seed = job["threads"], job["epochs"], job["seed"]
    torch.set_num_threads(threads)
    load_start = os.getloadavg()
    x, t, x_test, t_test = _load(spec.flatten, spec.train_images)
    n = len(x)
    result: dict[str, Any] = {"net": spec.key, "title": spec.title, "threads": threads, "epochs": epochs,
                              "train_images": n}
    with threadpool_limits(threads, user_api="blas"):
        result["blas"] = _blas()
        _warm_up(spec, x, t, seed, job["warmup_steps"])
        result["weight_difference_f64"] = _agreement(spec, x, t, seed, job["check_steps"])

        model = spec.build(seed)
        tmodel = torch_nets.to_torch(model)  # same initial weights
        trainer = _layerwise_trainer(spec, model, x, t, seed)
        # How the Trainer uses the threads, measured (or kept) now, before anything is timed;
        # measured whatever the length of the run (a user's one-epoch run would not measure).
        from layerwise.kernels import tuning  # like the other layerwise imports here, inside the job

        tuning.MIN_WORK_TO_MEASURE = 0
        plan = trainer.plan_threads()
        result["lw_thread_plan"] = {"plan": plan.plan, "how": plan.how, "ms_per_step": plan.ms_per_step,
                                    "describe": plan.describe()}
        result["lw_inference_chunk_bytes"] = _chunk_bytes(model, x_test, threads)
        result["lw_conv_chunk"] = _conv_chunk(model, spec.batch_size, x.shape[1:])
        run = torch_nets.TorchRun(tmodel, torch_nets.make_optimizer(spec.optimizer, tmodel.parameters(), spec.lr),
                                  x, t, spec.batch_size)
        # The Trainer draws each epoch's permutation from default_rng(seed), one
        # permutation(n) after another; PyTorch gets the same sequence.
        orders = np.random.default_rng(seed)
        lw_times, pt_times, lw_loss, pt_loss, lw_acc, pt_acc, shared = [], [], [], [], [], [], []
        for epoch in range(epochs):
            order = orders.permutation(n)
            # Alternate who goes first, so drift in the machine's load hits both alike.
            for impl in ("layerwise", "torch") if epoch % 2 == 0 else ("torch", "layerwise"):
                if impl == "layerwise":
                    before = dict(trainer.shared_thread_steps)
                    lw_times.append(_layerwise_epoch(trainer))
                    # How many of the epoch's steps ran on each BLAS thread count (CoreShare)
                    shared.append({str(k): v - before.get(k, 0) for k, v in trainer.shared_thread_steps.items()
                                   if v - before.get(k, 0)})
                    lw_loss.append(trainer.history.epochs[-1]["train_loss"])
                else:
                    _settle()
                    start = time.perf_counter()
                    losses = run.epoch(order)
                    pt_times.append(time.perf_counter() - start)
                    pt_loss.append(float(np.mean(losses)))
            # Test accuracy after every epoch, outside the timing.
            lw_acc.append(model.accuracy(x_test, t_test))
            pt_acc.append(torch_nets.accuracy(tmodel, x_test, t_test))
        result.update(
            lw_epoch_s=lw_times, torch_epoch_s=pt_times, lw_train_loss=lw_loss, torch_train_loss=pt_loss,
            lw_test_acc=lw_acc, torch_test_acc=pt_acc, lw_blas_threads_by_epoch=shared,
        )

        # Inference on the test images, in batches, alternating, several repetitions, against a
        # PyTorch twin of layerwise's trained network (its very weights, not the ones PyTorch
        # trained): both compute one function, so the predictions can be checked to agree.
        twin = torch_nets.to_torch(model).eval()
        xt = torch.from_numpy(x_test)
        inference = []
        for bs in job["infer_batches"]:

            def lw_predict(bs=bs):
                for s in range(0, len(x_test), bs):
                    model.predict(x_test[s : s + bs])

            def pt_predict(bs=bs):
                with torch.inference_mode():
                    for s in range(0, len(xt), bs):
                        twin(xt[s : s + bs])

            lw_predict(), pt_predict()
            agreement = _predictions_agree(model, twin, x_test, bs)
            lw_inf, pt_inf = [], []
            for _ in range(job["infer_reps"]):
                lw_inf += _best(lw_predict, 1)
                pt_inf += _best(pt_predict, 1)
            # The products alone, at this batch size: no implementation can beat this time
            # (the 10,000 images in ceil(10,000 / bs) forward passes, GEMMs only).
            forward = [g for g in step_gemms(model, bs, x.shape[1:]) if g.what.endswith("forward")]
            _settle()
            floor_s = gemm_floor(forward, math.ceil(len(x_test) / bs), max(1, job["floor_reps"] // 10))
            # ... and the arrays a prediction writes besides (outputs, each convolution's col)
            _settle()
            copies_s = copy_floor(step_copies(model, bs, x.shape[1:], forward_only=True), math.ceil(len(x_test) / bs),
                                  max(1, job["floor_reps"] // 10), threads, batch=bs)
            inference.append({"batch": bs, "lw_s": lw_inf, "torch_s": pt_inf, "gemm_floor_s": floor_s,
                              "copy_floor_s": copies_s, **agreement})
        result.update(inference=inference, infer_n=len(x_test))

        sample_shape = x.shape[1:]
        gemms = step_gemms(model, spec.batch_size, sample_shape)
        result["epoch_gflop"] = epoch_flops(model, n, spec.batch_size, sample_shape) / 1e9
        result["infer_gflop"] = inference_flops(model, len(x_test), sample_shape) / 1e9
        _settle()
        result["gemm_floor_s"] = gemm_floor(gemms, n / spec.batch_size, job["floor_reps"])
        _settle()
        result["copy_floor_s"] = copy_floor(step_copies(model, spec.batch_size, sample_shape), n / spec.batch_size,
                                            job["floor_reps"], threads, batch=spec.batch_size)
        # The convolutions' ways (im2col or Winograd) as kept on this machine after the run
        # (kernels.tuning.conv_way), for the report; a tree before that choice has none.
        result["lw_conv_ways"] = getattr(tuning, "kept_ways", dict)()
        # ... and the block sizes of their tall products (kernels.tuning.product_blocks)
        result["lw_product_blocks"] = getattr(tuning, "kept_blocks", dict)()
        # ... and the sizes from which work was split across owned threads (kernels.split_sizes)
        try:
            from layerwise.kernels import split_sizes
        except ImportError:  # a tree before the sizes were measured
            result["lw_split_sizes"] = {}
        else:
            result["lw_split_sizes"] = split_sizes.kept_sizes()
    result["loadavg"] = [load_start, os.getloadavg()]
    return result


def memory(job: dict) -> dict:
    """Peak RSS of loading the data and training ``epochs`` epochs with one implementation."""
    spec = NETS[job["net"]]
    threads, impl = job["threads"], job["impl"]
    with threadpool_limits(threads, user_api="blas"):
        base = _rss_mb()
        x, t, _, _ = _load(spec.flatten, spec.train_images)
        data = _rss_mb()
        model = spec.build(job["seed"])
        start = time.perf_counter()
        if impl == "layerwise":
            trainer = _layerwise_trainer(spec, model, x, t, job["seed"])
            trainer.epochs = job["epochs"]
            trainer.fit()
        else:
            import torch

            from . import torch_nets

            torch.set_num_threads(threads)
            tmodel = torch_nets.to_torch(model)
            run = torch_nets.TorchRun(
                tmodel, torch_nets.make_optimizer(spec.optimizer, tmodel.parameters(), spec.lr),
                x, t, spec.batch_size)
            orders = np.random.default_rng(job["seed"])
            for _ in range(job["epochs"]):
                run.epoch(orders.permutation(len(x)))
        seconds = time.perf_counter() - start
    # A worker process's memory counts as layerwise's: its peak added to this process's (each
    # process's peak, even if they came at different moments: an upper bound).
    own, workers = _peak_rss_mb(), _workers_peak_rss_mb()
    return {"net": spec.key, "impl": impl, "threads": threads, "peak_rss_mb": own + workers,
            "own_peak_rss_mb": own, "workers_peak_rss_mb": workers, "rss_at_start_mb": base,
            "rss_after_data_mb": data, "seconds": seconds, "torch_imported": "torch" in sys.modules}


def accuracy(job: dict) -> dict:
    """Test accuracy after every epoch for several seeds (untimed): one seed's run is a noisy
    sample, since float32 rounding differs between the implementations and training amplifies
    it (Adam most of all); the means over seeds are what should agree. Both sides draw the
    same dropout masks (``torch_nets.SameMaskDropout``), so that the gap measures the
    implementations and not two random generators."""
    import torch

    from . import torch_nets

    spec = NETS[job["net"]]
    threads = job["threads"]
    torch.set_num_threads(threads)
    # All 60,000 training images, DeepConvNet's too (its timed "epochs" are 20,000): after 600
    # steps its test accuracy still climbs ~1.5 points an epoch, and the seeds' gaps ranged from
    # -1.7 to +1.6 points across runs; after 1,800 (3 epochs, ~8 minutes for both at 2 threads)
    # from -0.78 to +0.44, a gap of means of -0.07 (results/2026-12-06-same-masks/skylakex-2.txt;
    # Haswell kernels: -0.58 to +0.19, -0.16).
    x, t, x_test, t_test = _load(spec.flatten)
    runs = []
    with threadpool_limits(threads, user_api="blas"):
        for seed in job["seeds"]:
            model = spec.build(seed)
            tmodel = torch_nets.to_torch(model, same_masks=True)
            trainer = _layerwise_trainer(spec, model, x, t, seed)
            run = torch_nets.TorchRun(tmodel, torch_nets.make_optimizer(spec.optimizer, tmodel.parameters(),
                                                                        spec.lr), x, t, spec.batch_size)
            orders = np.random.default_rng(seed)
            lw_acc, pt_acc = [], []
            for _ in range(job["epochs"]):
                _layerwise_epoch(trainer)
                run.epoch(orders.permutation(len(x)))
                lw_acc.append(model.accuracy(x_test, t_test))
                pt_acc.append(torch_nets.accuracy(tmodel, x_test, t_test))
            runs.append({"seed": seed, "lw_test_acc": lw_acc, "torch_test_acc": pt_acc})
    return {"net": spec.key, "threads": threads, "epochs": job["epochs"], "runs": runs}


JOBS = {"machine": machine, "compare": compare, "memory": memory, "accuracy": accuracy}


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    result = JOBS[job["job"]](job)
    result["job"] = job["job"]
    print(json.dumps(result, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

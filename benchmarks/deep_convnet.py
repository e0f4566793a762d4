"""DeepConvNet: inference on the 10,000 MNIST-format test images against PyTorch CPU eager
(same weights, same threads, alternating, median of repeats), and the memory of one training
step at batch 100.

    python -m benchmarks.deep_convnet [--threads 1 2] [--reps 3] [--batch 20 100 1000] [--model-file F]

Both implementations get the same batches; layerwise's predict splits a batch larger than
``inference_batch_size`` (18 images for DeepConvNet in float32) into cache-sized chunks
itself. The last line per thread count compares each implementation at its best batch size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc

import numpy as np


def step_memory(model, x: np.ndarray, t: np.ndarray) -> tuple[int, int]:
    """(bytes the convolutions keep for backward during a step, traced peak of the step).
    The convolutions keep their inputs, not im2col matrices: ``kernels.conv`` makes those
    a few images at a time and lets them go."""
    from layerwise.layers import Convolution

    model.gradient(x, t)  # warm-up: the first step allocates optimizer-free caches too
    tracemalloc.start()
    model.gradient(x, t)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    kept = sum(layer.x.nbytes for layer in model if isinstance(layer, Convolution))
    return kept, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch", type=int, nargs="+", default=[20, 100, 1000])
    parser.add_argument("--model-file", default=None,
                        help="a trained DeepConvNet (.safetensors; default: a freshly initialised one)")
    args = parser.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    import layerwise as lw

    from .torch_nets import to_torch
    from .worker import _settle

    (_, _), (x, t) = lw.load_fashion_mnist(flatten=False, download=False, progress=False)
    if args.model_file:
        model = lw.load(args.model_file)
    else:
        model = lw.DeepConvNet(seed=0, dropout_mode="inverted", final_dropout=False, dtype=np.float32)
    twin = to_torch(model).eval()
    with torch.no_grad():
        same = np.array_equal(model.predict(x[:500]).argmax(1), twin(torch.from_numpy(x[:500])).argmax(1).numpy())
    print(f"DeepConvNet float32, {len(x)} test images; predictions equal torch: {same}; "
          f"layerwise chunk {model.inference_batch_size(x.shape[1:], x.dtype.itemsize)} images")
    print(f"load average {os.getloadavg()[0]:.2f}")
    xt = torch.from_numpy(x)

    def run_layerwise(batch: int) -> None:
        for i in range(0, len(x), batch):
            model.predict(x[i : i + batch])

    def run_torch(batch: int) -> None:
        with torch.inference_mode():
            for i in range(0, len(x), batch):
                twin(xt[i : i + batch])

    print("threads  batch  layerwise s  pytorch s  ratio lw/PT  layerwise img/s  pytorch img/s")
    for n in args.threads:
        torch.set_num_threads(n)
        best = {"lw": [], "pt": []}
        with threadpool_limits(n, user_api="blas"):
            for batch in args.batch:
                times = {"lw": [], "pt": []}
                for rep in range(args.reps):
                    order = [("lw", run_layerwise), ("pt", run_torch)]
                    for key, fn in order if rep % 2 == 0 else order[::-1]:
                        _settle()  # the other implementation's idle threads stop spinning first
                        start = time.perf_counter()
                        fn(batch)
                        times[key].append(time.perf_counter() - start)
                lw_s, pt_s = statistics.median(times["lw"]), statistics.median(times["pt"])
                best["lw"].append((lw_s, batch))
                best["pt"].append((pt_s, batch))
                print(f"{n:>7}  {batch:>5}  {lw_s:11.2f}  {pt_s:9.2f}  {lw_s / pt_s:11.2f}  {len(x) / lw_s:15.0f}  "
                      f"{len(x) / pt_s:13.0f}")
        (lw_s, lw_b), (pt_s, pt_b) = min(best["lw"]), min(best["pt"])
        print(f"{n:>7}  best   {lw_s:11.2f}  {pt_s:9.2f}  {lw_s / pt_s:11.2f}  (layerwise at batch {lw_b}, "
              f"PyTorch at batch {pt_b})")
    kept, peak = step_memory(model, x[:100], t[:100])
    print(f"one training step at batch 100: the convolutions keep {kept / 2**20:.1f} MiB for backward; "
          f"traced peak of the step {peak / 2**20:.1f} MiB")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

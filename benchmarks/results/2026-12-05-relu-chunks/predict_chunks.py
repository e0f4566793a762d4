"""DeepConvNet's evaluation-mode predict over 2,000 random images (time scaled to 10,000),
at batch 100 and 1000, with predict's chunk set to a number of images (each thread's part in
chunks that size on 2 threads), alternating sizes round by round, median of 7 rounds. The
thread count is the first argument.

    env -u OPENBLAS_CORETYPE python benchmarks/results/2026-12-05-relu-chunks/predict_chunks.py 1

Output: predict_chunks-skylakex-1.txt, predict_chunks-skylakex-2.txt.
"""

import statistics
import sys
import time

import numpy as np

import layerwise as lw

threads = int(sys.argv[1])
lw.set_num_threads(threads)
net = lw.DeepConvNet(dtype=np.float32, seed=0)
x = np.random.default_rng(0).random((2000, 1, 28, 28), dtype=np.float32)
per_image = net.workspace_per_sample((1, 28, 28)) * 4
print(f"{threads} thread(s); the rule's chunk here: {net.inference_batch_size((1, 28, 28), 4, threads)} images")


def run(batch: int, chunk: int) -> float:
    net.inference_chunk_bytes = chunk * per_image
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        net.predict(x[i : i + batch])
    return (time.perf_counter() - start) * 10000 / len(x)


times: dict[tuple[int, int], list[float]] = {}
for _ in range(7):
    for batch in (100, 1000):
        for chunk in (18, 28, 42, 62, 83, 100, 125, 250):
            if chunk < batch:
                times.setdefault((batch, chunk), []).append(run(batch, chunk))
for (batch, chunk), seconds in times.items():
    median_ms = statistics.median(seconds) * 1e3
    print(f"batch {batch:4d}, chunks of at most {chunk:3d} images: {median_ms:6.0f} ms per 10,000")

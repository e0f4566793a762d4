"""DeepConvNet evaluation on 2,000 random images at several chunk sizes (the bytes of the
largest temporary per chunk, ``Sequential.inference_chunk_bytes``), at 1 and 2 threads,
3 rounds alternating the sizes; prints the median per size.

Run from the repository: ``python benchmarks/results/2026-12-04-any-machine/chunk_sizes.py``.
"""

import time

import numpy as np
from threadpoolctl import threadpool_limits

import layerwise as lw

model = lw.DeepConvNet(seed=0, dtype=np.float32)
x = np.random.default_rng(0).random((2000, 1, 28, 28), dtype=np.float32)
times: dict[tuple[int, int], list[float]] = {}
for threads in (1, 2):
    lw.set_num_threads(threads)
    with threadpool_limits(threads, user_api="blas"):
        for _ in range(3):
            for mib in (1, 2, 4, 8, 16, 32):
                model.inference_chunk_bytes = mib * 2**20
                start = time.perf_counter()
                model.predict(x)
                times.setdefault((threads, mib), []).append(time.perf_counter() - start)
for (threads, mib), values in sorted(times.items()):
    model.inference_chunk_bytes = mib * 2**20
    images = model.inference_batch_size((1, 28, 28), 4)
    print(f"threads {threads}  chunk {mib:2d} MiB ({images:3d} images)  median {np.median(values) * 1e3:6.1f} ms "
          f"per 2,000 images  {[round(v * 1e3) for v in values]}")

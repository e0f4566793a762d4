"""DeepConvNet training steps (batch 100, random images) at several convolution chunk sizes
(``kernels.tuning.conv_chunk_bytes``, the bytes of im2col a convolution makes at a time), at 1
thread and on 2 owned threads, 5 rounds alternating the sizes; prints the median ms a step.

Run from the repository: ``python benchmarks/results/2026-12-04-conv-chunks/conv_chunk_sizes.py``
(prefix ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`` on a VM that sets them).
"""

import time

import numpy as np
from threadpoolctl import threadpool_limits

import layerwise as lw
from layerwise.kernels import threads, tuning

SIZES_KIB = (1024, 2048, 4096, 8192, 10**6)  # the last: the whole batch in one chunk
model = lw.DeepConvNet(seed=0, dtype=np.float32)
rng = np.random.default_rng(0)
x, t = rng.random((100, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 100)
for n in (1, 2):
    lw.set_num_threads(n)
    times: dict[int, list[float]] = {}
    with threads.owned_threads() if n > 1 else threadpool_limits(1, user_api="blas"):
        for _ in range(5):
            for kib in SIZES_KIB:
                tuning.conv_chunk_bytes = lambda kib=kib: kib * 1024
                model.gradient(x, t)  # warm: this size's arrays allocated once
                start = time.perf_counter()
                for _ in range(10):
                    model.gradient(x, t)
                times.setdefault(kib, []).append((time.perf_counter() - start) / 10 * 1e3)
    print(f"{n} thread(s):", ", ".join(
        f"{'whole batch' if kib == 10**6 else f'{kib // 1024} MiB'} {np.median(v):.1f} ms" for kib, v in times.items()))

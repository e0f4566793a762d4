"""DeepConvNet predict on 2,000 random images in batches of 100, at several sizes of predict's
own chunk (``Sequential.inference_chunk_bytes``; the rule's is 8 MiB here, 18 images of the
first convolution's im2col), 1 and 2 threads, median of 3 alternating rounds, ms.

Checked because the convolutions now make their im2col a few images at a time themselves
(``kernels.conv``), so predict's chunks, sized by that col, might be smaller than they need to
be. They are not: on both kernel sets 8-32 MiB are within a few per cent of each other at 1 and
2 threads (outputs beside this file). At 64 MiB a batch of 100 is one chunk, and on 2 threads it
then runs on one Python thread (the convolutions' chunks split, the rest does not): 35 % slower.

Run from the repository: ``python benchmarks/results/2026-12-05-batch-parts/predict_chunk_sizes.py``
(prefix ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`` on a VM that sets them).
"""

import time

import numpy as np
from threadpoolctl import threadpool_limits

import layerwise as lw

net = lw.DeepConvNet(seed=0, dropout_mode="inverted", final_dropout=False, dtype=np.float32)
x = np.random.default_rng(0).random((2000, 1, 28, 28), dtype=np.float32)
SIZES_MIB = (4, 8, 16, 32, 64)
for threads in (1, 2):
    # BLAS limited as the benchmark runner limits it: a predict that runs its batch whole does
    # not apply set_num_threads to BLAS (found here; see the closing note of 2026-12-05).
    limits = threadpool_limits(threads, user_api="blas")
    lw.set_num_threads(threads)
    times: dict[int, list[float]] = {mib: [] for mib in SIZES_MIB}
    images: dict[int, int] = {}
    for round_ in range(3):
        for mib in SIZES_MIB if round_ % 2 else SIZES_MIB[::-1]:
            net.inference_chunk_bytes = mib * 2**20
            images[mib] = net.inference_batch_size((1, 28, 28), 4)
            for i in range(0, 400, 100):  # warm: this size's arrays allocated once
                net.predict(x[i:i + 100])
            start = time.perf_counter()
            for i in range(0, len(x), 100):
                net.predict(x[i:i + 100])
            times[mib].append((time.perf_counter() - start) * 1e3)
    limits.restore_original_limits()
    print(f"{threads} thread(s):", ", ".join(
        f"{mib} MiB ({images[mib]} images) {np.median(v):.0f} ms" for mib, v in times.items()))
lw.set_num_threads(None)

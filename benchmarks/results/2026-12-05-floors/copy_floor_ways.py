"""DeepConvNet's copy floor per training step (batch 100, float32, 1 thread), each array copied
whole (the runner before 2026-12-05's floors) and chunk by chunk in cache (``nets.copy_floor``
now), and each array on its own in chunks.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/results/2026-12-05-floors/copy_floor_ways.py

Output: copy_floor_ways-skylakex.txt.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.nets

import layerwise as lw
from benchmarks.nets import copy_floor, gemm_floor, step_copies, step_gemms
from layerwise.kernels.conv import images_per_chunk

lw.set_num_threads(1)
model = lw.DeepConvNet(seed=0, dropout_mode="inverted", final_dropout=False, dtype=np.float32)
copies = step_copies(model, 100, (1, 28, 28))
whole = copy_floor(copies, 1, 20)
chunked = copy_floor(copies, 1, 20, batch=100)
print(f"copy floor per step: whole arrays {whole * 1e3:.2f} ms, chunk by chunk {chunked * 1e3:.2f} ms")
print(f"GEMM floor per step {gemm_floor(step_gemms(model, 100, (1, 28, 28)), 1, 20) * 1e3:.2f} ms")
print("each array alone, chunk by chunk:")
for what, n in copies:
    per_image = n // 100
    images = images_per_chunk(per_image * 4, 100)
    alone = copy_floor([(what, per_image * images)], 1, 50) * 100 / images
    print(f"  {what:70s} {alone * 1e3:.3f} ms")

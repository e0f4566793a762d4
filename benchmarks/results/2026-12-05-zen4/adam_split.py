"""A 784-512-512-10 training step (batch 128, Adam) on 2 threads with BLAS on both, Adam's update
run whole or split across layerwise's two threads while BLAS keeps both (its idle workers
spinning), alternating, 3 rounds of 300 steps each.

    python benchmarks/results/2026-12-05-zen4/adam_split.py

Output: adam_split-skylakex.txt.
"""

import sys
import time
from pathlib import Path

import numpy as np

import layerwise as lw
from layerwise.kernels import threads
from layerwise.optim import make_optimizer

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.nets
from benchmarks.nets import NETS

lw.set_num_threads(2)
model = NETS["mlp-wide"].build(0)
optimizer = make_optimizer("adam", lr=1e-3)
rng = np.random.default_rng(0)
x, t = rng.random((128, 784), dtype=np.float32), rng.integers(0, 10, 128)


def step(split: bool) -> None:
    grads = model.gradient(x, t)
    if not split:
        optimizer.update(model.params, grads)
        return
    threads._owned = 2  # what owned_threads sets, without limiting BLAS to one thread
    try:
        optimizer.update(model.params, grads)
    finally:
        threads._owned = 0


for round_ in range(3):
    for split in (False, True):
        for _ in range(50):
            step(split)
        start = time.perf_counter()
        for _ in range(300):
            step(split)
        ms = (time.perf_counter() - start) / 300 * 1e3
        print(f"round {round_}: {'split' if split else 'whole'} {ms:.3f} ms a step")

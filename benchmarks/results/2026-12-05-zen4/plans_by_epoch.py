"""Whole training epochs of one benchmark network on 2 threads under each thread plan forced
(kernels.tuning: blas, split, owned), alternating, 4 rounds, after a 0.25 s busy pause each, as
the runner times an epoch: whether the plan the Trainer measured and kept wins over whole epochs.

    python benchmarks/results/2026-12-05-zen4/plans_by_epoch.py mlp-wide blas,split,owned

Output: plans_by_epoch-mlp-wide-skylakex.txt.
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np

import layerwise as lw
from layerwise.kernels.tuning import ThreadPlan
from layerwise.optim import make_optimizer
from layerwise.train import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks.nets
from benchmarks.nets import NETS

net, plans = sys.argv[1], sys.argv[2].split(",")
spec = NETS[net]
lw.set_num_threads(2)
(x, t), _ = lw.load_fashion_mnist(flatten=spec.flatten, download=False, progress=False)
x = x.astype(np.float32)
if spec.train_images:
    x, t = x[: spec.train_images], t[: spec.train_images]
trainers = {}
for plan in plans:
    trainer = Trainer(spec.build(0), make_optimizer(spec.optimizer, lr=spec.lr), x, t, epochs=1,
                      batch_size=spec.batch_size, seed=0, train_eval_samples=1, progress=False, log=None)
    trainer.thread_plan = ThreadPlan(plan, 2, "forced")
    trainer.fit()  # a first epoch, untimed
    trainers[plan] = trainer
seconds: dict[str, list[float]] = {plan: [] for plan in plans}
for _ in range(4):
    for plan in plans:
        trainer = trainers[plan]
        trainer.epochs = trainer.epoch + 1
        pause_end = time.perf_counter() + 0.25
        while time.perf_counter() < pause_end:
            pass
        start = time.perf_counter()
        trainer.fit()
        seconds[plan].append(time.perf_counter() - start)
for plan in plans:
    print(f"{net} {plan}: " + " ".join(f"{s:.2f}" for s in seconds[plan])
          + f" s an epoch, median {statistics.median(seconds[plan]):.2f}")

"""The thread-plan check for real (``kernels.measuring.cores_as_usual``): the usual speed-up of
BLAS on 2 threads measured on the quiet machine, then 784-512-512-10's plans measured while
another process spins on a core (not kept: the shape rule's plan serves), then quiet again
(measured and kept). A fresh cache folder.

    python benchmarks/results/2026-12-06-split-sizes/plan_check.py

Output: plan_check-skylakex.txt.
"""

import os
import subprocess
import sys
import tempfile
import time

os.environ["LAYERWISE_CACHE_DIR"] = tempfile.mkdtemp(prefix="plan-check-")

import numpy as np

import layerwise as lw
from layerwise.kernels import kept_choices, measuring, tuning
from layerwise.optim import make_optimizer
from layerwise.train import Trainer


def main() -> None:
    (x, t), _ = lw.load_fashion_mnist(flatten=True, download=False, progress=False)
    x, t = x[:6000].astype(np.float32), t[:6000]
    tuning.MIN_WORK_TO_MEASURE = 0  # a short run measures too

    def plan(situation: str) -> None:
        model = lw.MultiLayerNet(784, [512, 512], 10, weight_init_std="relu", seed=0, dtype=np.float32)
        trainer = Trainer(model, make_optimizer("adam", lr=1e-3), x, t, epochs=1, batch_size=128, progress=False,
                          log=None)
        chosen = trainer.plan_threads()
        print(f"- {situation}: {chosen.plan} ({chosen.how})")

    usual = measuring.blas_speedup(2)
    measuring.cores_as_usual(kept_choices.machine_signature(), 2, usual)
    print(f"- quiet: BLAS on 2 threads {usual:.2f}x one thread (kept as the usual)")
    spinning = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        print(f"- another process spinning: {measuring.blas_speedup(2):.2f}x")
        plan("784-512-512-10's plans measured meanwhile")
    finally:
        spinning.kill()
        spinning.wait()
    time.sleep(0.5)
    plan("quiet again")


if __name__ == "__main__":
    main()

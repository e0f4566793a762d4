"""Alone, does sharing the cores cost anything? One process, one Trainer, epochs alternating
between threads left to layerwise (``CoreShare`` checks between steps) and a fixed 2.

    python benchmarks/results/2026-12-04-under-load/alone_share_vs_fixed.py mlp-wide

A fixed number is the code path before issue 20 (BLAS on 2 threads for the run); prints the
per-pair shared/fixed time ratios and the steps run on each number of BLAS threads.
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import layerwise as lw
from benchmarks.nets import NETS
from benchmarks.worker import _layerwise_trainer, _load

STEPS = {"mlp-small": 1200, "mlp-wide": 240}


def main(net: str) -> None:
    spec = NETS[net]
    x, t, _, _ = _load(spec.flatten)
    n = STEPS[net] * spec.batch_size
    trainer = _layerwise_trainer(spec, spec.build(0), x[:n], t[:n], 0)

    def epoch() -> float:
        start = time.perf_counter()
        trainer.epochs = trainer.epoch + 1
        trainer.fit()
        return time.perf_counter() - start

    epoch()
    times: dict[str, list[float]] = {"fixed": [], "shared": []}
    for i in range(8):
        for mode in ("fixed", "shared") if i % 2 == 0 else ("shared", "fixed"):
            lw.set_num_threads(2 if mode == "fixed" else None)
            times[mode].append(epoch())
    lw.set_num_threads(None)
    ratios = [s / f for s, f in zip(times["shared"], times["fixed"], strict=True)]
    print(f"{net}: fixed {statistics.median(times['fixed']):.4f} s, shared {statistics.median(times['shared']):.4f} s; "
          f"shared/fixed per pair: median {statistics.median(ratios):.3f} ({min(ratios):.2f}-{max(ratios):.2f}); "
          f"steps per BLAS thread count {dict(trainer.shared_thread_steps)}")


if __name__ == "__main__":
    main(sys.argv[1])

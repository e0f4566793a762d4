"""SimpleConvNet's Trainer epochs of 40 steps (Fashion-MNIST, batch 100, Adam 1e-3, float32)
with the fused run's products through ``kernels.blocks`` (``rows_dot``, ``inner_dot``: "new")
and as plain ``np.dot`` ("old"), in one process, the two taking turns for 10 rounds, median
ms per epoch; the benchmark's Trainer (its thread plan as the machine keeps it).

    python benchmarks/results/2026-12-06-blocks/fused_ab.py 1
    python benchmarks/results/2026-12-06-blocks/fused_ab.py 2
    OPENBLAS_CORETYPE=Haswell OPENBLAS_L2_SIZE=512 python benchmarks/results/2026-12-06-blocks/fused_ab.py 2

Output: fused_ab.txt.
"""

import statistics
import sys
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from layerwise.kernels import fused
from layerwise.kernels.memory import keep_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository, for benchmarks
from benchmarks.nets import NETS
from benchmarks.worker import _layerwise_epoch, _layerwise_trainer, _load


def main() -> None:
    keep_freed_memory()
    threads = int(sys.argv[1])
    spec = NETS["convnet"]
    x, t, _, _ = _load(spec.flatten)
    ways = {
        "new": (fused.rows_dot, fused.inner_dot),
        "old": (lambda a, b, out=None: np.dot(a, b, out=out), lambda a, b: np.dot(a.T, b)),
    }
    with threadpool_limits(threads, user_api="blas"):
        trainer = _layerwise_trainer(spec, spec.build(0), x[:4000], t[:4000], 0)
        _layerwise_epoch(trainer)  # warm-up: threads started, block sizes measured or read
        spent: dict[str, list[float]] = {way: [] for way in ways}
        for r in range(10):
            for way in ways if r % 2 else reversed(ways):
                fused.rows_dot, fused.inner_dot = ways[way]
                spent[way].append(_layerwise_epoch(trainer))
    ms = {way: 1e3 * statistics.median(times) for way, times in spent.items()}
    print(threads, {way: round(v, 1) for way, v in ms.items()}, "new/old", round(ms["new"] / ms["old"], 3))


if __name__ == "__main__":
    main()

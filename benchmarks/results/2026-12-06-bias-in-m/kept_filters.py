"""DeepConvNet's predict with the filters' transform reused (``kernels.winograd.kept_filter_transform``)
against made anew in every chunk (``filter_transform``), in one process, alternating rounds
(who goes first alternates too), on 2,000 images in batches of 8, 20, 100 and 1000.

    python benchmarks/results/2026-12-06-bias-in-m/kept_filters.py [--threads 1] [--rounds 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

parser = argparse.ArgumentParser()
parser.add_argument("--threads", default="1")
parser.add_argument("--rounds", type=int, default=8)
args = parser.parse_args()
os.environ["OPENBLAS_NUM_THREADS"] = args.threads  # before NumPy

import numpy as np  # noqa: E402

import layerwise as lw  # noqa: E402
from layerwise.kernels import winograd  # noqa: E402
from layerwise.kernels.memory import keep_freed_memory  # noqa: E402


def main() -> None:
    keep_freed_memory()
    model = lw.DeepConvNet(seed=0, dropout_mode="inverted", final_dropout=False, dtype=np.float32)
    x = np.random.default_rng(0).random((2000, 1, 28, 28), dtype=np.float32)
    kept = winograd.kept_filter_transform
    ways = {"kept": kept, "made": winograd.filter_transform}

    def predict(batch: int) -> None:
        for start in range(0, len(x), batch):
            model.predict(x[start : start + batch])

    print(f"DeepConvNet float32, 2,000 images, {args.threads} thread(s), {args.rounds} alternating rounds")
    print()
    print("| batch | made anew ms | kept ms | kept / made per round: median (min-max) |")
    print("|--:|--:|--:|--:|")
    for batch in (8, 20, 100, 1000):
        predict(batch)
        seconds: dict[str, list[float]] = {"kept": [], "made": []}
        for round_ in range(args.rounds):
            for way in ("kept", "made") if round_ % 2 else ("made", "kept"):
                winograd.kept_filter_transform = ways[way]
                start = time.perf_counter()
                predict(batch)
                seconds[way].append(time.perf_counter() - start)
        winograd.kept_filter_transform = kept
        ratios = [k / m for k, m in zip(seconds["kept"], seconds["made"], strict=True)]
        made, kept_ms = (statistics.median(seconds[way]) * 1e3 for way in ("made", "kept"))
        print(f"| {batch} | {made:.0f} | {kept_ms:.0f} | {statistics.median(ratios):.3f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}) |")


if __name__ == "__main__":
    main()

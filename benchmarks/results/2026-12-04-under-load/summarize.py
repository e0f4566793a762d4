"""The options tried for issue 20, one row per setting and network, from the raw runs here.

    python benchmarks/results/2026-12-04-under-load/summarize.py

Each JSON file is one ``python -m benchmarks.under_load --impls layerwise --reps 3
--lw-env SETTING --json FILE`` run of the code before the thread policy (4476415), with every
process in the runner's session (the benchmark's only mode then). Times are each situation's
median epoch relative to the same run's alone.
"""

import json
import statistics
from pathlib import Path

HERE = Path(__file__).parent
RUNS = [
    ("defaults.json", "OpenBLAS's defaults (today)"),
    ("to4.json", "OPENBLAS_THREAD_TIMEOUT=4"),
    ("to12.json", "OPENBLAS_THREAD_TIMEOUT=12"),
    ("to18.json", "OPENBLAS_THREAD_TIMEOUT=18"),
    ("mto20.json", "OPENBLAS_THREAD_TIMEOUT=20"),
    ("mto22.json", "OPENBLAS_THREAD_TIMEOUT=22"),
    ("nt1.json", "OPENBLAS_NUM_THREADS=1"),
    ("owned-wide.json", "MLP on owned threads (BLAS 1, layerwise splits)"),
]


def main() -> None:
    print("| setting | network | alone s/epoch | copies | python | numpy |")
    print("|---|---|--:|--:|--:|--:|")
    for name, title in RUNS:
        rows = json.loads((HERE / name).read_text())["rows"]
        median = {(r["net"], r["situation"]): statistics.median(r["epoch_s"]) for r in rows if r["impl"] == "layerwise"}
        for net in ("mlp-small", "mlp-wide", "convnet"):
            if (net, "alone") not in median:
                continue
            alone = median[(net, "alone")]
            cells = [f"{median[(net, s)] / alone:.2f}×" if (net, s) in median else ""
                     for s in ("copies", "python", "numpy")]
            print(f"| {title} | {net} | {alone:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

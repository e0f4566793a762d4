"""The before/after table of the runner runs saved in this folder (issue 17's speed check).

    python benchmarks/results/2026-12-03-redesign/compare_runs.py

For each measurement: layerwise/PyTorch time ratio (median over the run's alternating pairs) in
each of the two before and two after runs, and after/before paired by round.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

HERE = Path(__file__).parent
DCN_LINE = re.compile(r"\s+(\d)\s+(\d+|best)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)")


def runner_ratios(path: Path) -> dict[str, float]:
    out = {}
    for r in json.loads(path.read_text())["training"]:
        pairs = [lw / pt for lw, pt in zip(r["lw_epoch_s"], r["torch_epoch_s"], strict=True)]
        out[f"train {r['net']} {r['threads']}t"] = statistics.median(pairs)
        for inf in r["inference"]:
            pairs = [lw / pt for lw, pt in zip(inf["lw_s"], inf["torch_s"], strict=True)]
            out[f"infer {r['net']} {r['threads']}t batch {inf['batch']}"] = statistics.median(pairs)
    return out


def deep_convnet_ratios(path: Path) -> dict[str, float]:
    return {f"DeepConvNet infer {m[1]}t batch {m[2]}": float(m[5])
            for m in map(DCN_LINE.match, path.read_text().splitlines()) if m}


def main() -> None:
    rows: dict[str, dict[tuple[str, int], float]] = {}
    for side in ("before", "after"):
        for run in (1, 2):
            ratios = runner_ratios(HERE / f"{side}-{run}.json") | deep_convnet_ratios(HERE / f"dcn-{side}-{run}.txt")
            for key, value in ratios.items():
                rows.setdefault(key, {})[(side, run)] = value
    print("| measurement (lw/PT time) | before, runs 1 and 2 | after, runs 1 and 2 | after/before, mean of rounds |")
    print("|---|--:|--:|--:|")
    for key, v in rows.items():
        before, after = [v[("before", r)] for r in (1, 2)], [v[("after", r)] for r in (1, 2)]
        change = statistics.mean(a / b for a, b in zip(after, before, strict=True))
        print(f"| {key} | {before[0]:.2f}, {before[1]:.2f} | {after[0]:.2f}, {after[1]:.2f} | {change:.3f} |")


if __name__ == "__main__":
    main()

"""The speed targets of issue 21 against a saved run of the benchmark runner.

``python -m benchmarks.targets RUN.json`` prints one Markdown table: each target, layerwise's
figure at 1 and 2 threads, and whether it is met. Where it is not, the *floor* column says what
any implementation doing the same float32 products with NumPy's BLAS could reach at best on that
machine: for training, the GEMM floor over PyTorch's epoch (below it, the target is out of reach
for an im2col-based implementation there), and the GEMM and copy floors together; for inference,
PyTorch's time over the products alone, and over the products and copies together.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path

__all__ = ["main", "targets_table"]


def _median(values: list[float]) -> float:
    return statistics.median(values)


def _row(raw: dict, net: str, threads: int) -> dict | None:
    return next((r for r in raw["training"] if r["net"] == net and r["threads"] == threads), None)


def _inference(r: dict, batch: int | str) -> tuple[float, float, float | None, float | None] | None:
    """(lw s, PT s, products-alone s, copies-alone s) at ``batch``, or at each side's best batch
    for "best" (no floors)."""
    rows = r.get("inference", [])
    if not rows:
        return None
    if batch == "best":
        lw = min(_median(i["lw_s"]) for i in rows)
        pt = min(_median(i["torch_s"]) for i in rows)
        return lw, pt, None, None
    found = next((i for i in rows if i["batch"] == batch), None)
    if found is None:
        return None
    return _median(found["lw_s"]), _median(found["torch_s"]), found.get("gemm_floor_s"), found.get("copy_floor_s")


Figure = Callable[[dict], tuple[str, bool, str] | None]  # a row -> (cell, met?, floor cell)


def _cells(raw: dict, threads: list[int], figure: Figure, net: str) -> list[str]:
    values, met, floors = [], [], []
    for n in threads:
        r = _row(raw, net, n)
        got = None if r is None else figure(r)
        if got is None:
            values.append("-")
            continue
        text, ok, floor = got
        values.append(text)
        met.append(ok)
        if floor:
            floors.append(f"{n} thread{'s' * (n > 1)}: {floor}")
    verdict = "met" if met and all(met) else ("not met" if met else "not measured")
    return [*values, verdict, "; ".join(floors)]


def targets_table(raw: dict) -> str:
    """The issue's targets, one row each, against the run ``raw`` (a runner's --json file)."""
    threads = sorted(int(n) for n in raw["machines"])
    head = " | ".join(f"{n} thread{'s' * (n > 1)}" for n in threads)
    lines = [f"| target | {head} | | floor (best any im2col + BLAS implementation could do here) |",
             "|---|" + "--:|" * len(threads) + "---|---|"]

    def train(limit: float, floor_limit: float | None = None) -> Callable[[dict], tuple[str, bool, str]]:
        def figure(r: dict) -> tuple[str, bool, str]:
            lw, pt = _median(r["lw_epoch_s"]), _median(r["torch_epoch_s"])
            if floor_limit is not None:  # layerwise over its own GEMM floor
                ratio = lw / r["gemm_floor_s"]
                copy = r.get("copy_floor_s")
                extra = f" ({lw / (r['gemm_floor_s'] + copy):.1f} of GEMM + copy floor)" if copy else ""
                return f"{ratio:.1f}{extra}", ratio <= floor_limit, ""
            floor = f"{r['gemm_floor_s'] / pt:.2f}"
            if r.get("copy_floor_s"):
                floor += f" (GEMM), {(r['gemm_floor_s'] + r['copy_floor_s']) / pt:.2f} (GEMM + copies)"
            return f"{lw / pt:.2f}", lw / pt <= limit, floor if lw / pt > limit else ""
        return figure

    def infer(batch: int | str) -> Callable[[dict], tuple[str, bool, str] | None]:
        def figure(r: dict) -> tuple[str, bool, str] | None:
            got = _inference(r, batch)
            if got is None:
                return None
            lw, pt, floor, copies = got
            ceiling = f"{pt / floor:.2f}" if floor and pt / lw < 1 else ""
            if ceiling and copies:
                ceiling += f" (products), {pt / (floor + copies):.2f} (products + copies)"
            return f"{pt / lw:.2f}", pt / lw >= 1, ceiling

        return figure

    rows = [
        ("784-50-10 training, lw/PT time ≤ 0.55", "mlp-small", train(0.55)),
        ("784-512-512-10 training, lw/PT time ≤ 1.0", "mlp-wide", train(1.0)),
        ("SimpleConvNet training, lw/PT time ≤ 0.9", "convnet", train(0.9)),
        ("SimpleConvNet training, lw/GEMM floor ≤ 1.7", "convnet", train(0, floor_limit=1.7)),
        ("DeepConvNet training (200 steps), lw/PT time ≤ 1.0", "deep-convnet", train(1.0)),
        ("784-50-10 inference, batch 100, speed-up lw/PT ≥ 1", "mlp-small", infer(100)),
        ("784-50-10 inference, each side's best batch, speed-up ≥ 1", "mlp-small", infer("best")),
        ("784-512-512-10 inference, batch 100, speed-up ≥ 1", "mlp-wide", infer(100)),
        ("784-512-512-10 inference, each side's best batch, speed-up ≥ 1", "mlp-wide", infer("best")),
        ("DeepConvNet inference, batch 100, speed-up ≥ 1", "deep-convnet", infer(100)),
        ("DeepConvNet inference, each side's best batch, speed-up ≥ 1", "deep-convnet", infer("best")),
    ]
    for title, net, figure in rows:
        if any(r["net"] == net for r in raw["training"]):
            lines.append(f"| {title} | " + " | ".join(_cells(raw, threads, figure, net)) + " |")
    for acc in raw.get("accuracy", []):
        if acc["net"] == "deep-convnet":
            lw = statistics.mean(100 * run["lw_test_acc"][-1] for run in acc["runs"])
            pt = statistics.mean(100 * run["torch_test_acc"][-1] for run in acc["runs"])
            gap = abs(lw - pt)
            cell = f"{lw - pt:+.2f} points ({len(acc['runs'])} seeds)"
            lines.append(f"| DeepConvNet test-accuracy gap of means ≤ 0.5 points | {cell} |"
                         + " |" * (len(threads) - 1) + f" {'met' if gap <= 0.5 else 'not met'} | |")
    memory = {m["impl"]: m for m in raw.get("memory", []) if m["net"] == "deep-convnet"}
    if len(memory) == 2:
        lw, pt = memory["layerwise"]["peak_rss_mb"], memory["torch"]["peak_rss_mb"]
        lines.append(f"| DeepConvNet training epoch, peak RSS under PyTorch's | {lw:.0f} MB vs {pt:.0f} MB |"
                     + " |" * (len(threads) - 1) + f" {'met' if lw < pt else 'not met'} | |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.targets", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="JSON files written by python -m benchmarks --json")
    args = parser.parse_args(argv)
    for path in args.runs:
        raw = json.loads(path.read_text())
        blas = next(iter(raw["machines"].values()))["blas"]
        print(f"{path} ({blas.get('architecture')} kernels):\n")
        print(targets_table(raw))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

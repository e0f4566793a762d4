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

__all__ = ["across_table", "main", "target_rows", "targets_table"]


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


def target_rows(raw: dict) -> list[tuple[str, list[str]]]:
    """The issue's targets against the run ``raw`` (a runner's --json file): (title, cells), the
    cells one per thread count, then the verdict and the floor."""
    threads = sorted(int(n) for n in raw["machines"])
    lines: list[tuple[str, list[str]]] = []

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
            lines.append((title, _cells(raw, threads, figure, net)))
    blank = [""] * (len(threads) - 1)
    for acc in raw.get("accuracy", []):
        if acc["net"] == "deep-convnet":
            lw = statistics.mean(100 * run["lw_test_acc"][-1] for run in acc["runs"])
            pt = statistics.mean(100 * run["torch_test_acc"][-1] for run in acc["runs"])
            cell = f"{lw - pt:+.2f} points ({len(acc['runs'])} seeds)"
            lines.append(("DeepConvNet test-accuracy gap of means ≤ 0.5 points",
                          [cell, *blank, "met" if abs(lw - pt) <= 0.5 else "not met", ""]))
    memory = {m["impl"]: m for m in raw.get("memory", []) if m["net"] == "deep-convnet"}
    if len(memory) == 2:
        lw, pt = memory["layerwise"]["peak_rss_mb"], memory["torch"]["peak_rss_mb"]
        lines.append(("DeepConvNet training epoch, peak RSS under PyTorch's",
                      [f"{lw:.0f} MB vs {pt:.0f} MB", *blank, "met" if lw < pt else "not met", ""]))
    return lines


def targets_table(raw: dict) -> str:
    """The issue's targets, one row each, against the run ``raw`` (a runner's --json file)."""
    threads = sorted(int(n) for n in raw["machines"])
    head = " | ".join(f"{n} thread{'s' * (n > 1)}" for n in threads)
    lines = [f"| target | {head} | | floor (best any im2col + BLAS implementation could do here) |",
             "|---|" + "--:|" * len(threads) + "---|---|"]
    lines += [f"| {title} | " + " | ".join(cells) + " |" for title, cells in target_rows(raw)]
    return "\n".join(lines)


def across_table(runs: list[tuple[str, dict]]) -> str:
    """One row per target, one column per labelled run: its figures at each thread count,
    joined by " / ", the verdict (**not met** in bold) and, where a target is not met, the
    floor with copies (GEMM + copies for training, products + copies for inference)."""
    rows: dict[str, list[str]] = {}
    for k, (_, raw) in enumerate(runs):
        for title, cells in target_rows(raw):
            values = [c for c in cells[:-2] if c]
            figures = " / ".join(c.split(" (")[0] for c in values)
            notes = [c.split(" (", 1)[1].split(" ", 1) for c in values if " (" in c]  # "1.7 of GEMM + copy floor)"
            if len(notes) == len(values) and len({rest for _, rest in notes}) == 1:
                figures += f" ({' / '.join(n for n, _ in notes)} {notes[0][1]}"
            verdict = cells[-2] if cells[-2] == "met" else f"**{cells[-2]}**"
            # the floor with copies (the last figure of each thread count's floor), where one was printed
            floors = [part.split(": ", 1) for part in cells[-1].split("; ") if part]
            if floors:
                last = [figures.split(", ")[-1].split(" (")[0] for _, figures in floors]
                verdict += (f", floor {' / '.join(last)}" if len(floors) == len(values)
                            else f", floor at {floors[0][0]} {last[0]}")
            rows.setdefault(title, [""] * len(runs))[k] = f"{figures}: {verdict}"
    lines = ["| target | " + " | ".join(label for label, _ in runs) + " |", "|---|" + "---|" * len(runs)]
    lines += [f"| {title} | " + " | ".join(cells) + " |" for title, cells in rows.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.targets", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="JSON files written by python -m benchmarks --json")
    parser.add_argument("--across", action="store_true",
                        help="one table, a column per run (headed by its folder and file name), "
                             "its 1 / 2 thread figures in each cell")
    args = parser.parse_args(argv)
    if args.across:
        print(across_table([(f"{path.parent.name}/{path.stem}", json.loads(path.read_text())) for path in args.runs]))
        return 0
    for path in args.runs:
        raw = json.loads(path.read_text())
        blas = next(iter(raw["machines"].values()))["blas"]
        print(f"{path} ({blas.get('architecture')} kernels):\n")
        print(targets_table(raw))
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

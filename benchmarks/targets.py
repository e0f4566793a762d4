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
from typing import NamedTuple

__all__ = ["Reading", "TargetRow", "across_table", "main", "target_rows", "targets_table"]


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


class Reading(NamedTuple):
    """One target's figure at one thread count."""

    value: str  # "1.32"
    ok: bool
    #: a second figure beside it, (number, what): ("1.7", "of GEMM + copy floor")
    note: tuple[str, str] | None = None
    #: where the target is not met, the floors, (number, what), the one with copies last
    floors: tuple[tuple[str, str], ...] = ()


class TargetRow(NamedTuple):
    title: str
    readings: list[Reading | None]  # one per thread count (None: not measured there)
    verdict: str  # "met", "not met", "not measured"
    text: str = ""  # a row measured once, not per thread count: its one cell


Figure = Callable[[dict], Reading | None]


def _floors(*pairs: tuple[float | None, str]) -> tuple[tuple[str, str], ...]:
    return tuple((f"{value:.2f}", what) for value, what in pairs if value is not None)


def target_rows(raw: dict) -> list[TargetRow]:
    """The issue's targets against the run ``raw`` (a runner's --json file)."""
    threads = sorted(int(n) for n in raw["machines"])

    def train(limit: float, floor_limit: float | None = None) -> Figure:
        def figure(r: dict) -> Reading:
            lw, pt = _median(r["lw_epoch_s"]), _median(r["torch_epoch_s"])
            gemm, copy = r["gemm_floor_s"], r.get("copy_floor_s")
            if floor_limit is not None:  # layerwise over its own GEMM floor
                note = (f"{lw / (gemm + copy):.1f}", "of GEMM + copy floor") if copy else None
                return Reading(f"{lw / gemm:.1f}", lw / gemm <= floor_limit, note)
            floors = _floors((gemm / pt, "GEMM"), ((gemm + copy) / pt if copy else None, "GEMM + copies"))
            return Reading(f"{lw / pt:.2f}", lw / pt <= limit, floors=floors if lw / pt > limit else ())
        return figure

    def infer(batch: int | str) -> Figure:
        def figure(r: dict) -> Reading | None:
            got = _inference(r, batch)
            if got is None:
                return None
            lw, pt, floor, copies = got
            floors = ()
            if floor and pt / lw < 1:
                floors = _floors((pt / floor, "products"), (pt / (floor + copies) if copies else None,
                                                           "products + copies"))
            return Reading(f"{pt / lw:.2f}", pt / lw >= 1, floors=floors)

        return figure

    def same_predictions(r: dict) -> Reading | None:
        found = next((i for i in r.get("inference", []) if i["batch"] == 100 and "same_class" in i), None)
        if found is None:  # a run saved before the runner compared predictions
            return None
        n = r["infer_n"]
        return Reading(f"{found['same_class']:,} of {n:,} the same class", found["same_class"] == n)

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
        ("DeepConvNet inference, the same predictions (same weights, batch 100)", "deep-convnet", same_predictions),
    ]
    out: list[TargetRow] = []
    for title, net, figure in rows:
        if any(r["net"] == net for r in raw["training"]):
            readings = [None if (r := _row(raw, net, n)) is None else figure(r) for n in threads]
            met = [reading.ok for reading in readings if reading is not None]
            verdict = "met" if met and all(met) else ("not met" if met else "not measured")
            out.append(TargetRow(title, readings, verdict))
    for acc in raw.get("accuracy", []):
        if acc["net"] == "deep-convnet":
            lw = statistics.mean(100 * run["lw_test_acc"][-1] for run in acc["runs"])
            pt = statistics.mean(100 * run["torch_test_acc"][-1] for run in acc["runs"])
            out.append(TargetRow("DeepConvNet test-accuracy gap of means ≤ 0.5 points", [],
                                 "met" if abs(lw - pt) <= 0.5 else "not met",
                                 f"{lw - pt:+.2f} points ({len(acc['runs'])} seeds)"))
    memory = {m["impl"]: m for m in raw.get("memory", []) if m["net"] == "deep-convnet"}
    if len(memory) == 2:
        lw, pt = memory["layerwise"]["peak_rss_mb"], memory["torch"]["peak_rss_mb"]
        out.append(TargetRow("DeepConvNet training epoch, peak RSS under PyTorch's", [],
                             "met" if lw < pt else "not met", f"{lw:.0f} MB vs {pt:.0f} MB"))
    return out


def _threads_label(n: int) -> str:
    return f"{n} thread{'s' * (n > 1)}"


def targets_table(raw: dict) -> str:
    """The issue's targets, one row each, against the run ``raw`` (a runner's --json file)."""
    threads = sorted(int(n) for n in raw["machines"])
    lines = [f"| target | {' | '.join(map(_threads_label, threads))} | | "
             "floor (best any im2col + BLAS implementation could do here) |",
             "|---|" + "--:|" * len(threads) + "---|---|"]
    for row in target_rows(raw):
        if row.text:
            cells = [row.text, *[""] * (len(threads) - 1), row.verdict, ""]
        else:
            values = ["-" if r is None else r.value + (f" ({' '.join(r.note)})" if r.note else "")
                      for r in row.readings]
            floors = "; ".join(
                f"{_threads_label(n)}: "
                + (r.floors[0][0] if len(r.floors) == 1 else ", ".join(f"{v} ({what})" for v, what in r.floors))
                for n, r in zip(threads, row.readings, strict=True) if r is not None and r.floors)
            cells = [*values, row.verdict, floors]
        lines.append(f"| {row.title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def across_table(runs: list[tuple[str, dict]]) -> str:
    """One row per target, one column per labelled run: its figures at each thread count,
    joined by " / ", the verdict (**not met** in bold) and, where a target is not met, the
    floor with copies (GEMM + copies for training, products + copies for inference)."""
    table: dict[str, list[str]] = {}
    for k, (_, raw) in enumerate(runs):
        threads = sorted(int(n) for n in raw["machines"])
        for row in target_rows(raw):
            readings = [(n, r) for n, r in zip(threads, row.readings, strict=False) if r is not None]
            figures = row.text or " / ".join(r.value for _, r in readings)
            notes = [r.note for _, r in readings if r.note]
            if notes and len(notes) == len(readings) and len({what for _, what in notes}) == 1:
                figures += f" ({' / '.join(v for v, _ in notes)} {notes[0][1]})"
            verdict = row.verdict if row.verdict == "met" else f"**{row.verdict}**"
            floored = [(n, r.floors[-1][0]) for n, r in readings if r.floors]  # the floor with copies
            if floored:
                verdict += (f", floor {' / '.join(v for _, v in floored)}" if len(floored) == len(readings)
                            else f", floor at {_threads_label(floored[0][0])} {floored[0][1]}")
            table.setdefault(row.title, [""] * len(runs))[k] = f"{figures}: {verdict}"
    lines = ["| target | " + " | ".join(label for label, _ in runs) + " |", "|---|" + "---|" * len(runs)]
    lines += [f"| {title} | " + " | ".join(cells) + " |" for title, cells in table.items()]
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

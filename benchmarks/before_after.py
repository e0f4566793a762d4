"""Before and after a change: layerwise at two revisions, measured alternately in one run.

    python -m benchmarks.before_after 05b01c4 HEAD                  # the default workloads
    python -m benchmarks.before_after main . --workloads train:convnet:2,infer:mlp-wide:2:100
    python -m benchmarks.before_after HEAD~1 . --pairs 10            # more pairs: less noise

BEFORE and AFTER are git revisions (checked out into temporary worktrees) or ``.`` for the
working tree. Each measurement is a fresh process that imports layerwise from one tree and
this benchmark code from the working tree; the two sides alternate, pair after pair, and which
goes first alternates too, so drift in a shared VM's speed hits both alike. The report gives
each workload's after/before time ratio per pair and their median (below 1: faster after).

Workloads (``KIND:...``):
  train:NET:THREADS          ``under_load.STEPS[NET]`` Trainer steps on Fashion-MNIST (deep-convnet: 20),
                             median of 5 passes
  infer:NET:THREADS:BATCH    ``predict`` over the 10,000 test images in batches, median of 5
  deep-infer:THREADS:BATCH   DeepConvNet ``predict`` over 2,000 test images, median of 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .timing import median_seconds

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_WORKLOADS = [
    *(f"train:{net}:{n}" for n in (1, 2) for net in ("mlp-small", "mlp-wide", "convnet")),
    *(f"infer:{net}:{n}:{b}" for n in (1, 2) for net in ("mlp-small", "mlp-wide", "convnet") for b in (1, 100, 1000)),
    *(f"deep-infer:{n}:{b}" for n in (1, 2) for b in (100, 1000)),
]


def measure(workload: str) -> float:
    """Seconds one workload takes, in this process (layerwise from PYTHONPATH's tree)."""
    # Imported here: only the measuring process loads layerwise (from the tree under test).
    from threadpoolctl import threadpool_limits

    from .nets import NETS
    from .under_load import STEPS
    from .worker import _layerwise_trainer, _load

    kind, *fields = workload.split(":")
    threads = int(fields[1] if kind != "deep-infer" else fields[0])
    with threadpool_limits(threads, user_api="blas"):
        if kind == "train":
            spec = NETS[fields[0]]
            x, t, _, _ = _load(spec.flatten)
            n = {**STEPS, "deep-convnet": 20}[spec.key] * spec.batch_size  # DeepConvNet: ~1.5 s a pass
            trainer = _layerwise_trainer(spec, spec.build(0), x[:n], t[:n], 0)

            def one_pass() -> None:
                trainer.epochs = trainer.epoch + 1
                trainer.fit()

            return median_seconds(one_pass, 5)
        if kind == "infer":
            spec, batch = NETS[fields[0]], int(fields[2])
            _, _, x, _ = _load(spec.flatten)
            model = spec.build(0)
            return median_seconds(lambda: [model.predict(x[s : s + batch]) for s in range(0, len(x), batch)], 5)
        if kind == "deep-infer":
            from layerwise.models import DeepConvNet

            batch = int(fields[1])
            _, _, x, _ = _load(False)
            x = x[:2000]
            model = DeepConvNet(seed=0).astype(np.float32)
            return median_seconds(lambda: [model.predict(x[s : s + batch]) for s in range(0, len(x), batch)], 3)
    raise ValueError(f"unknown workload {workload!r}")


def _tree(rev: str, side: str, scratch: Path) -> Path:
    if rev == ".":
        return ROOT
    path = scratch / side  # the same revision on both sides (an A/A run, to see the noise) works too
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
                   check=True, capture_output=True, text=True)
    return path


def _run(tree: Path, workload: str) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree / "src"), str(ROOT)])}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.before_after", "--measure", workload],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{workload} with layerwise from {tree} failed:\n{proc.stderr}")
    return float(proc.stdout.split()[-1])


def table(results: dict[str, dict[str, list[float]]]) -> str:
    lines = ["| workload | before ms (median) | after ms (median) | after/before per pair: median (min-max) |",
             "|---|--:|--:|--:|"]
    for workload, sides in results.items():
        ratios = [a / b for a, b in zip(sides["after"], sides["before"], strict=False)]
        if not ratios:
            continue
        mark = " ⚠" if statistics.median(ratios) > 1.03 else ""
        lines.append(f"| {workload} | {1e3 * statistics.median(sides['before']):.1f} | "
                     f"{1e3 * statistics.median(sides['after']):.1f} | {statistics.median(ratios):.3f} "
                     f"({min(ratios):.2f}-{max(ratios):.2f}){mark} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.before_after", description=__doc__.split("\n")[0])
    p.add_argument("before", nargs="?", help="git revision, or . for the working tree")
    p.add_argument("after", nargs="?", default=".", help="git revision, or . (default)")
    p.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS), help="comma-separated, see above")
    p.add_argument("--pairs", type=int, default=4, help="before/after pairs per workload")
    p.add_argument("--json", type=Path, help="also write every time to this file")
    p.add_argument("--measure", metavar="WORKLOAD", help=argparse.SUPPRESS)  # one measurement (internal)
    args = p.parse_args(argv)
    if args.measure:
        print(measure(args.measure))
        return 0
    if args.before is None:
        p.error("give the BEFORE revision")
    workloads = args.workloads.split(",")
    results: dict[str, dict[str, list[float]]] = {w: {"before": [], "after": []} for w in workloads}
    with tempfile.TemporaryDirectory(prefix="layerwise-before-after-") as scratch:
        revs = {"before": args.before, "after": args.after}
        trees = {side: _tree(rev, side, Path(scratch)) for side, rev in revs.items()}
        try:
            for pair in range(args.pairs):
                for workload in workloads:
                    for side in ("before", "after") if pair % 2 == 0 else ("after", "before"):
                        results[workload][side].append(_run(trees[side], workload))
                    print(f"[pair {pair + 1}/{args.pairs}] {workload}: "
                          f"{results[workload]['after'][-1] / results[workload]['before'][-1]:.3f}",
                          file=sys.stderr, flush=True)
                if args.json:
                    args.json.write_text(json.dumps({"before": args.before, "after": args.after,
                                                     "results": results}, indent=1))
        finally:
            for tree in trees.values():
                if tree != ROOT:
                    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                                   check=False, capture_output=True)
    print(f"Command: `python -m benchmarks.before_after {' '.join(sys.argv[1:] if argv is None else argv)}`")
    print(f"before = {args.before}, after = {args.after}; {args.pairs} alternating pairs per workload.\n")
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A training step of SimpleConvNet and DeepConvNet (Adam, batch 100, float32) under each thread
plan on 2 threads, in alternating rounds in one process: the threads' parts ("split") against
the same parts in a worker process ("processes"), with "owned" and "blas1" beside them.

    python benchmarks/results/2026-12-06-processes/plans.py [--rounds 7] [--nets convnet,deep-convnet]

Each round enters every plan in turn (rotated from round to round), runs 5 untimed steps (a
worker process starts and is set up in them), then times ``--steps`` steps; ms a step is the
median over the rounds of each round's mean. Random images; the same model trains on through
all the plans, so every plan sees weights of the same age in each round.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

import numpy as np

from benchmarks.nets import NETS
from layerwise import Adam
from layerwise.kernels.kept_choices import machine_signature
from layerwise.kernels.memory import keep_freed_memory
from layerwise.kernels.tuning import enter_plan
from layerwise.models.batch_parts import gradient

PLANS = ("blas1", "owned", "split", "processes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--nets", default="convnet,deep-convnet")
    parser.add_argument("--steps", type=int, default=0, help="timed steps a turn (default: 40, DeepConvNet 10)")
    args = parser.parse_args()
    keep_freed_memory()
    print(f"# {machine_signature()}")
    print("| network | " + " | ".join(f"{plan} ms" for plan in PLANS) + " | processes / split (median of rounds) |")
    print("|---|" + "--:|" * (len(PLANS) + 1))
    for key in args.nets.split(","):
        times = time_plans(key, args.rounds, args.steps or (10 if key == "deep-convnet" else 40))
        ratio = statistics.median(p / s for p, s in zip(times["processes"], times["split"], strict=True))
        cells = " | ".join(f"{1e3 * statistics.median(times[plan]):.2f}" for plan in PLANS)
        print(f"| {key} | {cells} | {ratio:.3f} (rounds {min(times['processes']) * 1e3:.1f}-"
              f"{max(times['processes']) * 1e3:.1f} against {min(times['split']) * 1e3:.1f}-"
              f"{max(times['split']) * 1e3:.1f} ms) |", flush=True)


def time_plans(key: str, rounds: int, steps: int) -> dict[str, list[float]]:
    """Seconds a step of network ``key`` takes under each plan, one figure per round."""
    spec = NETS[key]
    model, optimizer = spec.build(0), Adam(lr=1e-3)
    rng = np.random.default_rng(0)
    x = rng.random((5000, 1, 28, 28), dtype=np.float32)
    t = rng.integers(0, 10, 5000)

    def step() -> None:
        rows = rng.integers(0, len(x), spec.batch_size)
        optimizer.update(model.params, gradient(model, x[rows], t[rows]))

    times: dict[str, list[float]] = {plan: [] for plan in PLANS}
    for round_ in range(rounds):
        for plan in PLANS[round_ % len(PLANS):] + PLANS[: round_ % len(PLANS)]:
            with enter_plan(plan, 2):
                for _ in range(5):
                    step()
                start = time.perf_counter()
                for _ in range(steps):
                    step()
                times[plan].append((time.perf_counter() - start) / steps)
    return times

if __name__ == "__main__":
    main()

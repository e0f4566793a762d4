"""Speed under load: each network trained alone and beside other work, layerwise and PyTorch.

    python -m benchmarks.under_load                          # all three networks (~6 minutes)
    python -m benchmarks.under_load --nets mlp-small --reps 3
    python -m benchmarks.under_load --lw-env OPENBLAS_THREAD_TIMEOUT=4   # try a setting

Situations, each on the same machine, one after another:
  alone    the training process by itself
  copies   two copies of the same training process at once (the slower one is reported)
  python   beside a pure-Python busy loop (one core busy)
  numpy    beside a NumPy matrix-product loop (NumPy's defaults: OpenBLAS on every core)

Every training process runs with its library's defaults, as a user's script would (NumPy
imported before layerwise; PyTorch with its own thread count), and trains ``steps`` steps per
timed pass on Fashion-MNIST; the median pass is scaled to a full epoch (60,000 images). The
table gives each time relative to the same implementation alone, measured in the same run:
alone is measured first and again last for each network (the VM's speed drifts), and the
median over both is the reference.

Sessions: by default each process starts in a session of its own, as a program started from
another terminal or by a notebook server is; Linux's scheduler (autogroup) then shares the
CPUs between the sessions first, and between a session's threads second. ``--sessions shared``
starts them all in the runner's session instead, like ``a & b`` typed in one shell: the
threads then share the CPUs one by one, and a process with more threads gets more of them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .nets import NETS
from .run import ROOT, _cpu_model, _versions, wait_until_idle

SITUATIONS = ("alone", "copies", "python", "numpy")
STEPS = {"mlp-small": 600, "mlp-wide": 120, "convnet": 40}  # ~0.2-1 s per pass alone on 2 cores
TRAIN_IMAGES = 60_000
READY_TIMEOUT_S = 300


def _start(args: list[str], env: dict[str, str], own_session: bool) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.load_worker", *args], cwd=ROOT, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=own_session)


def _line(proc: subprocess.Popen, what: str) -> str:
    line = proc.stdout.readline()  # the worker prints within READY_TIMEOUT_S or dies trying
    if not line:
        raise RuntimeError(f"{what} exited (code {proc.wait()}) before it answered")
    return line.strip()


def measure(net: str, impl: str, situation: str, steps: int, reps: int, warmup: int,
            lw_env: dict[str, str], own_sessions: bool = True) -> dict[str, Any]:
    """Time ``reps`` passes of one training process in one situation."""
    env = dict(os.environ)
    train_env = {**env, **(lw_env if impl == "layerwise" else {})}
    job = json.dumps({"net": net, "impl": impl, "steps": steps, "reps": reps, "warmup": warmup})
    procs: list[subprocess.Popen] = []
    try:
        loads = [_start([situation], env, own_sessions)] if situation in ("python", "numpy") else []
        trainers = [_start(["train", job], train_env, own_sessions) for _ in range(2 if situation == "copies" else 1)]
        procs = loads + trainers
        for proc in procs:
            if _line(proc, f"{situation} worker") != "ready":
                raise RuntimeError(f"{situation} worker did not say ready")
        time.sleep(0.5)  # the loads at full speed before timing starts
        for proc in trainers:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results = [json.loads(_line(proc, f"{impl} {net} training")) for proc in trainers]
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()
    slowest = max(results, key=lambda r: statistics.median(r["times"]))
    scale = TRAIN_IMAGES / (steps * NETS[net].batch_size)
    return {"net": net, "impl": impl, "situation": situation, "steps": steps,
            "epoch_s": [s * scale for s in slowest["times"]], "threads": slowest["threads"],
            "cpu_cores": [r["cpu_cores"] for r in results], "loadavg": os.getloadavg()[0],
            "shared_steps": [r.get("shared_steps", {}) for r in results]}


def table(rows: list[dict[str, Any]]) -> str:
    """One Markdown row per network and situation: both implementations, × their time alone."""
    pooled: dict[tuple[str, str, str], list[float]] = {}
    for r in rows:  # alone is measured twice per network: its passes are pooled
        pooled.setdefault((r["net"], r["impl"], r["situation"]), []).extend(r["epoch_s"])
    by_key = {key: statistics.median(times) for key, times in pooled.items()}
    threads = {(r["net"], r["impl"]): r["threads"] for r in rows}
    lines = ["| network | situation | layerwise s/epoch | × alone | PyTorch s/epoch | × alone |",
             "|---|---|--:|--:|--:|--:|"]
    for net in dict.fromkeys(r["net"] for r in rows):
        for situation in SITUATIONS:
            cells = []
            for impl in ("layerwise", "torch"):
                t, alone = by_key.get((net, impl, situation)), by_key.get((net, impl, "alone"))
                if t is None:
                    cells += ["", ""]
                    continue
                ratio = f"**{t / alone:.2f}×**" if alone else ""
                cells += [f"{t:.2f}", ratio]
            lines.append(f"| {net} | {situation} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Threads per process: " + "; ".join(
        f"{net} layerwise {threads.get((net, 'layerwise'), '-')}, PyTorch {threads.get((net, 'torch'), '-')}"
        for net in dict.fromkeys(r["net"] for r in rows)) + ".")
    return "\n".join(lines)


def report(raw: dict[str, Any]) -> str:
    header = [
        f"Command: `{raw['command']}`",
        f"Machine: {raw['cpu']}, {os.cpu_count()} CPUs; "
        + ", ".join(f"{name} {version}" for name, version in raw["versions"].items()) + ".",
        f"Sessions: {'each process in its own' if raw.get('sessions', 'own') == 'own' else 'all in one'}. "
        f"Environment given to layerwise: {raw['lw_env'] or 'none (defaults)'}; "
        f"run took {raw.get('seconds', 0) / 60:.1f} min.",
        "",
    ]
    return "\n".join(header) + table(raw["rows"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.under_load", description=__doc__.split("\n")[0])
    p.add_argument("--nets", default=",".join(STEPS), help="comma-separated subset of " + ", ".join(STEPS))
    p.add_argument("--situations", default=",".join(SITUATIONS), help="comma-separated subset of "
                   + ", ".join(SITUATIONS) + " (alone is always measured)")
    p.add_argument("--impls", default="layerwise,torch", help="layerwise, torch or both")
    p.add_argument("--reps", type=int, default=5, help="timed passes per measurement (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed passes first")
    p.add_argument("--steps-scale", type=float, default=1.0, help="multiply each network's steps per pass")
    p.add_argument("--lw-env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment for the layerwise training processes (to try a setting)")
    p.add_argument("--wait-idle", type=float, default=60.0, metavar="SECONDS",
                   help="before each measurement wait up to SECONDS for the CPUs to go idle")
    p.add_argument("--sessions", choices=("own", "shared"), default="own",
                   help="each process in a session of its own (default), or all in the runner's")
    p.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    p.add_argument("--report", type=Path, help="print the table of a run saved with --json")
    args = p.parse_args(argv)
    args.nets = args.nets.split(",")
    args.situations = ["alone", *(s for s in args.situations.split(",") if s != "alone")]
    args.impls = args.impls.split(",")
    for name, chosen, known in (("network", args.nets, STEPS), ("situation", args.situations, SITUATIONS),
                                ("implementation", args.impls, ("layerwise", "torch"))):
        unknown = [c for c in chosen if c not in known]
        if unknown:
            p.error(f"unknown {name} {unknown[0]!r}; choose from {', '.join(known)}")
    try:
        args.lw_env = dict(item.split("=", 1) for item in args.lw_env)
    except ValueError:
        p.error("--lw-env takes KEY=VALUE")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report is not None:
        print(report(json.loads(args.report.read_text())))
        return 0
    started = time.perf_counter()
    raw: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.under_load", *(sys.argv[1:] if argv is None else argv)]),
        "cpu": _cpu_model(), "versions": _versions(), "lw_env": args.lw_env, "sessions": args.sessions, "rows": [],
    }
    for net in args.nets:
        steps = max(1, math.ceil(STEPS[net] * args.steps_scale))
        # Alone first and again last: the reference is the median over both.
        order = [*args.situations, "alone"] if len(args.situations) > 1 else args.situations
        for k, situation in enumerate(order):
            # Alternate which implementation goes first, so drift in the machine hits both alike.
            for impl in args.impls if k % 2 == 0 else args.impls[::-1]:
                wait_until_idle(args.wait_idle, verbose=False)
                print(f"[{time.strftime('%H:%M:%S')}] {net} {impl} {situation}", file=sys.stderr, flush=True)
                raw["rows"].append(measure(net, impl, situation, steps, args.reps, args.warmup, args.lw_env,
                                           own_sessions=args.sessions == "own"))
                raw["seconds"] = time.perf_counter() - started
                if args.json:
                    args.json.write_text(json.dumps(raw, indent=1))
    print(report(raw))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

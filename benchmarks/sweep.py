"""Sweep: throughput of ``layerwise sweep`` with 2 local workers against 1 (issue 16).

    python -m benchmarks.sweep                        # 3 pairs of runs + the diagnosis (~2 minutes)
    python -m benchmarks.sweep --pairs 5 --json results.json
    python -m benchmarks.sweep --report results.json  # the tables of a saved run

Each run is the real command in a process of its own, as a user types it:

    python -m layerwise sweep --dataset fashion-mnist --model two-layer --hidden 50 --trials 8
        --epochs 2 --workers N --threads 1 --out <fresh folder> --quiet

so the interpreter's start, the imports, the check of the data set, the process pool's start
("spawn"), each worker's loading of Fashion-MNIST, the pool's shutdown and the two plots are all
in its wall time. 1- and 2-worker runs alternate (1 then 2, then 2 then 1, ...), each pair
measured back to back; a pair during which other processes used more than ``OTHER_MAX`` cores is
measured again (``--retries``). The issue asks for 2-worker throughput (trials per second) at
least 1.7 times the 1-worker throughput: the command's own count of trials per second while it
runs them (from the trials' submission, with the workers mapping the data and their first
touches of it, to the last result; the pool itself is started while the command reads the data
set). The whole command's wall-time ratio is reported beside it, with what a second worker cannot
shorten.

The timeline of a run comes from outside the command: the time each line of its output appears
(the header is printed after the data set is read, while the pool, started before the read,
finishes starting; the summary after the last trial, "plots:" after drawing) and the time each
line of ``trials.jsonl`` appears (polled every 5 ms). A trial's own ``seconds`` (from
trials.jsonl: from the start of ``run_trial`` in the worker to its result) then places the
start of each worker's first trial, which includes that worker's loading of the data set
(``run_trial`` caches it per process).

The diagnosis times the parts in processes of their own: the command's start-up, its read of
the data set before the pool starts (``fetch_dataset``; the command then splits it and writes the
split for its workers, ``sweep.trial.write_data_dir``), matplotlib's import, the spawn pool's
start with 1 and 2 workers (``layerwise.sweep.run.local_executor``), a worker loading
Fashion-MNIST by name (as a cluster's worker does) and mapping the prepared split (as a local
worker does), alone and two at once, and the trials' compute with the data already loaded, in
one process and in two processes at once (the hardware's share of the answer: what two trials
running together on the two cores cost).

Needs Fashion-MNIST where ``layerwise.datasets.fetch_dataset("fashion-mnist", download=False)``
finds it (Debian's ``dataset-fashion-mnist`` puts it in /usr/share/datasets/fashion-mnist; or set
``LAYERWISE_DATA``). Nothing is downloaded: without the files the benchmark says so and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .run import ROOT, _cpu_flags, _cpu_model, _versions, wait_until_idle
from .worker import _blas

TARGET = 1.7  # the requirement: 2-worker throughput / 1-worker throughput
OTHER_MAX = 0.15  # cores other processes may use during a run before its pair is measured again
POLL_S = 0.005
NPY_NAMES = ("x_train", "t_train", "x_val", "t_val")
TOUCH_MB = 400  # about what a worker's copy of Fashion-MNIST takes (uint8 read, float32, the split)
CLK_TCK = os.sysconf("SC_CLK_TCK")
HEADER = re.compile(r"^sweep of \d+ trials")
SUMMARY = re.compile(r"^\d+ of \d+ trials finished")
RAN = re.compile(r"^ran (\d+) trials? in ([\d.]+) s")  # the command's own count: submission -> last result


# -- the machine ------------------------------------------------------------------------------

def _ticks() -> tuple[float, float]:
    """(busy, steal) CPU seconds of all CPUs since boot. Busy leaves out idle, iowait and steal
    (the hypervisor running something else on our vCPU)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK, v[7] / CLK_TCK


class Usage:
    """CPU used between ``__init__`` and ``stop``: by this process's children (reaped), by this
    process, and by everything on the machine; ``other_cores`` is the rest, per second of wall."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.busy0, self.steal0 = _ticks()
        self.self0 = time.process_time()
        self.child0 = self._children()
        self.faults0 = self._faults()

    @staticmethod
    def _children() -> float:
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    @staticmethod
    def _faults() -> int:
        return resource.getrusage(resource.RUSAGE_CHILDREN).ru_minflt

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.t0
        busy, steal = _ticks()
        children = self._children() - self.child0
        own = time.process_time() - self.self0
        other = (busy - self.busy0) - children - own
        return {"wall_s": wall, "children_cpu_s": children, "own_cpu_s": own,
                "minor_faults": self._faults() - self.faults0, "other_cores": max(other, 0.0) / wall,
                "steal_cores": (steal - self.steal0) / wall}


# -- one run of the command -------------------------------------------------------------------

def sweep_args(args: argparse.Namespace) -> list[str]:
    return ["--dataset", "fashion-mnist", "--model", args.model, "--hidden", str(args.hidden),
            "--trials", str(args.trials), "--epochs", str(args.epochs)]


def command(args: argparse.Namespace, workers: int, out: str) -> list[str]:
    return ["python", "-m", "layerwise", "sweep", *sweep_args(args), "--workers", str(workers),
            "--threads", "1", "--out", out, "--quiet"]


def _watch(path: Path, t0: float, arrivals: list[tuple[float, int]], stop: threading.Event) -> None:
    """Append (seconds since t0, trial) for each line of ``path`` as it appears."""
    seen = 0
    while True:
        done = stop.is_set()  # one more look after the command exits
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size > seen:
            now = time.perf_counter() - t0
            with open(path, "rb") as f:
                f.seek(seen)
                chunk = f.read(size - seen)
            whole = chunk[: chunk.rfind(b"\n") + 1]
            for line in whole.splitlines():
                if line.strip():
                    arrivals.append((now, json.loads(line)["trial"]))
            seen += len(whole)
        if done:
            return
        time.sleep(POLL_S)


def sweep_run(args: argparse.Namespace, workers: int, scratch: Path) -> dict[str, Any]:
    """One run of ``layerwise sweep`` with ``workers`` workers, timed from outside."""
    out = Path(tempfile.mkdtemp(prefix=f"w{workers}-", dir=scratch)) / "sweep"
    cmd = [sys.executable, *command(args, workers, str(out))[1:]]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # each line of output when it is printed
    lines: list[tuple[float, str]] = []
    arrivals: list[tuple[float, int]] = []
    stop = threading.Event()
    busy_before = wait_until_idle(args.wait_idle, verbose=False)
    with tempfile.TemporaryFile(mode="w+") as stderr:
        usage = Usage()
        t0 = usage.t0
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
        watcher = threading.Thread(target=_watch, args=(out / "trials.jsonl", t0, arrivals, stop), daemon=True)
        watcher.start()
        for line in proc.stdout:
            lines.append((time.perf_counter() - t0, line.rstrip("\n")))
        code = proc.wait()
        used = usage.stop()
        stop.set()
        watcher.join()
        stderr.seek(0)
        err = stderr.read()
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited with {code}:\n{err[-2000:]}")
    records = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines() if line.strip()]
    spec = json.loads((out / "sweep.json").read_text())

    def line_time(pattern: re.Pattern) -> float:
        return next(t for t, text in lines if pattern.match(text))

    ran = next((m for m in (RAN.match(text) for _, text in lines) if m), None)
    if ran is None:
        raise RuntimeError(f"{' '.join(cmd)} printed no \"ran N trials in S s\" line:\n"
                           + "\n".join(text for _, text in lines))

    arrived = dict((trial, t) for t, trial in reversed(arrivals))  # the first time each was seen
    trials = [{"trial": r["trial"], "worker": r["worker"].rsplit(":", 1)[1], "seconds": r["seconds"],
               "arrived_s": arrived[r["trial"]], "final_val_acc": r["final_val_acc"], "status": r["status"]}
              for r in records]
    return {"workers": workers, "command": " ".join(command(args, workers, "<tmp>")), **used,
            "busy_before": busy_before, "header_s": line_time(HEADER), "summary_s": line_time(SUMMARY),
            "ran_trials": int(ran.group(1)), "ran_s": float(ran.group(2)),
            "plots_s": line_time(re.compile(r"^plots: ")), "trials": trials, "spec": spec,
            "stdout": "\n".join(text for _, text in lines), "stderr": err}


def phases(run: dict[str, Any]) -> dict[str, Any]:
    """A run's wall time cut in consecutive parts, and what the trials' own seconds say."""
    by_worker: dict[str, list[dict]] = {}
    for t in sorted(run["trials"], key=lambda t: t["arrived_s"] - t["seconds"]):
        by_worker.setdefault(t["worker"], []).append(t)
    starts = [ts[0]["arrived_s"] - ts[0]["seconds"] for ts in by_worker.values()]  # each worker's first trial
    first_start, last_result = min(starts), max(t["arrived_s"] for t in run["trials"])
    loads = []  # a worker's first trial loads the data: its excess over the worker's other trials
    for ts in by_worker.values():
        if len(ts) > 1:
            loads.append(ts[0]["seconds"] - statistics.median(t["seconds"] for t in ts[1:]))
    trial_s = sum(t["seconds"] for t in run["trials"])
    return {
        "startup": run["header_s"],  # interpreter, imports, the data set checked, the folder prepared
        "pool": first_start - run["header_s"],  # spawn, a worker's imports, until its first trial starts
        "trials": last_result - first_start,  # first trial started -> last result written
        "shutdown": run["summary_s"] - last_result,  # the pool's workers stopped, the summary
        "plots": run["plots_s"] - run["summary_s"],  # best-trials.png and lr-weight-decay.png
        "exit": run["wall_s"] - run["plots_s"],
        "workers_seen": len(by_worker), "worker_start_spread": max(starts) - first_start,
        "trial_seconds": trial_s, "load_seconds": sum(loads), "load_per_worker": loads,
        "compute_seconds": trial_s - sum(loads),
        "median_trial": statistics.median(t["seconds"] for ts in by_worker.values() for t in ts[1:])
        if any(len(ts) > 1 for ts in by_worker.values()) else float("nan"),
    }


# -- the diagnosis: each part in processes of its own ----------------------------------------

def _probe_cmd(kind: str, payload: dict) -> list[str]:
    # ``-c``, not ``-m``: a spawn pool's children then import nothing of this module (with
    # ``python -m layerwise`` they import nothing of the CLI either: multiprocessing skips a
    # ``__main__`` module), so the pool probe starts the same workers the command does.
    return [sys.executable, "-c", "import sys; from benchmarks.sweep import probe; probe(sys.argv[1:])",
            kind, json.dumps(payload)]


def _spec_dict(args: argparse.Namespace) -> dict:
    from layerwise.sweep import BOOK_WEIGHT_DECAY, SweepSpec

    return SweepSpec(dataset="fashion-mnist", model=args.model, hidden=(args.hidden,), epochs=args.epochs,
                     trials=args.trials, weight_decay=BOOK_WEIGHT_DECAY if args.model == "mlp" else None).to_dict()


def probe(argv: list[str]) -> None:
    """Run one part of the diagnosis in this (fresh) process; print its JSON."""
    kind, payload = argv[0], json.loads(argv[1])
    if kind == "fetch":  # what the command does before it starts the pool
        from layerwise.datasets import fetch_dataset

        t0 = time.perf_counter()
        fetch_dataset("fashion-mnist", progress=False, download=False)
        print(json.dumps({"fetch_s": time.perf_counter() - t0}), flush=True)
    elif kind == "touch":  # fresh memory written for the first time, then again
        import numpy as np

        print("ready", flush=True)
        sys.stdin.readline()
        w, p = time.perf_counter(), time.process_time()
        a = np.ones(payload["mb"] * 2**18, np.float32)
        first, w2 = time.perf_counter() - w, time.perf_counter()
        a.fill(2)
        print(json.dumps({"first_s": first, "again_s": time.perf_counter() - w2,
                          "cpu_s": time.process_time() - p}), flush=True)
    elif kind == "pool":  # the command's spawn pool: each worker's start and import of run_trial
        from layerwise.sweep.run import local_executor

        task = ("(__import__('time').time(), __import__('os').getpid(), "
                "__import__('importlib').import_module('layerwise.sweep.trial') and __import__('time').time(), "
                "__import__('time').sleep(0.5))[:3]")  # the sleep keeps each task on a worker of its own
        n = payload["workers"]
        t0 = time.time()
        with local_executor(n) as pool:
            results = [f.result() for f in [pool.submit(eval, task) for _ in range(n)]]
            t_results = time.time()
        t_shut = time.time()
        print(json.dumps({"workers": n, "pids": len({pid for _, pid, _ in results}),
                          "started_s": [s - t0 for s, _, _ in results],
                          "import_s": [i - s for s, _, i in results], "shutdown_s": t_shut - t_results}), flush=True)
    elif kind == "npy":  # the proposal: the split prepared once as .npy, read by each worker
        import numpy as np

        print("ready", flush=True)
        sys.stdin.readline()
        w = time.perf_counter()
        arrays = [np.load(Path(payload["dir"]) / f"{name}.npy", mmap_mode="r") for name in NPY_NAMES]
        for a in arrays:
            float(a.sum())  # every page read once, as the trial's first pass over the data does
        print(json.dumps({"load_s": time.perf_counter() - w, "bytes": sum(a.nbytes for a in arrays)}), flush=True)
    elif kind in ("load", "trials", "prepare"):
        from layerwise.sweep import SweepSpec
        from layerwise.sweep import trial as T

        spec = SweepSpec.from_dict(payload["spec"])
        configs = [{**c, "threads": 1} for c in spec.configs()]
        c = configs[0]

        def load() -> None:
            T._data(c["dataset"], c["model"], c["dtype"], c["validation"], c["split_seed"], None)  # by name

        if kind == "prepare":
            T.write_data_dir(T.raw_training_data(c["dataset"]), c["model"], c["dtype"], c["validation"],
                             c["split_seed"], Path(payload["dir"]))
            print(json.dumps({}), flush=True)
            return
        if kind == "trials":
            load()  # the data in the cache before timing: the trials' compute alone
        print("ready", flush=True)
        sys.stdin.readline()
        if kind == "load":
            w, p = time.perf_counter(), time.process_time()
            load()
            print(json.dumps({"load_s": time.perf_counter() - w, "cpu_s": time.process_time() - p}), flush=True)
            return
        rows, w0 = [], time.perf_counter()
        for i in payload["trials"]:
            w, p = time.perf_counter(), time.process_time()
            T.run_trial(configs[i])
            rows.append({"trial": i, "wall_s": time.perf_counter() - w, "cpu_s": time.process_time() - p})
        print(json.dumps({"trials": rows, "total_s": time.perf_counter() - w0}), flush=True)
    else:
        raise SystemExit(f"unknown probe {kind!r}")


def _together(kind: str, payloads: list[dict]) -> tuple[list[dict], dict]:
    """Start one probe process per payload, let them all go at once, return their answers."""
    procs = [subprocess.Popen(_probe_cmd(kind, p), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for p in payloads]
    try:
        for proc in procs:
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError(f"probe {kind} exited (code {proc.wait()}) before it was ready")
        usage = Usage()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        answers = [json.loads(proc.stdout.readline()) for proc in procs]
        for proc in procs:
            proc.wait()
        used = usage.stop()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return answers, used


def _clean(kind: str, payloads: list[dict], retries: int) -> tuple[list[dict], dict]:
    """``_together(kind, payloads)``, again while other processes used more than OTHER_MAX cores
    (at most ``retries`` times); the least disturbed is kept."""
    best = _together(kind, payloads)
    for _ in range(retries):
        if best[1]["other_cores"] <= OTHER_MAX:
            break
        again = _together(kind, payloads)
        if again[1]["other_cores"] < best[1]["other_cores"]:
            best = again
    return best


def _once(kind: str, payload: dict) -> tuple[dict, dict]:
    usage = Usage()
    out = subprocess.run(_probe_cmd(kind, payload), cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout), usage.stop()


def diagnose(args: argparse.Namespace) -> dict[str, Any]:
    spec = _spec_dict(args)
    d: dict[str, Any] = {}

    def log(what: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] diagnosis: {what}", file=sys.stderr, flush=True)

    log("start-up")
    d["python_s"], d["help_s"], d["mpl_s"] = [], [], []
    for _ in range(3):
        wait_until_idle(args.wait_idle, verbose=False)
        d["python_s"].append(_once_wall([sys.executable, "-c", "pass"]))
        d["help_s"].append(_once_wall([sys.executable, "-m", "layerwise", "sweep", "--help"]))
        d["mpl_s"].append(_once_wall([sys.executable, "-c", "import matplotlib; matplotlib.use('Agg'); "
                                      "import matplotlib.pyplot"]) - d["python_s"][-1])
    log("the data set checked before the pool (fetch_dataset)")
    d["fetch"] = []
    for _ in range(3):
        wait_until_idle(args.wait_idle, verbose=False)
        d["fetch"].append(_once("fetch", {}))
    log("spawn pool start")
    d["pool"] = {"1": [], "2": []}
    for _ in range(3):
        for n in (1, 2):
            wait_until_idle(args.wait_idle, verbose=False)
            d["pool"][str(n)].append(_once("pool", {"workers": n}))
    log("a worker loading Fashion-MNIST, alone and two at once")
    d["load"] = {"1": [], "2": []}
    for _ in range(3):
        for n in (1, 2):
            wait_until_idle(args.wait_idle, verbose=False)
            d["load"][str(n)].append(_clean("load", [{"spec": spec}] * n, args.retries))
    log("a worker reading the split prepared as .npy, alone and two at once")
    d["npy"] = {"1": [], "2": []}
    with tempfile.TemporaryDirectory(prefix="sweep-npy-") as npy:
        _once("prepare", {"spec": spec, "dir": npy})
        for _ in range(3):
            for n in (1, 2):
                wait_until_idle(args.wait_idle, verbose=False)
                d["npy"][str(n)].append(_clean("npy", [{"dir": npy}] * n, args.retries))
    log(f"{TOUCH_MB} MB of fresh memory written, one process and two at once")
    d["touch"] = {"1": [], "2": []}
    for _ in range(3):
        for n in (1, 2):
            wait_until_idle(args.wait_idle, verbose=False)
            d["touch"][str(n)].append(_clean("touch", [{"mb": TOUCH_MB}] * n, args.retries))
    log("the trials' compute (data loaded), one process and two at once")
    d["compute"] = {"1": [], "2": []}
    everything = list(range(args.trials))
    for k in range(args.compute_reps):
        for n in ((1, 2) if k % 2 == 0 else (2, 1)):
            wait_until_idle(args.wait_idle, verbose=False)
            shares = [everything] if n == 1 else [everything[0::2], everything[1::2]]
            d["compute"][str(n)].append(_clean("trials", [{"spec": spec, "trials": s} for s in shares], args.retries))
    return d


def _once_wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
    return time.perf_counter() - t0


# -- the report -------------------------------------------------------------------------------

def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def throughput(run: dict) -> float:
    """Trials per second as the command prints it ("ran 8 trials in 2.93 s"): from the trials'
    submission (the workers' data mapping included) to the last result written."""
    return run["ran_trials"] / run["ran_s"]


def pair_ratio(pair: dict) -> float:
    """The issue's figure: 2-worker throughput over 1-worker throughput."""
    return throughput(pair["runs"]["2"]) / throughput(pair["runs"]["1"])


def wall_ratio(pair: dict) -> float:
    """The whole command, start-up, data preparation and plots included (same trials: the
    inverse wall-time ratio)."""
    return pair["runs"]["1"]["wall_s"] / pair["runs"]["2"]["wall_s"]


def summarize_diagnosis(d: dict) -> dict[str, float]:
    """Medians of each part of the diagnosis."""
    s: dict[str, float] = {"python_s": _med(d["python_s"]), "help_s": _med(d["help_s"]),
                           "fetch_s": _med([f["fetch_s"] for f, _ in d["fetch"]]),
                           "mpl_s": _med(d.get("mpl_s", []))}
    for n in ("1", "2"):
        pools = [p for p, _ in d["pool"][n]]
        s[f"pool{n}_all_started_s"] = _med([max(p["started_s"]) for p in pools])
        s[f"pool{n}_import_s"] = _med([statistics.mean(p["import_s"]) for p in pools])
        s[f"pool{n}_ready_s"] = _med([max(st + im for st, im in zip(p["started_s"], p["import_s"], strict=True))
                                      for p in pools])
        s[f"pool{n}_shutdown_s"] = _med([p["shutdown_s"] for p in pools])
        s[f"load{n}_s"] = _med([max(a["load_s"] for a in answers) for answers, _ in d["load"][n]])
        s[f"load{n}_other_cores"] = max(u["other_cores"] for _, u in d["load"][n])
        s[f"npy{n}_s"] = _med([max(a["load_s"] for a in answers) for answers, _ in d["npy"][n]])
        s[f"touch{n}_first_s"] = _med([max(a["first_s"] for a in answers) for answers, _ in d["touch"][n]])
        s[f"touch{n}_again_s"] = _med([max(a["again_s"] for a in answers) for answers, _ in d["touch"][n]])
        runs = d["compute"][n]
        s[f"compute{n}_wall_s"] = _med([max(a["total_s"] for a in answers) for answers, _ in runs])
        s[f"compute{n}_trial_s"] = _med([r["wall_s"] for answers, _ in runs for a in answers for r in a["trials"]])
        s[f"compute{n}_cpu_per_wall"] = _med([r["cpu_s"] / r["wall_s"] for answers, _ in runs for a in answers
                                              for r in a["trials"]])
        s[f"probes{n}_other_cores"] = max(u["other_cores"] for key in ("load", "npy", "touch", "compute")
                                           for _, u in d[key][n])
    s["compute_ratio"] = s["compute1_wall_s"] / s["compute2_wall_s"]
    s["compute_ratios"] = [one[0]["total_s"] / max(a["total_s"] for a in two)
                           for (one, _), (two, _) in zip(d["compute"]["1"], d["compute"]["2"], strict=True)]
    s["slowdown"] = s["compute2_trial_s"] / s["compute1_trial_s"]  # one trial, beside another / alone
    return s


def report(raw: dict[str, Any]) -> str:
    args_line = f"Command: `{raw['command']}`"
    v = raw["versions"]
    lines = [args_line,
             f"Machine: {raw['cpu']} ({raw['cpu_flags']}), {raw['cpus']} CPUs; Python {v['python']}, "
             f"NumPy {v['numpy']}, layerwise {v['layerwise']}; OpenBLAS kernels: {raw.get('blas', '?')}"
             + (f" (environment: {raw['env']})" if raw.get("env") else "") + f". Fashion-MNIST from {raw['data_dir']}.",
             f"Each run: `{raw['runs_command']}` (N = 1 or 2), in a fresh folder; {raw['trials']} trials × "
             f"{raw['epochs']} epochs of {raw['network']}, {raw['train_images']:,} training / "
             f"{raw['val_images']:,} validation images.",
             ""]
    pairs = raw["pairs"]
    lines += ["*Throughput* is trials per second as the command prints it (\"ran 8 trials in 2.93 s\": from the "
              "trials' submission, each worker's mapping of the data included, to the last result written; the "
              "pool is started before the command reads the data set, so its start overlaps the read). *Whole "
              "command* is the inverse ratio of wall times: the interpreter's start, the pool's start, reading "
              "and splitting Fashion-MNIST, the plots and the exit included.", "",
              "| pair | order | 1 worker: trials/s | wall s | 2 workers: trials/s | wall s | "
              "**throughput 2/1** | whole command 2/1 | other CPU (cores) 1 / 2 |",
              "|--:|---|--:|--:|--:|--:|--:|--:|---|"]
    for k, pair in enumerate(pairs, 1):
        one, two = pair["runs"]["1"], pair["runs"]["2"]
        lines.append(f"| {k} | {pair['order']} | {throughput(one):.2f} | {one['wall_s']:.2f} | "
                     f"{throughput(two):.2f} | {two['wall_s']:.2f} | **{pair_ratio(pair):.2f}×** | "
                     f"{wall_ratio(pair):.2f}× | {one['other_cores']:.2f} / {two['other_cores']:.2f} |")
    ratios = [pair_ratio(p) for p in pairs]
    median = _med(ratios)
    walls = [wall_ratio(p) for p in pairs]
    lines += ["", f"**Median throughput ratio 2 workers / 1 worker: {median:.2f}×** (pairs: "
              + ", ".join(f"{r:.2f}" for r in ratios) + f"); the issue asks for ≥ {TARGET}×: "
              + ("met." if median >= TARGET else "**not met**.")
              + f" The whole command, median: {_med(walls):.2f}× (pairs: " + ", ".join(f"{r:.2f}" for r in walls)
              + "); what a second worker cannot shorten is below.", ""]

    # Where the wall time goes: medians over the runs of each configuration.
    lines += ["Where the wall time goes (median over the runs; the parts follow each other and add up to "
              "the wall time; *trials' own seconds* are summed from trials.jsonl):", "",
              "| part | 1 worker s | 2 workers s |", "|---|--:|--:|"]
    ph = {n: [phases(p["runs"][n]) for p in pairs] for n in ("1", "2")}
    med = {n: {key: _med([x[key] for x in ph[n]]) for key in ph[n][0] if not isinstance(ph[n][0][key], list)}
           for n in ph}
    wall = {n: _med([p["runs"][n]["wall_s"] for p in pairs]) for n in ("1", "2")}
    cpu = {n: _med([p["runs"][n]["children_cpu_s"] for p in pairs]) for n in ("1", "2")}
    faults = {n: _med([p["runs"][n]["minor_faults"] for p in pairs]) for n in ("1", "2")}
    rows = [("start-up: interpreter, imports, the pool started, Fashion-MNIST read and verified, folder",
             "startup"),
            ("the split written for the workers (`write_data_dir`), until the first trial starts", "pool"),
            ("trials: first trial started → last result written", "trials"),
            ("pool shutdown, summary", "shutdown"),
            ("plots: best-trials.png, lr-weight-decay.png", "plots"),
            ("interpreter exit", "exit")]
    for label, key in rows:
        lines.append(f"| {label} | {med['1'][key]:.2f} | {med['2'][key]:.2f} |")
    lines += [f"| **wall** | **{wall['1']:.2f}** | **{wall['2']:.2f}** |",
              f"| CPU time of the command and its workers | {cpu['1']:.2f} | {cpu['2']:.2f} |",
              f"| minor page faults of the command and its workers | {faults['1']:,.0f} | {faults['2']:,.0f} |",
              f"| trials' own seconds, summed (in the workers) | {med['1']['trial_seconds']:.2f} | "
              f"{med['2']['trial_seconds']:.2f} |",
              f"| of which each worker's loading of Fashion-MNIST (its first trial's excess), summed | "
              f"{med['1']['load_seconds']:.2f} | {med['2']['load_seconds']:.2f} |",
              f"| of which training and scoring (the trials' compute) | {med['1']['compute_seconds']:.2f} | "
              f"{med['2']['compute_seconds']:.2f} |",
              f"| median trial after a worker's first | {med['1']['median_trial']:.3f} | "
              f"{med['2']['median_trial']:.3f} |",
              f"| workers' first trials started apart by | {med['1']['worker_start_spread']:.2f} | "
              f"{med['2']['worker_start_spread']:.2f} |", ""]

    if raw.get("diagnosis"):
        s = summarize_diagnosis(raw["diagnosis"])
        lines += ["Diagnosis, each part in processes of its own (median of repeats):", "",
                  "| part | 1 | 2 |", "|---|--:|--:|",
                  f"| `python -c pass` / `python -m layerwise sweep --help` s | {s['python_s']:.3f} | "
                  f"{s['help_s']:.3f} |",
                  f"| the command's read before the pool: `fetch_dataset(\"fashion-mnist\")` s (4 files decompressed, "
                  f"md5-verified) | {s['fetch_s']:.3f} | |",
                  f"| `import matplotlib.pyplot` s (the plots' first cost) | {s['mpl_s']:.3f} | |",
                  f"| spawn pool: all workers running a task, s after the pool was made (1 / 2 workers) | "
                  f"{s['pool1_all_started_s']:.3f} | {s['pool2_all_started_s']:.3f} |",
                  f"| a worker's import of `layerwise.sweep.trial` s | {s['pool1_import_s']:.3f} | "
                  f"{s['pool2_import_s']:.3f} |",
                  f"| pool made → every worker ready for `run_trial` s | {s['pool1_ready_s']:.3f} | "
                  f"{s['pool2_ready_s']:.3f} |",
                  f"| pool shutdown s | {s['pool1_shutdown_s']:.3f} | {s['pool2_shutdown_s']:.3f} |",
                  f"| a worker loading Fashion-MNIST by name, as a cluster's worker does (read, verify, "
                  f"normalize, split) s: alone / two at once "
                  f"(slower of the two) | {s['load1_s']:.3f} | {s['load2_s']:.3f} |",
                  f"| the split the command prepared, mapped (`np.load(mmap_mode=\"r\")`, every page read) s: "
                  f"alone / two at once | "
                  f"{s['npy1_s']:.3f} | {s['npy2_s']:.3f} |",
                  f"| {TOUCH_MB} MB of fresh memory written (`np.ones`) s: first time / again, alone | "
                  f"{s['touch1_first_s']:.3f} / {s['touch1_again_s']:.3f} | |",
                  f"| the same, two processes at once (slower of the two) | | {s['touch2_first_s']:.3f} / "
                  f"{s['touch2_again_s']:.3f} |",
                  f"| trials' compute, data loaded: all {raw['trials']} trials s, one process / two at once "
                  f"(half each) | {s['compute1_wall_s']:.2f} | {s['compute2_wall_s']:.2f} |",
                  f"| one trial s, alone / beside another | {s['compute1_trial_s']:.3f} | "
                  f"{s['compute2_trial_s']:.3f} |",
                  f"| process CPU / wall during a trial (1.00: one busy thread, no BLAS helpers) | "
                  f"{s['compute1_cpu_per_wall']:.2f} | {s['compute2_cpu_per_wall']:.2f} |",
                  f"| other processes' CPU (cores) during the timed probes above, worst | "
                  f"{s['probes1_other_cores']:.2f} | {s['probes2_other_cores']:.2f} |",
                  "",
                  f"Trials' compute alone, 2 processes / 1: **{s['compute_ratio']:.2f}×** (repeats: "
                  + ", ".join(f"{r:.2f}" for r in s["compute_ratios"]) + f"); a trial beside another takes "
                  f"{s['slowdown']:.2f}× its time alone.", ""]
    lines += analysis(raw, med, wall, summarize_diagnosis(raw["diagnosis"]) if raw.get("diagnosis") else None)
    return "\n".join(lines)


def _size_for(target: float, a: float, b: float, k: float) -> float | None:
    """Seconds of 1-worker compute T at which (a + T) / (b + T k / 2) reaches ``target``."""
    if target * k / 2 >= 1:
        return None
    return max((target * b - a) / (1 - target * k / 2), 0.0)


def analysis(raw: dict, med: dict, wall: dict, s: dict | None) -> list[str]:
    """What the measured parts imply for the ratio, and how large a sweep reaches the target.

    Model, from the runs themselves: wall(N workers) = F_N + L_N + T k_N / N, with F_N the parts
    outside the trials (start-up, pool start and shutdown, plots, exit), L_N the excess of a
    worker's first trial over its others (the worker loads Fashion-MNIST there, and touches its
    memory for the first time; every worker does it, at the same time), T the trials' compute on
    one worker and k_2 how much longer a trial takes beside another (k_1 = 1)."""
    fixed = {n: med[n]["startup"] + med[n]["pool"] + med[n]["shutdown"] + med[n]["plots"] + med[n]["exit"]
             for n in ("1", "2")}
    load = {"1": med["1"]["load_seconds"], "2": med["2"]["load_seconds"] / 2}
    t, k = med["1"]["compute_seconds"], med["2"]["median_trial"] / med["1"]["median_trial"]
    a, b = fixed["1"] + load["1"], fixed["2"] + load["2"]
    m1, m2 = a + t, b + t * k / 2
    measured = _med([wall_ratio(p) for p in raw["pairs"]])
    out = ["Reading, as wall(N) = F_N + L_N + T·k/N from the medians above: F (start-up, pool start and "
           f"shutdown, plots, exit) {fixed['1']:.2f} s with 1 worker, {fixed['2']:.2f} s with 2; L (a worker's "
           f"first trial over its others: loading Fashion-MNIST, first touches of its memory) {load['1']:.2f} s, "
           f"{load['2']:.2f} s per worker with 2 (both at once); T (the trials' compute on one worker) "
           f"{t:.2f} s; k (a trial beside another / alone) {k:.2f}. The model gives {m1:.2f} s and {m2:.2f} s "
           f"(measured {wall['1']:.2f} and {wall['2']:.2f}): {m1 / m2:.2f}× (measured {measured:.2f}×). "
           f"F + L is {100 * a / m1:.0f}% of the 1-worker run, and a second worker shortens none of it: "
           f"with k = 1 and F, L as with 1 worker the ratio would still be {m1 / (a + t / 2):.2f}×."]
    per_trial_epoch = t / raw["trials"] / raw["epochs"]
    default = 100 * 20 * per_trial_epoch  # the command's defaults: 100 trials of 20 epochs
    need = _size_for(TARGET, a, b, k)
    out.append((f"{TARGET}× needs T ≥ {need:.0f} s (~{need / per_trial_epoch:.0f} trial-epochs of this network, "
                f"e.g. {raw['trials']} trials × {need / per_trial_epoch / raw['trials']:.0f} epochs)"
                if need is not None else f"No T reaches {TARGET}× with k = {k:.2f}")
               + f"; a long sweep approaches 2/k = {2 / k:.2f}×, and the command's default sweep (100 trials "
               f"× 20 epochs, ~{default:.0f} s of compute) would get {(a + default) / (b + default * k / 2):.2f}×.")
    if s is not None:
        # What is left outside the trials that a user could do without: the plots.
        a2, b2 = a - med["1"]["plots"], b - med["2"]["plots"]
        need2 = _size_for(TARGET, a2, b2, k)
        mpl = s.get("mpl_s", float("nan"))
        out.append(f"Without the plots ({med['1']['plots']:.2f} s, matplotlib's import {mpl:.2f} s of it), "
                   f"F + L would be {a2:.2f} s / {b2:.2f} s and the whole command "
                   f"{(a2 + t) / (b2 + t * k / 2):.2f}×"
                   + (f"; {TARGET}× from T ≥ {need2:.0f} s." if need2 is not None else "."))
    return out


# -- main -------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=int, default=3, help="pairs of runs, 1 and 2 workers (default 3)")
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--model", choices=("two-layer", "mlp"), default="two-layer",
                   help="two-layer (TwoLayerNet, lr searched; default) or mlp (MultiLayerNet, lr and weight decay)")
    p.add_argument("--hidden", type=int, default=50)
    p.add_argument("--retries", type=int, default=2,
                   help=f"measure a pair again when other processes used more than {OTHER_MAX} cores")
    p.add_argument("--compute-reps", type=int, default=4, help="repeats of the diagnosis's compute measurement")
    p.add_argument("--no-diagnosis", action="store_true", help="only the runs of the command")
    p.add_argument("--wait-idle", type=float, default=120.0, metavar="SECONDS",
                   help="before each measurement wait up to SECONDS for the CPUs to go idle")
    p.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    p.add_argument("--report", type=Path, help="print the tables of a run saved with --json")
    args = p.parse_args(argv)
    if min(args.pairs, args.trials, args.epochs, args.hidden, args.compute_reps) < 1 or args.retries < 0:
        p.error("--pairs, --trials, --epochs, --hidden and --compute-reps must be at least 1")
    if args.trials < 2:
        p.error("--trials must be at least 2 (one per worker)")
    return args


def _data_dir() -> str | None:
    from layerwise.datasets import fetch_dataset
    from layerwise.errors import LayerwiseError

    try:
        paths = fetch_dataset("fashion-mnist", progress=False, download=False)
    except LayerwiseError as exc:
        print(f"Fashion-MNIST is not on this machine ({exc}). This benchmark downloads nothing: install "
              "Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist) or set LAYERWISE_DATA.",
              file=sys.stderr)
        return None
    return str(Path(next(iter(paths.values()))).parent)


def measure_pair(args: argparse.Namespace, k: int, scratch: Path) -> dict[str, Any]:
    order = ("1", "2") if k % 2 == 0 else ("2", "1")
    runs = {}
    for n in order:
        print(f"[{time.strftime('%H:%M:%S')}] pair {k + 1}: {n} worker(s)", file=sys.stderr, flush=True)
        runs[n] = sweep_run(args, int(n), scratch)
    return {"order": " then ".join(order), "runs": runs}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report is not None:
        print(report(json.loads(args.report.read_text())))
        return 0
    data_dir = _data_dir()
    if data_dir is None:
        return 2
    started = time.perf_counter()
    spec = _spec_dict(args)
    network = f"784-{args.hidden}-10 " + ("TwoLayerNet (lr searched)" if args.model == "two-layer"
                                          else "MultiLayerNet (lr and weight decay searched)")
    n_val = int(60_000 * spec["validation"])
    raw: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.sweep", *(sys.argv[1:] if argv is None else argv)]),
        "runs_command": " ".join(command(args, 0, "<tmp>")).replace("--workers 0", "--workers N"),
        "cpu": _cpu_model(), "cpu_flags": _cpu_flags(), "cpus": os.cpu_count(), "versions": _versions(),
        "data_dir": data_dir, "trials": args.trials, "epochs": args.epochs, "network": network,
        "train_images": 60_000 - n_val, "val_images": n_val, "target": TARGET, "pairs": [], "discarded": [],
        "loadavg_start": os.getloadavg()[0],
        # OpenBLAS's settings and the kernel it chose: a VM may set OPENBLAS_CORETYPE for everyone.
        "env": {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ},
        "blas": _blas().get("architecture") or "?",
    }
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as scratch:
        for k in range(args.pairs):
            pair = measure_pair(args, k, Path(scratch))
            for _ in range(args.retries):
                worst = max(r["other_cores"] for r in pair["runs"].values())
                if worst <= OTHER_MAX:
                    break
                print(f"  other processes used {worst:.2f} cores: measuring the pair again", file=sys.stderr,
                      flush=True)
                raw["discarded"].append(pair)
                again = measure_pair(args, k, Path(scratch))
                if max(r["other_cores"] for r in again["runs"].values()) < worst:
                    pair = again
            raw["pairs"].append(pair)
            if pair["runs"]["1"]["spec"] != spec:
                raise RuntimeError(f"the command's sweep.json differs from the benchmark's spec: "
                                   f"{pair['runs']['1']['spec']} != {spec}")
            if args.json:
                args.json.write_text(json.dumps(raw, indent=1))
    if not args.no_diagnosis:
        raw["diagnosis"] = diagnose(args)
    raw["seconds"] = time.perf_counter() - started
    raw["loadavg_end"] = os.getloadavg()[0]
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))
    print(report(raw))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

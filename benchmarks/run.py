"""Benchmark runner: layerwise against PyTorch CPU eager on Fashion-MNIST.

    python -m benchmarks                       # everything, 1 and 2 threads (~7 minutes)
    python -m benchmarks --nets mlp-small --threads 1 --epochs 2
    python -m benchmarks --json results.json   # also keep the raw numbers

Every measurement runs in its own process (``worker.py``); this process only starts them and
prints Markdown tables. On a machine where OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set,
unset both for the benchmark command alone (``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE
python -m benchmarks``); the BLAS kernel in use is printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

try:  # also what the other benchmarks report
    from layerwise.kernels.kept_choices import cpu_model as _cpu_model
except ImportError:  # a tree before kept_choices (benchmarks.before_after against an older revision)
    from layerwise.kernels.tuning import cpu_model as _cpu_model

from .nets import DEFAULT_NETS, NETS

#: What limits PyTorch to older instructions than the CPU has, as OPENBLAS_CORETYPE does NumPy's
#: BLAS: oneDNN's convolutions, ATen's own vectorised kernels, MKL's products. All three set to
#: AVX2 make this CPU one without AVX-512 for both implementations (benchmarks/README.md).
TORCH_ISA_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")

ROOT = Path(__file__).resolve().parent.parent


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat ((0, 0) elsewhere)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _busy_fraction(seconds: float = 1.0) -> float:
    """Fraction of all CPUs busy over ``seconds``."""
    busy0, total0 = _cpu_ticks()
    time.sleep(seconds)
    busy1, total1 = _cpu_ticks()
    return (busy1 - busy0) / max(total1 - total0, 1)


def wait_until_idle(limit_s: float, verbose: bool, threshold: float = 0.1) -> float:
    """Wait (at most ``limit_s``) until other processes leave the CPUs idle; returns the
    busy fraction last seen. On a shared machine this keeps other work out of the timings."""
    deadline = time.monotonic() + limit_s
    busy = _busy_fraction()
    while busy > threshold and time.monotonic() < deadline:
        if verbose:
            print(f"  waiting: CPUs {100 * busy:.0f}% busy", file=sys.stderr, flush=True)
        time.sleep(4)
        busy = _busy_fraction()
    return busy


def _job(job: dict, verbose: bool, wait_idle: float = 0.0, retries: int = 0) -> dict:
    """Run one worker process and return its JSON result. A measurement during which other
    processes used more than 0.15 cores is repeated up to ``retries`` times; the one with
    the least interference is kept."""
    best = _run_job(job, verbose, wait_idle)
    for _ in range(retries):
        if best["other_cpu_cores"] <= 0.15:
            break
        if verbose:
            print(f"  other processes used {best['other_cpu_cores']:.2f} cores: measuring again",
                  file=sys.stderr, flush=True)
        again = _run_job(job, verbose, wait_idle)
        if again["other_cpu_cores"] < best["other_cpu_cores"]:
            best = again
    return best


def _run_job(job: dict, verbose: bool, wait_idle: float) -> dict:
    busy = wait_until_idle(wait_idle, verbose) if wait_idle > 0 else None
    load = os.getloadavg()[0]
    if verbose:
        print(f"  [{time.strftime('%H:%M:%S')}] {job['job']} {job.get('net', '')} {job.get('impl', '')} "
              f"threads={job['threads']}  (load {load:.2f})", file=sys.stderr, flush=True)
    # CPU time that other processes used while the worker ran: all CPUs' busy time minus
    # the worker's own. Above ~0.1 cores the timings of that row are suspect.
    busy0, _ = _cpu_ticks()
    own0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.worker", json.dumps(job)], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    wall = time.perf_counter() - wall0
    busy1, _ = _cpu_ticks()
    own1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {job} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    own = (own1.ru_utime + own1.ru_stime) - (own0.ru_utime + own0.ru_stime)
    others = (busy1 - busy0) / os.sysconf("SC_CLK_TCK") - own
    result["busy_before"] = busy
    result["other_cpu_cores"] = max(others, 0.0) / wall
    return result


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            flags = next(line for line in f if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return ""
    return "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else ""


def _versions() -> dict[str, str]:
    import numpy

    import layerwise

    out = {"python": platform.python_version(), "numpy": numpy.__version__,
           "layerwise": getattr(layerwise, "__version__", "?")}
    try:
        from importlib.metadata import version

        out["torch"] = version("torch")
    except Exception:  # only for the report
        out["torch"] = "?"
    return out


def _mid(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def _fmt_s(values: list[float]) -> str:
    med, lo, hi = _mid(values)
    return f"{med:.2f} ({lo:.2f}-{hi:.2f})"


def _paired(r: dict) -> str:
    """Median (min-max) of lw/PT over the epoch pairs: the two epochs of a pair ran back to
    back, so the machine's drift over a run (it can slow both by a third) mostly cancels."""
    ratios = [a / b for a, b in zip(r["lw_epoch_s"], r["torch_epoch_s"], strict=True)]
    med, lo, hi = _mid(ratios)
    return f"{med:.2f} ({lo:.2f}-{hi:.2f})"


def _copy_floor(r: dict, lw: float) -> str:
    """The copy floor's two cells (blank in results saved before it was measured)."""
    if "copy_floor_s" not in r:
        return " | "
    return f"{r['copy_floor_s']:.2f} | {lw / (r['gemm_floor_s'] + r['copy_floor_s']):.1f}"


def training_table(results: list[dict], machines: dict[int, dict]) -> str:
    rows = [
        "| network | threads | layerwise s/epoch | PyTorch s/epoch | ratio lw/PT | layerwise img/s | "
        "PyTorch img/s | ratio per epoch pair | GEMM floor s | lw/floor | copy floor s | lw/(GEMM + copy floor) | "
        "lw % of GEMM peak | test acc % lw / PT | max acc gap | weights Δ (f64 check) | load avg | other CPU |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        lw, pt = statistics.median(r["lw_epoch_s"]), statistics.median(r["torch_epoch_s"])
        peak = machines[r["threads"]]["gemm_gflops"]
        share = r["epoch_gflop"] / lw / peak
        loads = f"{r['loadavg'][0][0]:.2f}→{r['loadavg'][1][0]:.2f}"
        acc_gap = 100 * max(abs(a - b) for a, b in zip(r["lw_test_acc"], r["torch_test_acc"], strict=True))
        images = r.get("train_images", 60000)  # an "epoch" of DeepConvNet is 20,000 images
        rows.append(
            f"| {r['net']} | {r['threads']} | {_fmt_s(r['lw_epoch_s'])} | {_fmt_s(r['torch_epoch_s'])} | "
            f"**{lw / pt:.2f}** | {images / lw:,.0f} | {images / pt:,.0f} | {_paired(r)} | {r['gemm_floor_s']:.2f} | "
            f"{lw / r['gemm_floor_s']:.1f} | {_copy_floor(r, lw)} | {100 * share:.0f}% | "
            f"{100 * r['lw_test_acc'][-1]:.2f} / {100 * r['torch_test_acc'][-1]:.2f} | {acc_gap:.2f} | "
            f"{r['weight_difference_f64']:.0e} | {loads} | "
            f"{r['other_cpu_cores']:.2f} |"
        )
    return "\n".join(rows)


def _agreement(inf: dict, n: int) -> str:
    """The predictions' agreement cells: samples of the same class, and the largest score
    difference over the largest score (absent in results saved before it was measured)."""
    if "same_class" not in inf:
        return "n/a | n/a"
    same = f"{inf['same_class']:,} of {n:,}" if inf["same_class"] == n else f"**{inf['same_class']:,} of {n:,}**"
    return f"{same} | {inf['max_abs_diff']:.1e} of {inf['score_scale']:.1f}"


def inference_table(results: list[dict]) -> str:
    rows = [
        "| network | threads | batch | layerwise ms | PyTorch ms | layerwise img/s | PyTorch img/s | "
        "speed-up lw/PT | products alone ms | speed-up if only the products took time | copies alone ms | "
        "speed-up if only products and copies took time | same class (same weights) | max |Δ score| |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        n = r["infer_n"]
        for inf in r["inference"]:
            lw, pt = statistics.median(inf["lw_s"]), statistics.median(inf["torch_s"])
            floor = inf.get("gemm_floor_s")  # absent in results saved before it was measured
            floor_cells = f"{1e3 * floor:.1f} | {pt / floor:.2f}" if floor else "n/a | n/a"
            copies = inf.get("copy_floor_s")  # absent in results saved before it was measured
            both = f"{1e3 * copies:.1f} | {pt / (floor + copies):.2f}" if floor and copies else "n/a | n/a"
            floor_cells += f" | {both} | {_agreement(inf, n)}"
            rows.append(
                f"| {r['net']} | {r['threads']} | {inf['batch']} | {1e3 * lw:.1f} | {1e3 * pt:.1f} | "
                f"{n / lw:,.0f} | {n / pt:,.0f} | **{pt / lw:.2f}** | {floor_cells} |"
            )
        if len(r["inference"]) > 1:  # each side at its own best batch size
            lw_best = min(r["inference"], key=lambda inf: statistics.median(inf["lw_s"]))
            pt_best = min(r["inference"], key=lambda inf: statistics.median(inf["torch_s"]))
            lw, pt = statistics.median(lw_best["lw_s"]), statistics.median(pt_best["torch_s"])
            rows.append(
                f"| {r['net']} | {r['threads']} | best: lw {lw_best['batch']}, PT {pt_best['batch']} | "
                f"{1e3 * lw:.1f} | {1e3 * pt:.1f} | {n / lw:,.0f} | {n / pt:,.0f} | **{pt / lw:.2f}** | | | | | | |"
            )
    return "\n".join(rows)


def memory_table(results: list[dict]) -> str:
    rows = ["| network | implementation | threads | epochs | peak RSS MB | of which worker processes MB | "
            "RSS after loading data MB |",
            "|---|---|--:|--:|--:|--:|--:|"]
    for r in results:
        workers = r.get("workers_peak_rss_mb")  # absent in results saved before the processes plan
        rows.append(f"| {r['net']} | {r['impl']} | {r['threads']} | {r['epochs']} | {r['peak_rss_mb']:.0f} | "
                    f"{'n/a' if workers is None else f'{workers:.0f}'} | {r['rss_after_data_mb']:.0f} |")
    return "\n".join(rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--nets", default=",".join(DEFAULT_NETS),
                   help=f"comma-separated subset of {', '.join(NETS)} (default: {', '.join(DEFAULT_NETS)})")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs per implementation (median reported)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--warmup-steps", type=int, default=20, help="untimed steps on a throwaway model first")
    p.add_argument("--check-steps", type=int, default=5,
                   help="float64 steps of both implementations whose weights are compared")
    p.add_argument("--infer-batches", default="1,100,1000",
                   help="batch sizes for inference on the test set (100: the book's; 1: per-image latency)")
    p.add_argument("--infer-reps", type=int, default=3, help="repetitions per inference measurement (median)")
    p.add_argument("--floor-reps", type=int, default=20, help="steps replayed to time the GEMM-only floor")
    p.add_argument("--memory-epochs", type=int, default=1,
                   help="epochs trained in each peak-RSS measurement; 0 skips them")
    p.add_argument("--accuracy-seeds", type=int, default=3, metavar="K",
                   help="also train K seeds of each network, untimed, to compare mean test accuracy (0: skip)")
    p.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                   help="before each measurement, wait up to SECONDS for other processes to leave the "
                        "CPUs idle (<10%% busy over 1 s); for shared machines")
    p.add_argument("--retries", type=int, default=0,
                   help="repeat a measurement disturbed by other processes (>0.15 cores) up to this often")
    p.add_argument("--json", type=Path, help="also write every raw number to this file (updated as it goes)")
    p.add_argument("--report", type=Path, metavar="JSON", help="print the report of a run saved with --json")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    args.nets = [n.strip() for n in args.nets.split(",") if n.strip()]
    unknown = [n for n in args.nets if n not in NETS]
    if unknown:
        p.error(f"unknown nets {unknown}; choose from {', '.join(NETS)}")
    args.threads = [int(n) for n in args.threads.split(",")]
    args.infer_batches = [int(n) for n in args.infer_batches.split(",")] if args.infer_batches else []
    if args.epochs < 1:
        p.error("--epochs must be >= 1")
    return args


def run(args: argparse.Namespace, raw: dict[str, Any], save) -> None:
    """Every measurement, each in its own worker process, into ``raw``; ``save()`` after each."""
    verbose = not args.quiet

    def job(spec: dict) -> dict:
        return _job({**spec, "seed": args.seed}, verbose, args.wait_idle, args.retries)

    raw.update(machines={}, training=[], memory=[], accuracy=[])
    for n in args.threads:
        raw["machines"][n] = job({"job": "machine", "threads": n})
        save()
    for n in args.threads:
        for net in args.nets:
            raw["training"].append(job({
                "job": "compare", "net": net, "threads": n, "epochs": args.epochs,
                "warmup_steps": args.warmup_steps, "check_steps": args.check_steps,
                "infer_batches": args.infer_batches, "infer_reps": args.infer_reps, "floor_reps": args.floor_reps,
            }))
            save()
    if args.accuracy_seeds > 0:
        for net in args.nets:
            raw["accuracy"].append(job({"job": "accuracy", "net": net, "threads": max(args.threads),
                                        "epochs": args.epochs, "seeds": list(range(args.accuracy_seeds))}))
            save()
    if args.memory_epochs > 0:
        for net in args.nets:
            for impl in ("layerwise", "torch"):
                raw["memory"].append(job({"job": "memory", "net": net, "impl": impl, "threads": max(args.threads),
                                          "epochs": args.memory_epochs}))
                raw["memory"][-1]["epochs"] = args.memory_epochs
                save()


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def accuracy_table(rows: list[dict]) -> str:
    out = ["| network | seeds | epochs | layerwise acc % (mean ± sd) | PyTorch acc % (mean ± sd) | gap of means "
           "| per-seed gaps |", "|---|--:|--:|--:|--:|--:|---|"]
    for row in rows:
        lw = [100 * r["lw_test_acc"][-1] for r in row["runs"]]
        pt = [100 * r["torch_test_acc"][-1] for r in row["runs"]]
        gaps = ", ".join(f"{a - b:+.2f}" for a, b in zip(lw, pt, strict=True))
        gap = statistics.mean(lw) - statistics.mean(pt)
        out.append(f"| {row['net']} | {len(lw)} | {row['epochs']} | {statistics.mean(lw):.2f} ± {_sd(lw):.2f} "
                   f"| {statistics.mean(pt):.2f} ± {_sd(pt):.2f} | **{gap:+.2f}** | {gaps} |")
    return "\n".join(out)


def report(args: argparse.Namespace, raw: dict[str, Any]) -> str:
    """The Markdown report: header (command, machine, load), then the tables."""
    machines, results, memory = raw["machines"], raw["training"], raw["memory"]
    threads = sorted(machines)  # those measured (all, unless the run was interrupted)
    blas = machines[threads[0]]["blas"]
    versions = raw["versions"]
    env = raw["env"]
    load_start, load_end = raw["loadavg"]
    # The machine the run was made on, so that a saved run re-printed on another keeps its own.
    # Every run saved before it was recorded was made on the family-26 AMD VM (benchmarks/README.md,
    # "Machines measured", noted by hand then).
    cpu = raw.get("cpu") or {"model": "AMD EPYC (family 26, noted by hand)", "flags": "AVX-512",
                             "cpus": 2, "linux": "6.18.44-fc-v1252"}
    lines = [
        f"Command: `{raw['command']}`" + (f" (environment: {env})" if env else ""),
        "",
        f"Machine: {cpu['model']} ({cpu['flags']}), {cpu['cpus']} logical CPUs, Linux {cpu['linux']}; "
        f"Python {versions['python']}, NumPy {versions['numpy']} with {blas.get('internal_api')} "
        f"{blas.get('version')} ({blas.get('architecture')} kernels), PyTorch {versions['torch']} CPU"
        + (f" ({machines[threads[0]]['torch_cpu_capability']} kernels)." if "torch_cpu_capability" in
           machines[threads[0]] else "."),
        "Large-GEMM throughput (2048² float32, NumPy): "
        + ", ".join(f"{machines[n]['gemm_gflops']:.0f} GFLOP/s at {n} thread{'s' * (n > 1)}" for n in threads)
        + " (PyTorch: " + ", ".join(f"{machines[n]['torch_gemm_gflops']:.0f}" for n in threads) + ").",
        f"Load average at start {load_start[0]:.2f}, at end {load_end[0]:.2f}; the run took {raw['seconds']:.0f} s.",
        "",
        "Training: Fashion-MNIST, 60,000 images per epoch (deep-convnet: 20,000), float32, same initial weights "
        f"and sample order for both; median (min-max) over {args.epochs} epochs, alternating layerwise / PyTorch "
        "epoch by epoch. "
        f"Test accuracy after epoch {args.epochs}; *max acc gap*: the largest difference after any epoch; "
        f"*weights Δ*: max |w_lw - w_PT| / max |w| after {args.check_steps} steps of float64 twins "
        "(biases off zero, the same dropout masks); "
        "*ratio per epoch pair*: lw/PT of each pair of back-to-back epochs, median (min-max); "
        "*other CPU*: cores other processes used meanwhile.",
        "",
        training_table(results, machines),
    ]
    if args.infer_batches:
        lines += ["", f"Inference: the 10,000 test images in batches of {', '.join(map(str, args.infer_batches))}, "
                      f"median of {args.infer_reps}, alternating, layerwise's trained network against a PyTorch "
                      "twin with its very weights; *same class*: the test images both give the same highest "
                      "score, and *max |Δ score|* the largest difference of any score (of the largest score). "
                      "*products alone*: the forward GEMMs "
                      "of those batches replayed with nothing else (the GEMM-only floor of inference); "
                      "PyTorch's time over it is the largest speed-up any implementation doing these products "
                      "in float32 on this machine could show. *copies alone*: one copy of every array a "
                      "prediction writes besides (each layer's output, each convolution's col), in cache-sized "
                      "chunks; the last column is PyTorch's time over products and copies together, the "
                      "largest speed-up of an im2col-based implementation.", "", inference_table(results)]
    if raw.get("accuracy"):
        lines += ["", f"Accuracy over seeds: test accuracy after epoch {args.epochs} of each seed's run (untimed, "
                      "each seed its own initial weights, sample order and dropout masks, shared by both "
                      "implementations; all 60,000 training images per epoch, deep-convnet's too).",
                  "", accuracy_table(raw["accuracy"])]
    if memory:
        lines += ["", f"Peak memory (ru_maxrss of a separate process: load data, train {args.memory_epochs} "
                      "epoch(s); layerwise runs without PyTorch imported).", "", memory_table(memory)]
    if any("lw_thread_plan" in r for r in results):
        lines += ["", "layerwise's choices on this machine (`kernels/tuning.py`): how the Trainer used the threads, "
                      "measured before the timed epochs (ms a step of a copy of the network under each plan), "
                      "and the evaluation chunk, from the last-level cache (`kernels/cache_sizes.py`).", "",
                  choices_table(results)]
    ways = conv_ways_table(results)
    if ways:
        lines += ["", "The convolutions' ways kept on this machine (`kernels.tuning.conv_way`): each 3x3 "
                      "shape's forward and weight gradient timed once by im2col and by Winograd (F(2×2, 3×3) with its "
                      "transforms as products, and as sums; F(4×4, 3×3) with products) on 32 images "
                      "(ms, the fastest of 7 calls each), keyed by how the call ran on the threads (inside a "
                      "split's parts, each way timed on the parts' threads at once).", "", ways]
    blocks = product_blocks_table(results)
    if blocks:
        lines += ["", "The block sizes kept on this machine for the convolutions' tall products "
                      "(`kernels.tuning.product_blocks`): each shape of product timed once whole (0) and in blocks of "
                      "128-2048 rows on 4,096 random rows (ms, the fastest of 7 calls each); blocks only where 3% "
                      "faster.", "", blocks]
    sizes = split_sizes_table(results)
    if sizes:
        lines += ["", "The sizes kept on this machine from which layerwise split work across the threads it owned "
                      "(`kernels.split_sizes`): the smallest pass (values), optimizer update (a parameter's values) "
                      "and product (multiply-adds) that ran 5% faster split than whole, at that size and every larger "
                      "one measured, interpolated between powers of two (us whole / split at each size).", "", sizes]
    lines += ["", "Networks: " + "; ".join(f"{k}: {NETS[k].title}" for k in args.nets) + "."]
    return "\n".join(lines)


def split_sizes_table(results: list[dict]) -> str:
    """The split sizes the runs recorded (``worker``'s ``lw_split_sizes``), one row per key; ""
    when none did (a run saved before they were measured, or no thread owned)."""
    kept: dict[str, dict] = {}
    for r in results:
        kept.update(r.get("lw_split_sizes") or {})
    if not kept:
        return ""
    out = ["| work (kind, dtype, threads) | split from | us whole / split, by size |", "|---|--:|---|"]
    for key, record in sorted(kept.items()):
        at = "never" if record["min"] >= 1 << 40 else f"{record['min']:,}"
        sizes = ", ".join(f"{int(size):,}: {whole:g} / {split:g}" for size, (whole, split) in
                          sorted(record.get("us", {}).items(), key=lambda item: int(item[0])))
        out.append(f"| {key} | {at} | {sizes} |")
    return "\n".join(out)


def product_blocks_table(results: list[dict]) -> str:
    """The block sizes the runs recorded (``worker``'s ``lw_product_blocks``), one row per key;
    "" when none did (a run saved before the choice existed, or no product asked)."""
    kept: dict[str, dict] = {}
    for r in results:
        kept.update(r.get("lw_product_blocks") or {})
    if not kept:
        return ""
    sizes = sorted({int(rows) for record in kept.values() for rows in record.get("ms", {})})
    header = " / ".join(map(str, sizes))
    out = [f"| product (op, sizes, dtype, layouts, threads) | rows per block | ms by rows {header} |", "|---|--:|--:|"]
    for key, record in sorted(kept.items()):
        ms = record.get("ms", {})
        times = " / ".join(f"{ms[str(rows)]:.3g}" if str(rows) in ms else "-" for rows in sizes)
        out.append(f"| {key} | {record['rows'] or 'whole'} | {times} |")
    return "\n".join(out)


def conv_ways_table(results: list[dict]) -> str:
    """The convolution ways the runs recorded (``worker``'s ``lw_conv_ways``), one row per key;
    "" when none did (a run saved before the choice existed, or no convolution asked)."""
    ways: dict[str, dict] = {}
    for r in results:
        ways.update(r.get("lw_conv_ways") or {})
    if not ways:
        return ""
    names = ("im2col", "winograd", "winograd by sums", "winograd 4x4")  # kernels.tuning.CONV_WAYS, in this file's runs
    out = ["| convolution (input, dtype, threads) | way | ms im2col / Winograd / Winograd by sums / Winograd 4x4 |",
           "|---|---|--:|"]
    for key, record in sorted(ways.items()):
        ms = record.get("ms", {})
        times = " / ".join(f"{ms[w]:.3g}" if w in ms else "-" for w in names)
        out.append(f"| {key} | {record['way']} | {times} |")
    return "\n".join(out)


def conv_chunk(recorded: dict | None) -> str:
    """The convolutions' im2col chunk a run recorded (``worker._conv_chunk``); "-" for a
    network without convolutions, or a run saved before convolutions ran in chunks."""
    if not recorded:
        return "-"
    cache = recorded["last_level_cache"]
    source = f"{cache[0] // 2**20} MiB cache / {cache[1]} CPUs / 4" if cache else "no cache size: default"
    return (f"{recorded['bytes'] / 2**20:g} MiB ({source}) = {recorded['images']} of {recorded['batch']} "
            "images of the largest col")


PLAN_NAMES = ("blas", "blas1", "owned", "split", "processes")  # kernels.tuning.PLANS, whatever the tree under test has


def shared_steps(by_epoch: list[dict] | None) -> str:
    """How many timed steps ran on each number of BLAS threads, epoch by epoch, where the
    Trainer shared the cores (``CoreShare``: an MLP whose threads were left to layerwise);
    "-" where it did not (another plan, fixed threads, or a run before this was recorded)."""
    if not by_epoch or not any(by_epoch):
        return "-"
    return "; ".join(", ".join(f"{threads}: {steps}" for threads, steps in sorted(epoch.items(), reverse=True))
                     for epoch in by_epoch)


def choices_table(results: list[dict]) -> str:
    out = ["| network | threads | training plan | ms a step: blas / blas1 / owned / split / processes "
           "| BLAS threads of the timed steps, by epoch | inference chunk | convolution chunk |",
           "|---|--:|---|--:|---|---|---|"]
    for r in results:
        plan, chunk = r.get("lw_thread_plan"), r.get("lw_inference_chunk_bytes")
        if plan is None:
            continue
        ms = plan["ms_per_step"]
        # "-": a plan not measured (split: not offered for the network, or a run before it existed)
        times = " / ".join(f"{ms[p]:.3g}" if p in ms else "-" for p in PLAN_NAMES) if ms else "-"
        cache = chunk["last_level_cache"]
        share = chunk.get("share_parts", 2)  # as the worker recorded it; runs before it recorded none took half
        source = f"{cache[0] // 2**20} MiB cache / {cache[1]} CPUs / {share}" if cache else "no cache size: default"
        out.append(f"| {r['net']} | {r['threads']} | {plan['plan']} ({plan['how']}) | {times} "
                   f"| {shared_steps(r.get('lw_blas_threads_by_epoch'))} "
                   f"| {chunk['bytes'] / 2**20:g} MiB ({source}) = {chunk['images']} images "
                   f"| {conv_chunk(r.get('lw_conv_chunk'))} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report is not None:  # re-print a saved run
        raw = json.loads(args.report.read_text())
        raw["machines"] = {int(k): v for k, v in raw["machines"].items()}
        saved = argparse.Namespace(**raw["args"])
        print(report(saved, raw))
        return 0
    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS",
                                      "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", *TORCH_ISA_VARIABLES)
           if k in os.environ}
    if not args.quiet and {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"} & set(env):
        print(f"warning: {env} is set; OpenBLAS may run a slower kernel than this CPU supports",
              file=sys.stderr)
    started, load_start = time.perf_counter(), os.getloadavg()
    raw: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks", *(sys.argv[1:] if argv is None else argv)]),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "env": env, "versions": _versions(),
        "cpu": {"model": _cpu_model(), "flags": _cpu_flags(), "cpus": os.cpu_count(), "linux": platform.release()},
    }

    def save() -> None:  # after every measurement, so an interrupted run keeps what it measured
        raw.update(loadavg=[load_start, os.getloadavg()], seconds=time.perf_counter() - started)
        if args.json:
            args.json.write_text(json.dumps(raw, indent=1))

    # layerwise measures how to use the threads the first time a network trains on a machine
    # and keeps the choice (kernels/tuning.py): a folder of the run's own, so that this run
    # measures (and reports) its choices instead of reusing an earlier run's.
    with tempfile.TemporaryDirectory(prefix="layerwise-benchmark-tuning-") as tuning_dir:
        os.environ["LAYERWISE_CACHE_DIR"] = tuning_dir  # the workers inherit it
        run(args, raw, save)
    save()
    print(report(args, raw))
    return 0

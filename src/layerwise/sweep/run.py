"""Running a sweep: every unfinished trial through a ``concurrent.futures.Executor`` (a local
process pool, or a Dask cluster's executor), each result recorded as it arrives, and the
summary the command prints (the best trials and the command that trains the best one).

Dask reschedules the trials of a worker that dies on the workers that remain; a local pool
whose process dies is broken for good, so it is replaced and the unfinished trials resubmitted.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import shlex
from collections.abc import Callable, Iterator
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from ..errors import InputError, LayerwiseError
from .spec import SweepSpec
from .store import SweepDir
from .trial import run_trial

__all__ = ["CLUSTER_EXTRA", "best_trials", "cluster_executor", "local_executor", "pools_after", "prestart", "run_sweep",
           "train_command"]

#: What to install for ``--address``.
CLUSTER_EXTRA = "pip install 'layerwise[cluster]'"
#: A local pool broken by a dying process is replaced at most this many times.
POOL_RESTARTS = 3
#: Seconds to reach a scheduler before ``--address`` is called unreachable.
CONNECT_SECONDS = 5


@contextmanager
def local_executor(workers: int) -> Iterator[Executor]:
    """A pool of ``workers`` processes, started fresh ("spawn": a forked BLAS thread pool can
    hang a child)."""
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def _started() -> int:
    return os.getpid()


def prestart(pool: Executor, workers: int) -> list[Future]:
    """Have ``pool`` start its ``workers`` processes now (a spawn pool starts one per task
    submitted while none is idle), so that their start and imports, 0.18-0.25 s on the 2-core
    VM, overlap what the caller does next (reading the data) instead of delaying the first trial."""
    return [pool.submit(_started) for _ in range(workers)]


def pools_after(first: Executor, workers: int) -> Callable[[], AbstractContextManager[Executor]]:
    """The executors :func:`run_sweep` opens: ``first`` (already running, shut down by its
    owner), then, should a dying process break it, fresh pools of ``workers``."""
    opened = 0

    def make() -> AbstractContextManager[Executor]:
        nonlocal opened
        opened += 1
        return nullcontext(first) if opened == 1 else local_executor(workers)

    return make


def _handshake(address: str, seconds: float) -> None:
    """Shake hands with the scheduler at ``address`` within ``seconds``, or raise. Dask's
    connect() bounds the TCP connection by its timeout but not the handshake after it, so where
    something else listens (the dashboard's port 8787, a web server) Client() would wait for ever.
    In a thread of its own: the caller may be running an event loop (a notebook)."""
    from distributed.comm import connect  # the optional extra, as in cluster_executor

    async def shake() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=seconds), seconds)
        await comm.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, shake()).result()


@contextmanager
def cluster_executor(address: str) -> Iterator[Executor]:
    """The executor of the Dask cluster whose scheduler listens at ``address``."""
    try:
        from distributed import Client  # the optional extra: only --address needs it
    except ImportError:
        raise InputError(f"--address needs Dask distributed: {CLUSTER_EXTRA}") from None
    try:
        _handshake(address, CONNECT_SECONDS)
        client = Client(address, timeout=f"{CONNECT_SECONDS}s")
    except (OSError, TimeoutError, asyncio.TimeoutError) as exc:
        detail = f" ({type(exc).__name__}: {exc})" if str(exc) else ""
        raise InputError(f"--address {address}: no Dask scheduler answered within {CONNECT_SECONDS} s"
                         f"{detail}") from None
    except ValueError as exc:  # a malformed address
        raise InputError(f"--address {address}: {exc}") from None
    try:
        yield client.get_executor()
    finally:
        client.close()


def run_sweep(spec: SweepSpec, sweep_dir: SweepDir, make_executor: Callable[[], Any], threads: int,
              progress: bool = True, on_result: Callable[[dict], None] | None = None,
              data_dir: str | None = None) -> dict[int, dict]:
    """Run every trial of ``spec`` not yet in ``sweep_dir``, ``threads`` BLAS threads each,
    through the executors ``make_executor()`` opens; returns all finished trials by number.
    ``data_dir``: the trials' data prepared by this process (``trial.write_data_dir``), for
    workers on this machine.
    A trial that fails (not a divergence: an error) is reported and left unrecorded, so the
    next run tries it again; the sweep raises LayerwiseError naming such trials at the end."""
    from tqdm.auto import tqdm  # imported when a sweep starts, not at the CLI's start

    configs = spec.configs()
    done = sweep_dir.results()
    extra = {"threads": threads, **({"data_dir": data_dir} if data_dir else {})}
    pending = [{**c, **extra} for c in configs if c["trial"] not in done]
    failed: dict[int, str] = {}
    bar = tqdm(total=len(configs), initial=len(configs) - len(pending), unit="trial", disable=not progress,
               desc="sweep")
    restarts = 0
    try:
        while pending:
            broken = False
            with make_executor() as executor:
                futures: dict[Future, dict] = {}
                try:
                    for c in pending:
                        futures[executor.submit(run_trial, c)] = c
                except BrokenExecutor:  # a worker died before the trials were sent (a prestarted pool)
                    broken = True
                for future in as_completed(futures):
                    config = futures[future]
                    try:
                        result = future.result()
                    except BrokenExecutor:
                        broken = True
                        continue
                    except Exception as exc:  # a trial's own error: reported, not recorded
                        failed[config["trial"]] = f"{type(exc).__name__}: {exc}"
                        continue
                    sweep_dir.append(result)
                    done[result["trial"]] = result
                    bar.update(1)
                    best = max((r["final_val_acc"] for r in done.values() if r["final_val_acc"] is not None),
                               default=None)
                    if best is not None:
                        bar.set_postfix(best=f"{best:.4f}")
                    if on_result is not None:
                        on_result(result)
            pending = [c for c in pending if c["trial"] not in done and c["trial"] not in failed]
            if pending and broken:
                restarts += 1
                if restarts > POOL_RESTARTS:
                    raise LayerwiseError(f"the worker pool broke {restarts} times (a process was killed?); "
                                         f"{len(pending)} trials did not run: rerun the command to resume")
            elif pending:
                break
    finally:
        bar.close()
    if failed:
        names = "; ".join(f"trial {k}: {v}" for k, v in sorted(failed.items()))
        raise LayerwiseError(f"{len(failed)} trial(s) failed and were not recorded (rerun to retry them): {names}")
    return done


def _score(result: dict) -> float:
    acc = result.get("final_val_acc")
    return -math.inf if acc is None or result.get("status") != "done" else acc


def best_trials(results: dict[int, dict], n: int) -> list[dict]:
    """The ``n`` best finished trials by final validation accuracy (diverged ones last)."""
    return sorted(results.values(), key=lambda r: (-_score(r), r["trial"]))[:n]


def train_command(spec: SweepSpec, result: dict) -> str:
    """The ``layerwise train`` command that trains ``result``'s configuration on the whole
    training set (scored, this time, on the test set)."""
    c = result["config"]
    parts = ["layerwise", "train", "--dataset", spec.dataset, "--model", spec.model]
    if spec.hidden:
        parts += ["--hidden", ",".join(str(h) for h in spec.hidden)]
    parts += ["--activation", spec.activation, "--optimizer", spec.optimizer, "--epochs", str(spec.epochs),
              "--batch-size", str(spec.batch_size), "--lr", f"{c['lr']:.4g}"]
    if spec.weight_decay is not None:
        parts += ["--weight-decay", f"{c['weight_decay']:.4g}"]
    if spec.dtype != "float32":
        parts += ["--dtype", spec.dtype]
    parts += ["--seed", str(c["seed"])]  # the trial's own initialisation
    return " ".join(shlex.quote(p) for p in parts)


def summary(spec: SweepSpec, results: dict[int, dict], n: int = 5) -> str:
    """The best ``n`` trials as a table, and the command that trains the best one."""
    best = best_trials(results, n)
    diverged = sum(1 for r in results.values() if r.get("status") == "diverged")
    lines = [f"{len(results)} of {spec.trials} trials finished" + (f", {diverged} diverged" if diverged else ""),
             "", f"best {len(best)} by validation accuracy:",
             "  rank  trial  lr          weight decay  val acc   train acc"]
    for rank, r in enumerate(best, 1):
        wd = f"{r['config']['weight_decay']:.3e}" if spec.weight_decay is not None else "-"
        val = "diverged" if r.get("status") != "done" else f"{r['final_val_acc']:.4f}"
        train = "" if r.get("final_train_acc") is None else f"{r['final_train_acc']:.4f}"
        lines.append(f"  {rank:>4}  {r['trial']:>5}  {r['config']['lr']:.3e}  {wd:<12}  {val:<8}  {train}")
    if best and best[0].get("status") == "done":
        lines += ["", "train the best on the whole training set:", "  " + train_command(spec, best[0])]
    return "\n".join(lines)

"""``layerwise sweep``: the book's random search for the learning rate and weight decay, on
this machine's cores by default, on a Dask cluster with ``--address``; resumable."""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path

from ..cpu import usable_cores
from ..datasets import DATASET_NAMES
from ..datasets.mnist import find_idx_files
from ..errors import InputError
from ..recipes import ACTIVATIONS, MODELS, OPTIMIZERS
from ..sweep import (
    BOOK_LR,
    BOOK_WEIGHT_DECAY,
    SweepDir,
    SweepSpec,
    cluster_executor,
    local_executor,
    parse_range,
    pools_after,
    prestart,
    run_sweep,
    summary,
)
from ..sweep.plots import draw_best_trials, draw_lr_weight_decay
from ..sweep.store import PLOT_NAMES
from ..sweep.trial import (
    data_dir_parent,
    data_dir_prefix,
    raw_training_data,
    remove_leftover_data_dirs,
    write_data_dir,
)
from .train import _hidden, _positive_int

PLOT_HELP = "best-trials.png (the book's figure) and lr-weight-decay.png"


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction in (0, 1), got {text}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="search the learning rate and weight decay (the book's chapter 6), locally or on a Dask cluster",
        description="Random search (or --grid) over the learning rate and weight decay, each trial a short "
        "training run scored on a validation split of the training data (never the test set). Trials run "
        "in a local process pool, or on a Dask cluster with --address. Every finished trial is appended to "
        "SWEEP_DIR/trials.jsonl: running the same command again resumes.",
    )
    p.add_argument("--dataset", default="digits",
                   help="digits (bundled), mnist, fashion-mnist, or a folder holding the four IDX files")
    p.add_argument("--model", choices=MODELS, default="mlp", help="default: mlp (MultiLayerNet, as in the book)")
    p.add_argument("--hidden", type=_hidden, default=None, help="hidden layer sizes (default: the model's)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="relu")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd", help="default: sgd, as in the book")
    p.add_argument("--epochs", type=_positive_int, default=20, help="epochs per trial (default 20)")
    p.add_argument("--batch-size", type=_positive_int, default=100)
    p.add_argument("--trials", type=_positive_int, default=100, help="number of trials (default 100, the book's)")
    p.add_argument("--lr", default=None, metavar="LOW..HIGH",
                   help="learning-rate range, drawn log-uniformly (default 1e-6..1e-2, the book's)")
    p.add_argument("--weight-decay", default=None, metavar="LOW..HIGH",
                   help="weight-decay range for --model mlp, drawn log-uniformly (default 1e-8..1e-4, the book's)")
    p.add_argument("--grid", action="store_true",
                   help="a log-spaced grid instead of random draws (--trials a square number with weight decay)")
    p.add_argument("--validation", type=_fraction, default=0.2,
                   help="fraction of the training data held out to score trials (default 0.2, the book's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=_positive_int, default=None,
                   help="local worker processes (default: one per usable core)")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="BLAS threads per trial (default: the cores divided among the workers; 1 on a cluster)")
    p.add_argument("--address", default=None, metavar="tcp://HOST:PORT",
                   help="run the trials on the Dask cluster whose scheduler listens there "
                   "(needs pip install 'layerwise[cluster]')")
    p.add_argument("--out", type=Path, default=None, metavar="SWEEP_DIR",
                   help="where the sweep lives (default: sweeps/DATASET-MODEL)")
    p.add_argument("--force", action="store_true", help="replace another sweep in SWEEP_DIR")
    p.add_argument("--report", type=Path, default=None, metavar="SWEEP_DIR",
                   help=f"print the best trials and draw {PLOT_HELP} again from SWEEP_DIR, and stop")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    # `--weight-decay -1..1` is a value to refuse by name, not an unknown option: argparse
    # before Python 3.13 takes only "-1" and "-.5" for negative numbers ("expected one
    # argument"); this is 3.13's own pattern (the sweep has no option that looks like a number).
    p._negative_number_matcher = re.compile(r"-\.?\d")
    p.set_defaults(func=run)


@contextmanager
def terminate_as_exit() -> Iterator[None]:
    """While inside, SIGTERM (``kill``, a job scheduler) raises SystemExit(143) in the main
    thread, as Ctrl-C raises KeyboardInterrupt: the sweep's context managers run and its data
    folder is removed. Elsewhere (another thread, no SIGTERM on the platform) nothing changes."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _spec(args: argparse.Namespace) -> SweepSpec:
    lr = parse_range(args.lr, "--lr") if args.lr is not None else BOOK_LR
    if args.weight_decay is not None:
        weight_decay = parse_range(args.weight_decay, "--weight-decay")
    else:
        weight_decay = BOOK_WEIGHT_DECAY if args.model == "mlp" else None
    dataset = str(args.dataset)
    if dataset.lower() not in DATASET_NAMES and not os.path.isdir(dataset):
        raise InputError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASET_NAMES)}, "
                         "or give a folder holding the four IDX files")
    if os.path.isdir(dataset):
        find_idx_files(dataset)  # names the missing files now, not in every trial
        dataset = os.path.abspath(dataset)  # workers run elsewhere: the same path must name it there
    return SweepSpec(dataset=dataset, model=args.model, hidden=tuple(args.hidden) if args.hidden else None,
                     activation=args.activation, optimizer=args.optimizer, epochs=args.epochs,
                     batch_size=args.batch_size, trials=args.trials, lr=lr, weight_decay=weight_decay,
                     grid=args.grid, validation=args.validation, seed=args.seed)


def _draw(spec: SweepSpec, sweep_dir: SweepDir, results: dict) -> list[Path]:
    paths = [sweep_dir.path / name for name in PLOT_NAMES]
    draw_best_trials(spec, results, paths[0])
    draw_lr_weight_decay(spec, results, paths[1])
    return paths


def report(path: Path) -> int:
    sweep_dir = SweepDir(path)
    spec = sweep_dir.read_spec()
    if spec is None:
        raise InputError(f"--report {path}: no sweep.json there; is it a sweep directory?")
    results = sweep_dir.results()
    print(summary(spec, results))
    if results:
        print(f"plots: {', '.join(str(p) for p in _draw(spec, sweep_dir, results))}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.report is not None:
        return report(args.report)
    spec = _spec(args)  # every setting checked before anything is written
    if args.address is not None and args.workers is not None:
        raise InputError("--workers counts local processes; with --address the cluster's workers run the trials")
    cores = usable_cores()
    workers = args.workers or cores
    threads = args.threads or (1 if args.address else max(1, cores // workers))
    out = args.out or Path("sweeps") / f"{Path(spec.dataset).name}-{spec.model}"
    sweep_dir = SweepDir(out)
    with ExitStack() as stack:
        # SIGTERM unwinds like Ctrl-C, so the workers stop and the data folder goes.
        stack.enter_context(terminate_as_exit())
        pool = cluster = data_dir = None
        if args.address is None:
            # The pool first: its workers start and import while this process reads the data.
            pool = stack.enter_context(local_executor(workers))
            prestart(pool, workers)
            # Read, verified and split once, here; the local workers map the result (write_data_dir).
            raw = raw_training_data(spec.dataset, progress=not args.quiet)
            parent = data_dir_parent(raw, spec.dtype)
            remove_leftover_data_dirs(parent)
            scratch = stack.enter_context(tempfile.TemporaryDirectory(
                prefix=data_dir_prefix(), dir=parent, ignore_cleanup_errors=True))
            # Exits run last-in first-out: the workers stop before their mapped files are removed
            # (Windows cannot delete a mapped file).
            stack.callback(pool.shutdown)
            try:  # before SWEEP_DIR is written: a --validation that leaves nothing is refused here
                data_dir = str(write_data_dir(raw, spec.model, spec.dtype, spec.validation, spec.seed,
                                              Path(scratch)))
            except OSError as exc:
                raise InputError(f"could not write the training data for the workers in {scratch}: "
                                 f"{exc.strerror or exc}") from None
            del raw  # the workers map the files
        else:
            cluster = stack.enter_context(cluster_executor(args.address))
        resumed = sweep_dir.prepare(spec, args.force)
        done = len(sweep_dir.results())
        where = f"the Dask cluster at {args.address}" if cluster else f"{workers} local worker process" + \
            ("es" if workers != 1 else "")
        print(f"sweep of {spec.trials} trials ({'grid' if spec.grid else 'random'}: {spec.model} on {spec.dataset}, "
              f"{spec.epochs} epochs of {spec.optimizer}) on {where}, {threads} BLAS thread(s) per trial; "
              + (f"resuming {out}: {done} done" if resumed else f"writing {out}"), flush=True)
        make = (lambda: nullcontext(cluster)) if cluster else pools_after(pool, workers)
        progress = not args.quiet and sys.stderr.isatty()
        started = time.perf_counter()
        results = run_sweep(spec, sweep_dir, make, threads, progress=progress, data_dir=data_dir)
        ran = len(results) - done
        seconds = time.perf_counter() - started
        if ran:
            print(f"ran {ran} trial{'s' if ran != 1 else ''} in {seconds:.2f} s ({ran / seconds:.2f} trials/s)")
    print(summary(spec, results))
    print(f"plots: {', '.join(str(p) for p in _draw(spec, sweep_dir, results))}")
    return 0

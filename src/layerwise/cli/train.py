"""``layerwise train``: train a network, keep the model, its history and its curves."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..cpu import describe
from ..errors import InputError
from ..io import atomic_write, load_checkpoint, save
from ..optim import LR_SCHEDULES, make_optimizer
from ..recipes import (
    ACTIVATIONS,
    MODELS,
    OPTIMIZERS,
    build_network,
    default_lr,
    default_optimizer,
    load_run_data,
)
from ..train import CHECKPOINT_NAME, MODEL_NAME, Trainer
from ._common import add_threads_option, save_png

CONFIG_NAME = "config.json"
#: Every file a run directory holds (``--force`` removes these, and only these).
RUN_FILES = (CONFIG_NAME, "checkpoint.safetensors", "model.safetensors", "history.json", "history.csv",
             "curves.png")

# Settings that define a run; saved in RUN_DIR/config.json so --resume can rebuild it.
RUN_KEYS = ("dataset", "model", "hidden", "activation", "optimizer", "lr", "lr_schedule", "epochs", "batch_size",
            "weight_decay", "dropout", "batchnorm", "seed", "dtype")


def _int_at_least(minimum: int):
    """An argparse type: a whole number >= minimum, with a message naming the rule."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_nonnegative_int = _int_at_least(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def _hidden(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 512,512, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"hidden sizes must be positive, got {text!r}")
    return sizes


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a network (default: a two-layer net on the bundled digits)",
        description="Train a network with backpropagation. With no arguments: a two-layer "
        "net on the bundled 8x8 digits, done in seconds. Writes a run directory holding the "
        "model (model.safetensors), the last checkpoint, history.json/.csv and curves.png.",
    )
    p.add_argument("--dataset", default="digits",
                   help="digits (bundled), mnist, fashion-mnist, or a folder holding the four IDX files")
    p.add_argument("--model", choices=MODELS, default="two-layer")
    p.add_argument("--hidden", type=_hidden, default=None,
                   help="hidden layer sizes, e.g. 512,512 (default: 50 for two-layer, 100,100 for mlp, "
                   "100 for convnet)")
    p.add_argument("--activation", choices=ACTIVATIONS, default="relu",
                   help="activation of the mlp's hidden layers")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None,
                   help="default: sgd, the book's recipe; adam for the bundled digits, whose 1,437 "
                   "training images give only 15 steps per epoch")
    p.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default: 0.1 for sgd, 0.01 for momentum/nesterov/adagrad, "
                   "0.001 for rmsprop/adam, 0.01 for adam on the bundled digits)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="constant",
                   help="constant, or cosine: anneal lr towards 0 over the run's steps (default: constant)")
    p.add_argument("--epochs", type=_positive_int, default=20)
    p.add_argument("--batch-size", type=_positive_int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay lambda (mlp)")
    p.add_argument("--dropout", type=_fraction, default=0.0, help="dropout ratio after hidden layers (mlp)")
    p.add_argument("--batchnorm", action="store_true", help="batch normalisation before activations (mlp)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="float32 (default, for speed) or float64 (the book's nets' dtype in Python)")
    p.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<time>-<model>)")
    p.add_argument("--force", action="store_true", help="overwrite an --out directory holding another run")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                   help="continue an interrupted run from its last checkpoint")
    p.add_argument("--checkpoint-every", type=_nonnegative_int, default=0, metavar="STEPS",
                   help="also checkpoint every STEPS batches (default: at the end of each epoch)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no per-epoch lines")
    add_threads_option(p)
    p.set_defaults(func=run)


def _prepare_run_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise InputError(f"--out {out} already holds files (another run?); "
                             "use --resume to continue it or --force to overwrite it")
        # The other run's files go now: its checkpoint must never be resumed with this
        # run's config.json if this run stops before its own first checkpoint.
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
        _remove_stale_temp_files(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent is a file, a read-only file system, ...
        raise InputError(f"cannot create the run directory {out}: {exc.strerror or exc}") from None
    _check_writable(out)


def _check_writable(run_dir: Path) -> None:
    """Fail before training, not at the first checkpoint, when nothing can be written there."""
    probe = run_dir / ".write-test"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(f"cannot write to the run directory {run_dir}: {exc.strerror or exc}") from None


# What each setting in config.json must be, checked on --resume: a hand-edited or damaged file
# is named, not a KeyError or TypeError deep inside model building.
def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return (_is_int(v) or isinstance(v, float)) and np.isfinite(v)


SETTING_CHECKS = {
    "dataset": lambda v: isinstance(v, str) and v != "",
    "model": lambda v: v in MODELS,
    "hidden": lambda v: v is None or (isinstance(v, list) and v != [] and all(_is_int(h) and h > 0 for h in v)),
    "activation": lambda v: v in ACTIVATIONS,
    "optimizer": lambda v: v in OPTIMIZERS,
    "lr": lambda v: _is_number(v) and v > 0,
    "lr_schedule": lambda v: v in LR_SCHEDULES,
    "epochs": lambda v: _is_int(v) and v > 0,
    "batch_size": lambda v: _is_int(v) and v > 0,
    "weight_decay": lambda v: _is_number(v) and v >= 0,
    "dropout": lambda v: _is_number(v) and 0 <= v < 1,
    "batchnorm": lambda v: isinstance(v, bool),
    "seed": _is_int,
    "dtype": lambda v: v in ("float32", "float64"),
}


def _read_settings(run_dir: Path) -> dict:
    config_path = run_dir / CONFIG_NAME
    if not config_path.is_file():
        raise InputError(f"--resume {run_dir}: no {CONFIG_NAME} there; is it a layerwise run directory?")
    try:
        settings = json.loads(config_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{config_path}: not valid JSON ({exc})") from None
    if not isinstance(settings, dict):
        raise InputError(f"{config_path}: expected a JSON object of run settings")
    settings.setdefault("lr_schedule", "constant")  # runs from before the option existed
    missing = [k for k in RUN_KEYS if k not in settings]
    if missing:
        raise InputError(f"{config_path}: missing setting(s) {', '.join(missing)}")
    bad = [f"{k}={settings[k]!r}" for k in RUN_KEYS if not SETTING_CHECKS[k](settings[k])]
    if bad:
        raise InputError(f"{config_path}: invalid setting(s) {', '.join(bad)}")
    return settings


def _given_options(argv: list[str]) -> set[str]:
    """The RUN_KEYS set on the command line ``argv``, read as argparse reads it (so
    ``--lr=0.1`` and abbreviations like ``--learn`` count), not by searching for strings."""
    parser = argparse.ArgumentParser(prog="layerwise")
    sub = parser.add_subparsers(dest="command")
    register(sub)
    unset = object()  # not a string: argparse would run a string default through `type`
    sub.choices["train"].set_defaults(**dict.fromkeys(RUN_KEYS, unset))
    parsed = vars(parser.parse_args(argv))
    return {k for k in RUN_KEYS if parsed[k] is not unset}


def _remove_stale_temp_files(run_dir: Path) -> None:
    """A run killed while writing leaves its temp file (``.checkpoint.safetensors.*.tmp``)."""
    for name in RUN_FILES:
        for stale in run_dir.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    progress = not args.quiet and sys.stderr.isatty()
    if args.resume is not None:
        run_dir = args.resume
        if args.out is not None or args.force:
            raise InputError("--resume continues RUN_DIR in place; --out and --force do not apply")
        settings = _read_settings(run_dir)
        given = _given_options(getattr(args, "argv", sys.argv[1:]))
        if given - {"epochs"}:
            raise InputError(f"--resume takes the run's own settings; only --epochs may change (got {sorted(given)})")
        if "epochs" in given:
            settings["epochs"] = args.epochs
        _check_writable(run_dir)
        _remove_stale_temp_files(run_dir)
    else:
        settings = {k: getattr(args, k) for k in RUN_KEYS}
        if settings["optimizer"] is None:
            settings["optimizer"] = default_optimizer(settings["dataset"])
        if settings["lr"] is None:
            settings["lr"] = default_lr(settings["optimizer"], settings["dataset"])
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = args.out or Path("runs") / f"{stamp}-{args.model}-{Path(str(args.dataset)).name}"
        _prepare_run_dir(run_dir, args.force)

    (x_train, t_train), (x_test, t_test) = load_run_data(settings, progress)
    classes = int(max(t_train.max(), t_test.max())) + 1
    model = build_network(settings, x_train.shape[1:], classes)
    optimizer = make_optimizer(settings["optimizer"], lr=settings["lr"])
    say = (lambda _m: None) if args.quiet else print
    trainer = Trainer(model, optimizer, x_train, t_train, x_test, t_test, epochs=settings["epochs"],
                      batch_size=settings["batch_size"], seed=settings["seed"], run_dir=run_dir,
                      checkpoint_every=args.checkpoint_every, progress=progress, log=say,
                      lr_schedule=settings["lr_schedule"])
    if args.resume is not None:
        checkpoint_path = run_dir / CHECKPOINT_NAME
        if not checkpoint_path.is_file():
            raise InputError(f"--resume {run_dir}: no {CHECKPOINT_NAME}; the run stopped before its first checkpoint")
        checkpoint = load_checkpoint(checkpoint_path)
        if checkpoint.model.config() != model.config():
            raise InputError(f"--resume {run_dir}: the checkpoint holds a different architecture "
                             f"({checkpoint.model.config()['class']}) than the run's settings")
        model.load_state_dict(checkpoint.model.state_dict())
        optimizer.load_state_dict(checkpoint.optimizer.state_dict())
        trainer.load_state(checkpoint.state)
        say(f"resuming {run_dir} at epoch {trainer.epoch + 1}, batch {trainer.step_in_epoch + 1} "
            f"({describe(args.threads)})")
    else:
        atomic_write(run_dir / CONFIG_NAME, json.dumps(settings, indent=1).encode())
        say(f"training {settings['model']} on {settings['dataset']} "
            f"({len(x_train)} train / {len(x_test)} test images, {settings['optimizer']} lr {settings['lr']:g}"
            + (f", {settings['lr_schedule']} schedule" if settings["lr_schedule"] != "constant" else "")
            + f"; {describe(args.threads)})")

    history = trainer.fit()
    meta = {"dataset": str(settings["dataset"]), "input_shape": list(x_train.shape[1:]), "classes": classes}
    save(model, run_dir / MODEL_NAME, state=meta)
    history.write(run_dir)
    _plot(history, run_dir / "curves.png")
    final = history.epochs[-1]
    epochs = f"{final['epoch']} epoch" + ("s" if final["epoch"] != 1 else "")
    print(f"test accuracy {final.get('test_acc', float('nan')):.4f} after {epochs}")
    print(f"run directory: {run_dir} (model.safetensors, history.json, history.csv, curves.png)")
    return 0


def _plot(history, path: Path) -> None:
    """Loss per step and accuracy per epoch, side by side, written atomically as PNG."""
    import matplotlib  # ~0.3 s to import: only when a run ends and its curves are drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # the backend chosen above, before pyplot loads
    import matplotlib.ticker

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(history.step_loss, lw=0.6, alpha=0.5, label="per step")
    if len(history.step_loss) >= 20:
        k = max(1, len(history.step_loss) // 50)
        smooth = np.convolve(history.step_loss, np.ones(k) / k, mode="valid")
        ax_loss.plot(np.arange(k - 1, len(history.step_loss)), smooth, label=f"mean of {k}")
    ax_loss.set(xlabel="step", ylabel="loss", title="training loss")
    ax_loss.legend()
    epochs = [row["epoch"] for row in history.epochs]
    ax_acc.plot(epochs, [row["train_acc"] for row in history.epochs], "o-", label="train")
    if history.epochs and "test_acc" in history.epochs[0]:
        ax_acc.plot(epochs, [row["test_acc"] for row in history.epochs], "s-", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    ax_acc.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax_acc.legend()
    fig.tight_layout()
    save_png(fig, path)

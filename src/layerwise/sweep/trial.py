"""One trial: a plain function from a configuration to a result, run in whatever process the
executor chose (a local pool's, a Dask worker's), with no framework code inside.

The trial loads its data by name or path where it runs (cached per process, so a worker that
runs many trials reads the files once; arrays never travel with the task), or, in a local
pool, from the files the sweep's process prepared (``data_dir``: read, verified and split once,
mapped by every worker). It holds out the book's validation split of the training data (the
same split for every trial of a sweep), trains with the :class:`~layerwise.train.Trainer` and
reports the validation accuracy of every epoch. BLAS runs on the trial's share of threads
(``threads`` in the config), so that N trials at once never start N × all-cores threads.
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..cpu import set_num_threads
from ..datasets import load_dataset
from ..datasets.digits import MAX_PIXEL
from ..datasets.mnist import prepare_images
from ..errors import InputError, TrainingDiverged
from ..optim import make_optimizer
from ..recipes import build_network
from ..train import Trainer

__all__ = ["DATA_DIR_PREFIX", "data_dir_parent", "data_dir_prefix", "raw_training_data", "remove_leftover_data_dirs",
           "run_trial", "split_indices", "trial_data", "validation_split", "write_data_dir"]


def split_indices(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The book's split (chapter 6) of ``n`` training images: shuffled, the first ``fraction``
    held out for validation. Returns (train, validation) indices."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(n * fraction)
    if not 0 < n_val < n:
        raise InputError(f"--validation {fraction} of {n} training images leaves "
                         f"{n_val} for validation and {n - n_val} for training; both need some")
    return order[n_val:], order[:n_val]


def validation_split(x: np.ndarray, t: np.ndarray, fraction: float, seed: int) -> tuple:
    """``x`` and ``t`` split by :func:`split_indices`: ((x_train, t_train), (x_val, t_val))."""
    train, val = split_indices(len(x), fraction, seed)
    return (x[train], t[train]), (x[val], t[val])


def raw_training_data(dataset: str, progress: bool = False) -> dict[str, np.ndarray]:
    """The training split as stored (uint8 pixels, labels) and the largest pixel value: what a
    trial turns into its inputs. The test split is never looked at."""
    (x, t), _ = load_dataset(dataset, normalize=False, flatten=False, progress=progress)
    scale = MAX_PIXEL if dataset == "digits" else 255
    return {"images": x, "labels": t, "scale": np.array(scale)}


def _inputs(raw: dict[str, np.ndarray], idx: np.ndarray, model: str, dtype: str) -> np.ndarray:
    """The images at ``idx``, as the trial's model takes them: normalized, and flattened for the
    fully connected models."""
    return prepare_images(raw["images"][idx], normalize=True, flatten=model in ("two-layer", "mlp"),
                          scale=float(raw["scale"]), dtype=dtype)


def trial_data(raw: dict[str, np.ndarray], model: str, dtype: str, fraction: float, seed: int) -> tuple:
    """A trial's inputs from ``raw`` (:func:`raw_training_data`): ((x_train, t_train), (x_val,
    t_val), classes)."""
    t = raw["labels"]
    train, val = split_indices(len(t), fraction, seed)
    # Split the stored uint8 pixels, then convert each part: a quarter of the memory traffic of
    # converting first. The conversion is element by element: the same bits as load_dataset's.
    return ((_inputs(raw, train, model, dtype), t[train]), (_inputs(raw, val, model, dtype), t[val]),
            int(t.max()) + 1)


#: Images converted at a time when the split is written: small temporaries, reused.
WRITE_CHUNK = 4096


def write_data_dir(raw: dict[str, np.ndarray], model: str, dtype: str, fraction: float, seed: int,
                   folder: Path) -> Path:
    """:func:`trial_data`'s arrays, to the bit, as .npy files in ``folder``, which the local
    workers map read-only (``np.load(mmap_mode="r")``) instead of each converting its own copy.

    Why: with two workers starting at once each spent 0.4 s writing its 150 MB of fresh float32
    memory, and the mapped pages are one copy for every worker. The images are converted a
    chunk at a time straight into the files: one whole array in this process first cost 0.46 s
    more on the 2-core VM, where memory a process touches for the first time is slow
    (benchmarks/README.md, "Sweep"). Plain writes, not a writable memory map: a full disk is an
    OSError here, not a crash."""
    t = raw["labels"]
    for part, idx in zip(("train", "val"), split_indices(len(t), fraction, seed), strict=True):
        first = _inputs(raw, idx[:WRITE_CHUNK], model, dtype)
        header = {"descr": np.lib.format.dtype_to_descr(first.dtype), "fortran_order": False,
                  "shape": (len(idx), *first.shape[1:])}
        with open(folder / f"x_{part}.npy", "wb") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.write(first.data)
            for start in range(WRITE_CHUNK, len(idx), WRITE_CHUNK):
                f.write(_inputs(raw, idx[start:start + WRITE_CHUNK], model, dtype).data)
        np.save(folder / f"t_{part}.npy", t[idx])
    return folder


def data_dir_parent(raw: dict[str, np.ndarray], dtype: str, shm: str = "/dev/shm") -> str | None:
    """Where to make the folder for :func:`write_data_dir`: ``shm`` (memory, never written back
    to a disk: 0.08 s for Fashion-MNIST's 150 MB where /tmp on the VM's disk took 0.33 s) when it
    exists and has room for twice the data (a container's is often 64 MB), else None: the
    system's temporary folder."""
    needed = raw["images"].size * np.dtype(dtype).itemsize + raw["labels"].nbytes
    try:
        st = os.statvfs(shm)
    except (OSError, AttributeError):  # no such folder; no statvfs on Windows
        return None
    return shm if os.access(shm, os.W_OK) and st.f_bavail * st.f_frsize >= 2 * needed else None


#: The data folders' names: ``layerwise-sweep-PID-...``, so that one whose sweep was killed
#: (kill -9 skips every cleanup) can be recognised and removed by the next sweep.
DATA_DIR_PREFIX = "layerwise-sweep-"


def data_dir_prefix(pid: int | None = None) -> str:
    """The prefix of the data folder a sweep in process ``pid`` (default: this one) makes."""
    return f"{DATA_DIR_PREFIX}{os.getpid() if pid is None else pid}-"


def remove_leftover_data_dirs(parent: str | None) -> list[str]:
    """Remove the data folders in ``parent`` (None: the system's temporary folder) whose sweep
    process is gone: a killed sweep's ~190 MB of Fashion-MNIST in /dev/shm would otherwise hold
    memory until the next reboot. POSIX only (on Windows ``os.kill(pid, 0)`` would end the
    process). Returns the folders removed."""
    if os.name != "posix":
        return []
    folder = parent or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    for name in names:
        pid_text = name[len(DATA_DIR_PREFIX):].split("-", 1)[0]
        if not name.startswith(DATA_DIR_PREFIX) or not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        path = os.path.join(folder, name)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive, and not ours to judge
        return True
    return True


_DATA_NAMES = ("x_train", "t_train", "x_val", "t_val")


def _read_data_dir(folder: str) -> tuple:
    x_train, t_train, x_val, t_val = (np.load(os.path.join(folder, f"{name}.npy"), mmap_mode="r")
                                      for name in _DATA_NAMES)
    classes = int(max(t_train.max(), t_val.max())) + 1
    return (x_train, t_train), (x_val, t_val), classes


@functools.lru_cache(maxsize=4)
def _data(dataset: str, model: str, dtype: str, fraction: float, seed: int, data_dir: str | None) -> tuple:
    if data_dir and os.path.isdir(data_dir):
        return _read_data_dir(data_dir)
    # a cluster's worker on another host: by name, where it runs
    return trial_data(raw_training_data(dataset), model, dtype, fraction, seed)


def run_trial(config: dict[str, Any]) -> dict[str, Any]:
    """Train the configuration's network on the training data less the validation split, and
    return its validation (and training) accuracy per epoch. A run whose loss goes non-finite
    is a result too: ``status`` "diverged", with the step."""
    started = time.perf_counter()
    threads = int(config.get("threads") or 1)
    set_num_threads(threads)  # for the process: layerwise's own (a convnet's split passes) and BLAS's
    (x_train, t_train), (x_val, t_val), classes = _data(
        config["dataset"], config["model"], config["dtype"], config["validation"], config["split_seed"],
        config.get("data_dir"))
    settings = {**config, "dropout": 0.0, "batchnorm": False, "lr_schedule": "constant"}
    model = build_network(settings, x_train.shape[1:], classes)
    trainer = Trainer(model, make_optimizer(config["optimizer"], lr=config["lr"]), x_train, t_train, x_val, t_val,
                      epochs=config["epochs"], batch_size=config["batch_size"], seed=config["seed"],
                      train_eval_samples=len(x_train), log=None, progress=False)
    # Where this process found its data is not part of the trial: records compare across hosts.
    recorded = {k: v for k, v in config.items() if k != "data_dir"}
    result: dict[str, Any] = {"trial": config["trial"], "config": recorded, "seed": config["seed"],
                              "worker": f"{socket.gethostname()}:{os.getpid()}", "threads": threads}
    try:
        trainer.fit()
        result["status"] = "done"
    except TrainingDiverged as exc:
        result.update(status="diverged", diverged_step=exc.step, diverged_loss=_json_number(exc.loss))
    rows = trainer.history.epochs
    result["val_acc"] = [row["test_acc"] for row in rows]
    result["train_acc"] = [row["train_acc"] for row in rows]
    result["final_val_acc"] = result["val_acc"][-1] if rows else None
    result["final_train_acc"] = result["train_acc"][-1] if rows else None
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


def _json_number(x: float | None) -> float | str | None:
    """JSON has no NaN or infinity: they are written as text."""
    if x is None or np.isfinite(x):
        return x
    return str(x)

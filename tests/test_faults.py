"""Faults: a training run killed with SIGKILL resumes bit-exactly; a checkpoint write cut short
leaves the previous checkpoint; divergence stops at the first bad step and keeps the last good
checkpoint; a full disk or read-only output directory is a clear error that corrupts nothing.

The kill tests run `layerwise train` as a real subprocess. To make the kill land at a known
point (mid-epoch, or between a checkpoint's write and its rename) the killed run goes through
a small wrapper that wraps one function of the real code: after the N-th checkpoint it tells
the test it is there and keeps the process alive until the test sends SIGKILL; or it kills
itself inside ``os.replace``. The resumed run and the uninterrupted run are plain commands.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from layerwise import io as lwio
from layerwise.cli import main
from layerwise.errors import TrainingDiverged
from layerwise.io import files as io_files
from layerwise.io import load_checkpoint, save
from layerwise.models import MultiLayerNet, TwoLayerNet
from layerwise.optim import SGD, Adam
from layerwise.train import CHECKPOINT_NAME, MODEL_NAME, Trainer

WRAPPER = r'''
import os, signal, sys, time
from pathlib import Path

import layerwise.train as train
from layerwise.cli import main

marker, mode, after = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
original_save = train.Trainer.save_checkpoint
original_replace = os.replace
saves = 0


def replace(src, dst):
    # The (after + 1)-th checkpoint: written and fsynced to its temp file, never renamed.
    if Path(dst).name == train.CHECKPOINT_NAME and saves == after + 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return original_replace(src, dst)


def save_checkpoint(self):
    global saves
    saves += 1
    path = original_save(self)
    if mode == "hold" and saves == after:
        marker.write_text(f"{self.epoch} {self.step_in_epoch}")
        time.sleep(120)  # still "training" when the test's SIGKILL arrives
    return path


train.Trainer.save_checkpoint = save_checkpoint
if mode == "in-write":
    os.replace = replace
sys.exit(main(sys.argv[4:]))
'''

@pytest.fixture(autouse=True)
def fixed_threads(monkeypatch):
    """The runs here compare bits while another run trains beside them. Left to layerwise, an
    MLP's BLAS threads follow the load, and OpenBLAS's last bits follow its thread count (with
    the Haswell kernels even for these small products); a fixed number keeps them (README,
    "Threads")."""
    monkeypatch.setenv("LAYERWISE_THREADS", "2")


# Small but real: an MLP on the bundled digits, 15 batches per epoch.
COMMON = ("--model", "mlp", "--hidden", "32,16", "--epochs", "3", "--quiet")


def layerwise_cmd(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "layerwise", *map(str, args)], capture_output=True,
                            text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def start_wrapped(tmp_path: Path, mode: str, after: int, *train_args) -> tuple[subprocess.Popen, Path]:
    script = tmp_path / "wrapper.py"
    script.write_text(WRAPPER)
    marker = tmp_path / f"marker-{mode}-{after}"
    proc = subprocess.Popen([sys.executable, str(script), str(marker), mode, str(after), "train",
                             *map(str, train_args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, marker


def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {path.name} appeared: {proc.stderr.read().decode()}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def assert_same_tensors(a: Path, b: Path) -> None:
    ta, tb = load_file(a), load_file(b)
    assert ta.keys() == tb.keys()
    for k in ta:
        assert ta[k].dtype == tb[k].dtype and ta[k].tobytes() == tb[k].tobytes(), k


def history_without_time(run_dir: Path) -> dict:
    history = json.loads((run_dir / "history.json").read_text())
    for row in history["epochs"]:
        row.pop("seconds")
    return history


def assert_resumed_like_whole(whole: Path, resumed: Path) -> None:
    assert_same_tensors(whole / MODEL_NAME, resumed / MODEL_NAME)
    assert_same_tensors(whole / CHECKPOINT_NAME, resumed / CHECKPOINT_NAME)  # optimizer state too
    assert history_without_time(whole) == history_without_time(resumed)


# -- kill -9, then --resume -------------------------------------------------------------


@pytest.mark.parametrize("dropout", ["0", "0.3"], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_sigkill_mid_epoch_then_resume_is_bit_exact(tmp_path, optimizer, dropout):
    flags = (*COMMON, "--optimizer", optimizer, "--dropout", dropout)
    # Checkpoints every 4 batches: saves 1-3 at batches 4, 8, 12 of epoch 1, save 4 at its end,
    # save 5 at batch 4 of epoch 2 -- where the kill lands.
    killed, marker = start_wrapped(tmp_path, "hold", 5, *flags, "--checkpoint-every", 4,
                                   "--out", tmp_path / "killed")
    whole = subprocess.Popen([sys.executable, "-m", "layerwise", "train", *flags, "--out", tmp_path / "whole"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(marker, killed)
        killed.send_signal(signal.SIGKILL)
        assert killed.wait(timeout=30) == -signal.SIGKILL
    finally:
        killed.kill()
        killed.communicate()
    assert whole.wait(timeout=300) == 0, whole.stderr.read().decode()
    whole.communicate()

    run = tmp_path / "killed"
    assert marker.read_text() == "1 4"  # epoch 1 complete, 4 batches into epoch 2
    state = load_checkpoint(run / CHECKPOINT_NAME).state
    assert (state["epoch"], state["step_in_epoch"]) == (1, 4)
    assert not (run / MODEL_NAME).exists()  # the killed run never finished

    result = layerwise_cmd("train", "--resume", run)
    assert "test accuracy" in result.stdout
    assert_resumed_like_whole(tmp_path / "whole", run)


def test_sigkill_between_checkpoint_write_and_rename(tmp_path):
    """The kill lands inside os.replace of the 7th checkpoint: its temp file is complete on
    disk but never renamed. The 6th checkpoint is what --resume finds, and it still loads."""
    flags = (*COMMON, "--optimizer", "adam", "--dropout", "0.3")
    proc, _ = start_wrapped(tmp_path, "in-write", 6, *flags, "--checkpoint-every", 4, "--out", tmp_path / "run")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err.decode()
    run = tmp_path / "run"
    temps = [p.name for p in run.iterdir() if p.name.endswith(".tmp")]
    assert len(temps) == 1 and temps[0].startswith(f".{CHECKPOINT_NAME}.")
    state = load_checkpoint(run / CHECKPOINT_NAME).state  # the previous checkpoint is intact
    assert (state["epoch"], state["step_in_epoch"]) == (1, 8)

    layerwise_cmd("train", *flags, "--out", tmp_path / "whole")
    layerwise_cmd("train", "--resume", run)
    assert_resumed_like_whole(tmp_path / "whole", run)
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # resume cleaned up


def test_sigkill_at_an_unplanned_moment_then_resume(tmp_path):
    """No hook at all: poll for the first checkpoint, SIGKILL the run wherever it is, resume."""
    flags = ("--model", "mlp", "--hidden", "32,16", "--dropout", "0.2", "--optimizer", "sgd",
             "--epochs", "40", "--quiet")
    proc = subprocess.Popen([sys.executable, "-m", "layerwise", "train", *flags, "--checkpoint-every", "3",
                             "--out", tmp_path / "run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    whole = subprocess.Popen([sys.executable, "-m", "layerwise", "train", *flags, "--out", tmp_path / "whole"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(tmp_path / "run" / CHECKPOINT_NAME, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.communicate()
    assert whole.wait(timeout=300) == 0
    whole.communicate()
    if proc.returncode == 0:  # pragma: no cover - 40 epochs outlast the poll by far
        pytest.fail("the run finished before the kill; make it longer")
    assert not (tmp_path / "run" / MODEL_NAME).exists()
    layerwise_cmd("train", "--resume", tmp_path / "run")
    assert_resumed_like_whole(tmp_path / "whole", tmp_path / "run")


# -- a checkpoint write cut short --------------------------------------------------------


def small_problem(seed=0, n=60, d=6, classes=3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(np.float32), rng.integers(0, classes, n)


def make_trainer(run_dir, optimizer=None, **kw):
    x, t = small_problem()
    net = MultiLayerNet(6, [8], 3, use_dropout=True, dropout_ration=0.2, seed=1)
    return Trainer(net, optimizer or Adam(lr=0.01), x, t, x, t, batch_size=16, run_dir=run_dir,
                   progress=False, log=None, **kw)


class DiskFull:
    """A file object that accepts ``limit`` bytes, then fails with ENOSPC, like a full disk."""

    def __init__(self, f, limit):
        self._f, self._left = f, limit

    def write(self, data):
        data = bytes(data)
        if len(data) > self._left:
            self._f.write(data[: self._left])
            self._left = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._left -= len(data)
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._f.__exit__(*exc)


def test_checkpoint_write_cut_at_any_byte_keeps_the_previous_one(tmp_path, monkeypatch):
    trainer = make_trainer(tmp_path, epochs=1)
    trainer.fit()
    good = (tmp_path / CHECKPOINT_NAME).read_bytes()
    size = len(good)
    real_fdopen = os.fdopen
    for limit in sorted({0, 1, 7, 8, 100, size // 2, size - 1}):
        # A write that dies after `limit` bytes, as a full disk or a crash would leave it.
        monkeypatch.setattr(io_files.os, "fdopen", lambda fd, *a, _n=limit, **k: DiskFull(real_fdopen(fd, *a, **k), _n))
        with pytest.raises(OSError) as info:
            trainer.save_checkpoint()
        assert info.value.errno == errno.ENOSPC
        assert CHECKPOINT_NAME in str(info.value)  # the error names the file it could not write
        monkeypatch.setattr(io_files.os, "fdopen", real_fdopen)
        assert (tmp_path / CHECKPOINT_NAME).read_bytes() == good, limit
        assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_NAME], limit
    load_checkpoint(tmp_path / CHECKPOINT_NAME)


def test_crash_between_write_and_rename_during_fit(tmp_path, monkeypatch):
    """os.replace of the 4th checkpoint raises (the process "dies" there): the 3rd checkpoint
    is intact, and a new Trainer resumed from it ends bit-exactly where an uninterrupted one does."""
    whole = make_trainer(tmp_path / "whole", epochs=3, checkpoint_every=2)
    whole.fit()

    calls = []
    real_replace = os.replace

    def crashing_replace(src, dst):
        if Path(dst).name == CHECKPOINT_NAME:
            calls.append(dst)
            if len(calls) == 4:
                raise KeyboardInterrupt  # stands in for the process dying here
        return real_replace(src, dst)

    run = tmp_path / "run"
    run.mkdir()
    trainer = make_trainer(run, epochs=3, checkpoint_every=2)
    monkeypatch.setattr(io_files.os, "replace", crashing_replace)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit()
    monkeypatch.setattr(io_files.os, "replace", real_replace)
    assert [p.name for p in run.iterdir()] == [CHECKPOINT_NAME]

    checkpoint = load_checkpoint(run / CHECKPOINT_NAME)
    # 4 batches an epoch, checkpoints at batch 2 and at each epoch's end: the 3rd is batch 2
    # of epoch 2, the 4th (the crash) the end of epoch 2.
    assert (checkpoint.state["epoch"], checkpoint.state["step_in_epoch"]) == (1, 2)
    resumed = make_trainer(run, epochs=3, checkpoint_every=2)
    resumed.model.load_state_dict(checkpoint.model.state_dict())
    resumed.optimizer = checkpoint.optimizer
    resumed.load_state(checkpoint.state)
    resumed.fit()
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    assert [r["train_loss"] for r in whole.history.epochs] == [r["train_loss"] for r in resumed.history.epochs]


# -- divergence ----------------------------------------------------------------------------


def test_lr_1e4_stops_at_the_first_bad_step_and_keeps_the_last_good_checkpoint(tmp_path):
    run = tmp_path / "run"
    result = layerwise_cmd("train", "--lr", "1e4", "--optimizer", "sgd", "--checkpoint-every", 1,
                           "--out", run, "--quiet", check=False)
    assert result.returncode == 2
    err = result.stderr
    assert "Traceback" not in err
    assert "diverged" in err and "at step 2 " in err and "lower learning rate than 10000" in err
    assert str(run / CHECKPOINT_NAME) in err
    checkpoint = load_checkpoint(run / CHECKPOINT_NAME)
    assert checkpoint.state["step_in_epoch"] == 1  # saved after step 1, before the bad step 2
    assert all(np.all(np.isfinite(v)) for v in checkpoint.model.state_dict().values())
    assert not (run / MODEL_NAME).exists()


def test_divergence_to_nan_names_the_step(tmp_path):
    run = tmp_path / "run"
    result = layerwise_cmd("train", "--model", "mlp", "--lr", "1e4", "--optimizer", "sgd",
                           "--out", run, "--quiet", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "loss became" in result.stderr and "step" in result.stderr
    assert "lower learning rate" in result.stderr


def test_explosion_threshold_is_relative_to_the_first_loss():
    """A loss 1000x its first value stops training; a run whose loss merely wobbles does not."""
    x, t = small_problem()
    trainer = Trainer(TwoLayerNet(6, 8, 3, seed=0), SGD(lr=1e4), x, t, epochs=2, batch_size=8,
                      progress=False, log=None)
    with pytest.raises(TrainingDiverged, match=r"at step \d+ .*more than 1000 times the first loss"):
        trainer.fit()
    first = trainer.history.step_loss[0]
    assert all(loss <= 1000 * max(first, 1.0) for loss in trainer.history.step_loss)
    ok = Trainer(TwoLayerNet(6, 8, 3, seed=0), SGD(lr=0.5), x, t, epochs=3, batch_size=8,
                 progress=False, log=None)
    ok.fit()


class PoisonAfter(SGD):
    """SGD that turns the weights to NaN on its 3rd update while every loss so far was finite
    (as an overflowing update would)."""

    def update(self, params, grads):
        super().update(params, grads)
        if self.step == 3:
            params["W1"][...] = np.nan


def test_non_finite_parameters_are_never_checkpointed(tmp_path):
    x, t = small_problem()
    trainer = Trainer(TwoLayerNet(6, 8, 3, seed=0), PoisonAfter(lr=0.1), x, t, epochs=2, batch_size=8,
                      run_dir=tmp_path, checkpoint_every=1, progress=False, log=None)
    with pytest.raises(TrainingDiverged, match="W1 is not finite after step 3") as info:
        trainer.fit()
    assert "last good checkpoint" in str(info.value)
    path = tmp_path / CHECKPOINT_NAME
    assert lwio.read_metadata(path)["state"]["step_in_epoch"] == 2
    assert np.all(np.isfinite(load_file(path)["W1"]))


# -- full disk, read-only or impossible output directory -----------------------------------


def test_out_below_a_file_is_refused_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a user's file")
    assert main(["train", "--epochs", "1", "--quiet", "--out", str(blocker / "run")]) == 2
    err = capsys.readouterr().err
    assert "cannot create the run directory" in err and str(blocker / "run") in err
    assert blocker.read_text() == "a user's file"


def test_read_only_output_directory_is_refused_before_training(tmp_path, monkeypatch, capsys):
    # Root writes through chmod; a directory that refuses writes is simulated at the syscall
    # the probe makes (a real read-only mount is tested below where mounts are possible).
    import io

    out = tmp_path / "ro"
    out.mkdir()
    real_os_open, real_io_open = os.open, io.open

    def refuse(path):
        if Path(path).parent == out:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_os_open(path, flags, *args, **kwargs)

    def io_open(path, mode="r", *args, **kwargs):
        if not isinstance(path, int) and set(mode) & set("wax+"):
            refuse(path)
        return real_io_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)  # tempfile.mkstemp
    monkeypatch.setattr(io, "open", io_open)  # Path.write_bytes
    assert main(["train", "--epochs", "1", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot write to the run directory" in err and "Read-only file system" in err
    assert list(out.iterdir()) == []


def test_disk_full_at_the_first_save_is_a_clear_error(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    real_fdopen = os.fdopen
    writes = []

    def fdopen(fd, *args, **kwargs):
        # config.json is written; the first checkpoint finds the disk full.
        writes.append(fd)
        return DiskFull(real_fdopen(fd, *args, **kwargs), 10**9 if len(writes) == 1 else 100)

    monkeypatch.setattr(io_files.os, "fdopen", fdopen)
    code = main(["train", "--epochs", "2", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "No space left on device" in err and CHECKPOINT_NAME in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["config.json"]
    json.loads((out / "config.json").read_text())


def test_disk_full_later_keeps_the_earlier_checkpoint(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_fdopen = os.fdopen
    monkeypatch.setattr(io_files.os, "fdopen", lambda fd, *a, **k: DiskFull(real_fdopen(fd, *a, **k), 1000))
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# Real file systems, where this machine allows it: a tiny tmpfs (genuinely full) and a
# read-only remount, each inside a private mount namespace that vanishes with the command.


def _can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True, timeout=30)
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs root and mount namespaces (unshare -m)")

SCRIPT = """
set -u
mount -t tmpfs -o size=4m tmpfs {mnt}
{py} -m layerwise train --epochs 1 --quiet --out {mnt}/run > /dev/null 2>&1 || exit 90
cp -a {mnt}/run {keep}/before
{mid}
{py} -m layerwise {command} > {keep}/stdout 2> {keep}/stderr
echo $? > {keep}/code
cp -a {mnt}/. {keep}/after
"""


def run_in_namespace(tmp_path: Path, command: str, mid: str) -> tuple[int, str, Path]:
    mnt, keep = tmp_path / "mnt", tmp_path / "keep"
    mnt.mkdir()
    keep.mkdir()
    script = SCRIPT.format(mnt=mnt, keep=keep, py=sys.executable, mid=mid,
                           command=command.format(mnt=mnt))
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and (keep / "code").exists(), done.stderr
    return int((keep / "code").read_text()), (keep / "stderr").read_text(), keep


@needs_mount
@pytest.mark.parametrize("command", ["train --resume {mnt}/run --epochs 2 --quiet",
                                     "train --epochs 1 --quiet --out {mnt}/run2"], ids=["resume", "new-run"])
def test_real_full_disk(tmp_path, command):
    # After a first run, a filler file takes every free block of the tmpfs.
    fill = f"dd if=/dev/zero of={tmp_path}/mnt/filler bs=4k > /dev/null 2>&1; true"
    code, err, keep = run_in_namespace(tmp_path, command, mid=fill)
    assert code == 1 and "[Errno 28] No space left on device" in err and "Traceback" not in err, err
    assert str(tmp_path / "mnt") in err  # names the file it could not write
    after = keep / "after"
    assert not [p for p in after.rglob("*") if p.name.endswith(".tmp")]
    for p in (keep / "before").iterdir():
        assert (after / "run" / p.name).read_bytes() == p.read_bytes()


@needs_mount
@pytest.mark.parametrize("command", ["train --resume {mnt}/run --epochs 2 --quiet",
                                     "train --epochs 1 --quiet --out {mnt}/run2"], ids=["resume", "new-run"])
def test_real_read_only_directory(tmp_path, command):
    code, err, keep = run_in_namespace(tmp_path, command, mid=f"mount -o remount,ro {tmp_path}/mnt")
    assert code == 2 and "Read-only file system" in err and "Traceback" not in err, err
    assert "run directory" in err  # found before training, by the probe
    for p in (keep / "before").iterdir():
        assert (keep / "after" / "run" / p.name).read_bytes() == p.read_bytes()


def test_model_file_save_failure_keeps_the_old_model(tmp_path, monkeypatch):
    net = TwoLayerNet(4, 5, 3, seed=0)
    path = save(net, tmp_path / "m.safetensors")
    before = path.read_bytes()
    monkeypatch.setattr(io_files.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
    with pytest.raises(OSError, match="I/O error"):
        save(TwoLayerNet(4, 5, 3, seed=1), path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]

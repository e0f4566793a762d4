"""One trial, ``run_trial(config) -> result``: trained on the training data less the book's
validation split, scored on that split (never the test set), BLAS on its share of threads,
the data read once per process (layerwise.sweep.trial)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import layerwise as lw
from layerwise import cpu
from layerwise.errors import InputError
from layerwise.sweep import SweepSpec, run_trial, trial, validation_split


@pytest.fixture(autouse=True)
def _restore_thread_setting(monkeypatch):
    """run_trial sets the process's thread count for its trial: give the next test the one it had."""
    monkeypatch.setattr(cpu, "_chosen", cpu._chosen)


@pytest.fixture
def spec():
    return SweepSpec(trials=4, epochs=3, lr=(0.05, 0.2), hidden=(32,), seed=7)


class Recorder:
    """Stands in for the Trainer class in layerwise.sweep.trial: records what each trial
    trained and scored on, and trains with the real one."""

    def __init__(self, monkeypatch):
        self.calls = []
        self.real = trial.Trainer
        monkeypatch.setattr(trial, "Trainer", self)

    def __call__(self, model, optimizer, x_train, t_train, x_val, t_val, **kwargs):
        self.calls.append({"x_train": x_train, "t_train": t_train, "x_val": x_val, "t_val": t_val, **kwargs})
        return self.real(model, optimizer, x_train, t_train, x_val, t_val, **kwargs)


def rows(x):
    return {row.tobytes() for row in np.asarray(x)}


def test_run_trial_reports_validation_accuracy_per_epoch(spec):
    config = spec.configs()[1]
    result = run_trial(config)
    assert result["status"] == "done" and result["trial"] == 1 and result["seed"] == config["seed"]
    assert result["config"] == config
    assert len(result["val_acc"]) == len(result["train_acc"]) == 3
    assert all(0 <= a <= 1 for a in result["val_acc"] + result["train_acc"])
    assert result["final_val_acc"] == result["val_acc"][-1] > 0.5  # digits with lr >= 0.05 learn in 3 epochs
    assert result["final_train_acc"] == result["train_acc"][-1]
    assert result["seconds"] >= 0 and ":" in result["worker"] and result["threads"] == 1
    assert json.loads(json.dumps(result, allow_nan=False)) == result  # a line of trials.jsonl as it is


def test_run_trial_is_deterministic(spec):
    config = spec.configs()[2]
    a, b = run_trial(config), run_trial(config)
    assert a["val_acc"] == b["val_acc"] and a["train_acc"] == b["train_acc"]


def test_validation_comes_from_the_training_data_never_the_test_set(spec, monkeypatch):
    recorder = Recorder(monkeypatch)
    trial._data.cache_clear()
    run_trial(spec.configs()[0])
    (x_train, t_train), (x_test, _) = lw.load_digits()
    (call,) = recorder.calls
    x_part, x_val = call["x_train"], call["x_val"]
    assert len(x_val) == int(len(x_train) * 0.2) and len(x_part) == len(x_train) - len(x_val)
    train_rows, test_rows = rows(x_train), rows(x_test)
    assert len(train_rows) == len(x_train) and not train_rows & test_rows  # rows identify images here
    assert rows(x_val) <= train_rows
    assert not rows(x_val) & test_rows
    assert not rows(x_part) & test_rows
    assert not rows(x_val) & rows(x_part)
    # A partition of the training split, labels with their images.
    both = np.concatenate([np.c_[x_part, call["t_train"]], np.c_[x_val, call["t_val"]]])
    whole = np.c_[x_train, t_train]
    np.testing.assert_array_equal(np.unique(both, axis=0), np.unique(whole, axis=0))


def test_every_trial_of_a_sweep_holds_out_the_same_split(spec, monkeypatch):
    recorder = Recorder(monkeypatch)
    configs = spec.configs()
    run_trial(configs[0])
    run_trial(configs[3])
    run_trial(SweepSpec(trials=1, epochs=1, lr=(0.05, 0.2), hidden=(32,), seed=8).configs()[0])
    first, other, next_sweep = recorder.calls
    assert configs[0]["seed"] != configs[3]["seed"]  # the trials differ, their validation data does not
    np.testing.assert_array_equal(first["x_val"], other["x_val"])
    np.testing.assert_array_equal(first["t_val"], other["t_val"])
    assert rows(first["x_val"]) != rows(next_sweep["x_val"])  # another sweep seed: another split


def test_validation_split_shuffles_and_holds_out_the_fraction():
    x = np.arange(100, dtype=np.float32).reshape(50, 2)
    t = np.arange(50)
    (x_part, t_part), (x_val, t_val) = validation_split(x, t, 0.2, seed=3)
    assert len(x_val) == 10 and len(x_part) == 40
    np.testing.assert_array_equal(x_val[:, 0] // 2, t_val)  # labels stay with their rows
    assert sorted(np.concatenate([t_part, t_val])) == list(range(50))
    assert list(t_val) != list(range(10))  # shuffled first, as the book does
    np.testing.assert_array_equal(validation_split(x, t, 0.2, seed=3)[1][1], t_val)


def test_a_diverging_trial_is_a_result_with_its_step():
    config = {**SweepSpec(trials=1, epochs=3).configs()[0], "lr": 50.0}  # the book's 100-100 MLP
    result = run_trial(config)
    assert result["status"] == "diverged"
    assert isinstance(result["diverged_step"], int) and result["diverged_step"] >= 1
    assert result["final_val_acc"] is None or len(result["val_acc"]) < config["epochs"]
    json.dumps(result, allow_nan=False)  # a non-finite loss is written as text, so the line is JSON


@pytest.mark.parametrize("threads", [1, 2])
def test_the_trial_runs_blas_on_its_threads(spec, monkeypatch, threads):
    """The trial's set_num_threads holds for its process, BLAS included, as
    torch.set_num_threads does (a sweep worker runs one trial after another)."""
    seen = []
    real_fit = trial.Trainer.fit

    def fit(self):
        seen.append({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})
        return real_fit(self)

    monkeypatch.setattr(trial.Trainer, "fit", fit)
    with threadpool_limits(limits=3 - threads):  # BLAS on the other number before the trial
        result = run_trial({**spec.configs()[0], "threads": threads})
        assert result["threads"] == threads
        assert seen == [{threads}]
        assert cpu.get_num_threads() == threads  # layerwise's own threads too
        after = {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}
        assert after == {threads}


def test_the_data_is_loaded_once_per_process(spec, monkeypatch):
    calls = []
    real = trial.raw_training_data

    def counting(dataset, progress=False):
        calls.append(dataset)
        return real(dataset, progress)

    monkeypatch.setattr(trial, "raw_training_data", counting)
    trial._data.cache_clear()
    configs = spec.configs()
    run_trial(configs[0])
    run_trial(configs[1])
    assert calls == ["digits"]
    trial._data.cache_clear()  # the next test reads through the real loader again


def test_the_prepared_data_dir_gives_the_same_trial_as_loading_by_name(spec, tmp_path):
    # Local workers map the files the sweep's process wrote; a cluster's workers load by name:
    # the same inputs to the bit, so the same trial.
    config = spec.configs()[0]
    trial._data.cache_clear()
    by_name = run_trial(config)
    raw = trial.raw_training_data("digits")
    args = (config["model"], config["dtype"], config["validation"], config["split_seed"])
    prepared = trial.trial_data(raw, *args)
    folder = trial.write_data_dir(raw, *args, tmp_path)
    trial._data.cache_clear()
    from_dir = run_trial({**config, "data_dir": str(folder)})
    mapped = trial._data(config["dataset"], config["model"], config["dtype"], config["validation"],
                         config["split_seed"], str(folder))
    trial._data.cache_clear()
    assert from_dir["val_acc"] == by_name["val_acc"] and from_dir["train_acc"] == by_name["train_acc"]
    assert "data_dir" not in from_dir["config"]  # where a process found its data is not part of the trial
    (x_train, t_train), (x_val, t_val), classes = mapped
    # Mapped read-only, not copied: one copy in the page cache for every worker.
    assert all(isinstance(a, np.memmap) and not a.flags.writeable for a in (x_train, t_train, x_val, t_val))
    (px, pt), (pxv, ptv), pclasses = prepared
    assert classes == pclasses == 10
    for a, b in ((x_train, px), (t_train, pt), (x_val, pxv), (t_val, ptv)):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("chunk", [7, 1000, 4096])
@pytest.mark.parametrize("model", ["two-layer", "convnet"])
def test_the_data_dir_written_in_chunks_is_trial_data_to_the_bit(tmp_path, monkeypatch, chunk, model):
    # 1,437 digits, 20% held out: chunks of 7 end with a partial one, 1000 split the training part
    # once, 4096 take each part whole. The convnet keeps (N, 1, 8, 8).
    monkeypatch.setattr(trial, "WRITE_CHUNK", chunk)
    raw = trial.raw_training_data("digits")
    (x, t), (xv, tv), classes = trial.trial_data(raw, model, "float32", 0.2, 5)
    folder = trial.write_data_dir(raw, model, "float32", 0.2, 5, tmp_path)
    (mx, mt), (mxv, mtv), mclasses = trial._read_data_dir(str(folder))
    assert mclasses == classes
    for mapped, made in ((mx, x), (mt, t), (mxv, xv), (mtv, tv)):
        assert mapped.shape == made.shape and mapped.dtype == made.dtype
        assert mapped.tobytes() == made.tobytes()


def test_the_data_dir_goes_to_shared_memory_only_when_there_is_room(tmp_path, monkeypatch):
    raw = {"images": np.zeros((1000, 28, 28), np.uint8), "labels": np.zeros(1000, np.uint8)}
    needed = 1000 * 784 * 4 + 1000

    def room(free):
        return lambda path: os.statvfs_result((4096, 4096, 0, 0, free // 4096, 0, 0, 0, 0, 255))

    monkeypatch.setattr(os, "statvfs", room(3 * needed))
    assert trial.data_dir_parent(raw, "float32", shm=str(tmp_path)) == str(tmp_path)
    monkeypatch.setattr(os, "statvfs", room(needed))  # a container's small /dev/shm
    assert trial.data_dir_parent(raw, "float32", shm=str(tmp_path)) is None
    monkeypatch.undo()
    assert trial.data_dir_parent(raw, "float32", shm=str(tmp_path / "missing")) is None


def test_a_validation_fraction_that_leaves_nothing_is_named():
    x, t = np.zeros((10, 4)), np.zeros(10, dtype=np.uint8)
    with pytest.raises(InputError, match=r"--validation 0\.01 of 10 training images leaves 0 for validation"):
        validation_split(x, t, 0.01, 0)


@pytest.mark.skipif(os.name != "posix", reason="a process's liveness through os.kill(pid, 0) (POSIX)")
def test_leftover_data_dirs_of_dead_sweeps_are_removed_and_no_others(tmp_path):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = tmp_path / f"{trial.data_dir_prefix(gone.pid)}abc"
    alive = tmp_path / f"{trial.data_dir_prefix()}def"  # this process's own
    other = tmp_path / "layerwise-sweep-notapid-x"
    unrelated = tmp_path / "something-else"
    for folder in (dead, alive, other, unrelated):
        folder.mkdir()
        (folder / "x_train.npy").write_bytes(b"data")
    assert trial.remove_leftover_data_dirs(str(tmp_path)) == [str(dead)]
    assert not dead.exists() and alive.exists() and other.exists() and unrelated.exists()

"""Running a sweep through an executor: every trial once, resumed, a broken pool replaced, a
failing trial named; and what the command prints of it (layerwise.sweep.run)."""

import json
import multiprocessing
import os
import shlex
import signal
import time
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool

import pytest

from layerwise import cpu
from layerwise.cli import main
from layerwise.errors import LayerwiseError
from layerwise.sweep import (
    SweepDir,
    SweepSpec,
    best_trials,
    local_executor,
    pools_after,
    prestart,
    run_sweep,
    summary,
    train_command,
)
from layerwise.sweep import run as run_module


@pytest.fixture(autouse=True)
def _restore_thread_setting(monkeypatch):
    """Trials run in this process by the fake executor set its thread count: restore it after."""
    monkeypatch.setattr(cpu, "_chosen", cpu._chosen)


def small_spec(**changes):
    return SweepSpec(**{"trials": 6, "epochs": 2, "hidden": (16,), "lr": (0.01, 0.3), "seed": 3, **changes})


def prepared(tmp_path, spec):
    sweep_dir = SweepDir(tmp_path / "S")
    sweep_dir.prepare(spec)
    return sweep_dir


class FakeExecutor(Executor):
    """Runs each trial in this process when it is submitted, except the trials in ``broken``,
    whose futures fail as a local pool's do when one of its processes is killed."""

    def __init__(self, broken=()):
        self.broken = set(broken)
        self.submitted = []

    def submit(self, fn, /, *args, **kwargs):
        config = args[0]
        self.submitted.append(config["trial"])
        future = Future()
        if config["trial"] in self.broken:
            future.set_exception(BrokenProcessPool("A process in the process pool was terminated abruptly"))
        else:
            try:
                future.set_result(fn(*args, **kwargs))
            except Exception as exc:
                future.set_exception(exc)
        return future


class Executors:
    """``make_executor`` for run_sweep: hands out FakeExecutors, the n-th breaking ``broken[n]``."""

    def __init__(self, *broken):
        self.broken = list(broken)
        self.made = []

    def __call__(self):
        executor = FakeExecutor(self.broken[len(self.made)] if len(self.made) < len(self.broken) else ())
        self.made.append(executor)
        return executor


def lines(sweep_dir):
    return [json.loads(line) for line in sweep_dir.trials_path.read_text().splitlines()]


def test_a_local_pool_runs_every_trial_once_and_a_rerun_nothing(tmp_path):
    spec = small_spec()
    sweep_dir = prepared(tmp_path, spec)
    seen, opened = [], []

    def make():
        opened.append(1)
        return local_executor(2)

    results = run_sweep(spec, sweep_dir, make, threads=1, progress=False, on_result=seen.append)
    assert sorted(results) == list(range(6)) and sorted(r["trial"] for r in seen) == list(range(6))
    assert sorted(r["trial"] for r in lines(sweep_dir)) == list(range(6))
    assert all(r["status"] == "done" and r["threads"] == 1 and r["config"]["threads"] == 1 for r in seen)
    assert opened == [1]
    assert all(results[c["trial"]]["config"] == {**c, "threads": 1} for c in spec.configs())

    again = []
    assert run_sweep(spec, sweep_dir, make, threads=1, progress=False, on_result=again.append) == results
    assert again == [] and opened == [1]  # nothing left to run: no pool is even started
    assert len(lines(sweep_dir)) == 6


def test_a_resumed_sweep_runs_only_the_trials_not_recorded(tmp_path):
    spec = small_spec()
    sweep_dir = prepared(tmp_path, spec)
    executors = Executors()
    first = run_sweep(spec, sweep_dir, executors, threads=1, progress=False)
    kept = [line for line in sweep_dir.trials_path.read_text().splitlines(keepends=True)
            if json.loads(line)["trial"] in (0, 2, 5)]
    sweep_dir.trials_path.write_text("".join(kept))
    rerun = Executors()
    seen = []
    results = run_sweep(spec, sweep_dir, rerun, threads=1, progress=False, on_result=seen.append)
    assert rerun.made[0].submitted == [1, 3, 4] and sorted(r["trial"] for r in seen) == [1, 3, 4]
    assert sorted(results) == list(range(6))
    assert [results[i]["val_acc"] for i in range(6)] == [first[i]["val_acc"] for i in range(6)]


def test_a_broken_pool_is_replaced_and_its_trials_rerun(tmp_path):
    spec = small_spec()
    sweep_dir = prepared(tmp_path, spec)
    executors = Executors({1, 4})
    seen = []
    results = run_sweep(spec, sweep_dir, executors, threads=1, progress=False, on_result=seen.append)
    assert len(executors.made) == 2
    assert executors.made[0].submitted == list(range(6))
    assert executors.made[1].submitted == [1, 4]
    assert sorted(results) == list(range(6))
    assert sorted(r["trial"] for r in lines(sweep_dir)) == list(range(6))  # each once
    assert sorted(r["trial"] for r in seen) == list(range(6))


def test_a_pool_that_keeps_breaking_stops_the_sweep_for_a_rerun(tmp_path):
    spec = small_spec()
    sweep_dir = prepared(tmp_path, spec)
    executors = Executors(*[{2}] * 10)
    with pytest.raises(LayerwiseError, match="rerun the command to resume"):
        run_sweep(spec, sweep_dir, executors, threads=1, progress=False)
    assert len(executors.made) == run_module.POOL_RESTARTS + 1
    assert sorted(r["trial"] for r in lines(sweep_dir)) == [0, 1, 3, 4, 5]
    results = run_sweep(spec, sweep_dir, Executors(), threads=1, progress=False)  # the rerun
    assert sorted(results) == list(range(6)) and len(lines(sweep_dir)) == 6


def test_a_failing_trial_is_left_unrecorded_and_named(tmp_path, monkeypatch):
    spec = small_spec()
    sweep_dir = prepared(tmp_path, spec)
    real = run_module.run_trial

    def flaky(config):
        if config["trial"] in (2, 4):
            raise MemoryError(f"no room for trial {config['trial']}")
        return real(config)

    monkeypatch.setattr(run_module, "run_trial", flaky)
    with pytest.raises(LayerwiseError) as info:
        run_sweep(spec, sweep_dir, Executors(), threads=1, progress=False)
    message = str(info.value)
    assert "2 trial(s) failed" in message
    assert "trial 2: MemoryError: no room for trial 2" in message and "trial 4: MemoryError" in message
    assert sorted(r["trial"] for r in lines(sweep_dir)) == [0, 1, 3, 5]

    monkeypatch.setattr(run_module, "run_trial", real)
    rerun = Executors()
    results = run_sweep(spec, sweep_dir, rerun, threads=1, progress=False)
    assert rerun.made[0].submitted == [2, 4] and sorted(results) == list(range(6))


def test_diverged_trials_are_recorded_and_the_sweep_goes_on(tmp_path):
    spec = small_spec(hidden=None, trials=4, lr=(30.0, 100.0))
    sweep_dir = prepared(tmp_path, spec)
    results = run_sweep(spec, sweep_dir, Executors(), threads=1, progress=False)
    assert sorted(results) == [0, 1, 2, 3]
    assert all(r["status"] == "diverged" and r["diverged_step"] >= 1 for r in results.values())
    assert "4 of 4 trials finished, 4 diverged" in summary(spec, results)
    assert "layerwise train" not in summary(spec, results)  # no trial to recommend


def result(trial, acc, status="done", lr=1e-3, wd=1e-6, train=None):
    return {"trial": trial, "status": status, "final_val_acc": acc, "final_train_acc": train,
            "val_acc": [] if acc is None else [acc], "config": {"lr": lr, "weight_decay": wd, "seed": trial + 1}}


def test_best_trials_by_validation_accuracy_diverged_last():
    results = {r["trial"]: r for r in [
        result(0, 0.5), result(1, 0.9, status="diverged"), result(2, 0.7), result(3, None, status="diverged"),
        result(4, 0.7), result(5, 0.95),
    ]}
    assert [r["trial"] for r in best_trials(results, 10)] == [5, 2, 4, 0, 1, 3]  # ties by trial number
    assert [r["trial"] for r in best_trials(results, 2)] == [5, 2]
    assert best_trials({}, 5) == []


def test_summary_prints_the_best_five_and_the_command():
    spec = SweepSpec(trials=8, epochs=4)
    results = {r["trial"]: r for r in [
        result(0, 0.61, lr=2e-3, wd=3e-7, train=0.6), result(1, 0.82, lr=4.4771e-3, wd=3.425e-7, train=0.8),
        result(2, None, status="diverged", lr=9e-3), result(3, 0.5), result(4, 0.4), result(5, 0.3),
        result(6, 0.2),
    ]}
    text = summary(spec, results)
    lines_ = text.splitlines()
    assert lines_[0] == "7 of 8 trials finished, 1 diverged"
    assert "best 5 by validation accuracy:" in text
    header = lines_.index("  rank  trial  lr          weight decay  val acc   train acc")
    table = lines_[header + 1:header + 6]
    assert [row.split()[:2] for row in table] == [["1", "1"], ["2", "0"], ["3", "3"], ["4", "4"], ["5", "5"]]
    assert table[0].split()[2:] == ["4.477e-03", "3.425e-07", "0.8200", "0.8000"]
    assert "train the best on the whole training set:" in text
    assert lines_[-1].strip() == train_command(spec, results[1])
    assert "--lr 0.004477 --weight-decay 3.425e-07" in lines_[-1]


def test_summary_without_weight_decay_and_with_nothing_finished():
    spec = SweepSpec(trials=3, model="two-layer", weight_decay=None)
    text = summary(spec, {0: result(0, 0.75, wd=0.0)})
    row = text.splitlines()[4].split()
    assert row[:5] == ["1", "0", "1.000e-03", "-", "0.7500"]
    assert "--weight-decay" not in text
    empty = summary(spec, {})
    assert empty.startswith("0 of 3 trials finished") and "layerwise train" not in empty


@pytest.mark.parametrize("spec", [
    SweepSpec(trials=1, hidden=(24, 12), optimizer="adam"),
    SweepSpec(trials=1, model="two-layer", weight_decay=None, dtype="float64", batch_size=50),
])
def test_the_train_command_runs(tmp_path, spec, capsys):
    best = {"trial": 0, "status": "done", "config": spec.configs()[0]}
    command = train_command(spec, best)
    argv = shlex.split(command)
    assert argv[:2] == ["layerwise", "train"]
    out = tmp_path / "best run"
    assert main([*argv[1:], "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    settings = json.loads((out / "config.json").read_text())
    assert settings["model"] == spec.model and settings["optimizer"] == spec.optimizer
    assert settings["lr"] == pytest.approx(best["config"]["lr"], rel=1e-3)
    if spec.weight_decay is not None:
        assert settings["weight_decay"] == pytest.approx(best["config"]["weight_decay"], rel=1e-3)
        assert settings["hidden"] == list(spec.hidden)
    assert settings["dtype"] == spec.dtype and settings["batch_size"] == spec.batch_size


def test_the_train_command_quotes_a_dataset_path():
    spec = SweepSpec(trials=1, dataset="/data/my mnist; rm -rf ~")
    argv = shlex.split(train_command(spec, {"config": spec.configs()[0]}))
    assert argv[argv.index("--dataset") + 1] == "/data/my mnist; rm -rf ~"


def test_prestart_starts_every_worker_before_any_trial():
    with local_executor(2) as pool:
        before = len(multiprocessing.active_children())
        futures = prestart(pool, 2)
        assert len(multiprocessing.active_children()) - before == 2  # both spawned now, not at the first trial
        assert all(isinstance(f.result(timeout=60), int) for f in futures)


def test_pools_after_gives_the_started_pool_then_fresh_ones(tmp_path):
    # The prestarted pool runs the first round; a pool broken by a dying process is replaced.
    with local_executor(1) as first:
        make = pools_after(first, 1)
        with make() as executor:
            assert executor is first
        assert first.submit(int, "7").result(timeout=60) == 7  # the caller owns it: not shut down
        with make() as again:
            assert again is not first and again.submit(int, "8").result(timeout=60) == 8


def test_a_prestarted_pool_that_broke_before_the_trials_is_replaced(tmp_path):
    # A worker killed while the sweep's process still read the data: submit() itself refuses.
    spec = small_spec()
    sweep_dir = prepared(tmp_path, spec)
    with local_executor(1) as pool:
        (pid,) = {f.result(timeout=60) for f in prestart(pool, 1)}
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:  # the pool learns of the death in its own thread
            try:
                pool.submit(int, "1").result(timeout=30)
            except BrokenProcessPool:
                break
            assert time.monotonic() < deadline, "the pool never noticed its worker died"
            time.sleep(0.05)
        results = run_sweep(spec, sweep_dir, pools_after(pool, 1), threads=1, progress=False)
    assert sorted(results) == list(range(spec.trials))
    assert sorted(r["trial"] for r in lines(sweep_dir)) == list(range(spec.trials))

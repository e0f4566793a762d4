"""`layerwise sweep` end to end, run as a user runs it: the README's search on the bundled
digits, the clear errors of bad input, a sweep killed with kill -9 and rerun, another spec for
the same SWEEP_DIR, --report, diverging trials and the default SWEEP_DIR."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

PNG = b"\x89PNG\r\n\x1a\n"
#: Every wait is bounded; this one is a hang's limit, not a speed requirement.
HANG_SECONDS = 120


def sweep(*args, cwd, timeout=HANG_SECONDS):
    return subprocess.run([sys.executable, "-m", "layerwise", "sweep", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd)


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def records(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert data.endswith(b"\n"), "trials.jsonl ends with a cut-short line"
    return [json.loads(line) for line in data.splitlines()]


def table(stdout: str) -> list[str]:
    """The summary as printed: from "N of M trials finished" to the train command."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "trials finished" in line)
    end = next(i for i, line in enumerate(lines) if line.startswith("  layerwise train "))
    return lines[start:end + 1]


@pytest.fixture(scope="module")
def readme_sweep(tmp_path_factory):
    """The README's command: `layerwise sweep --trials 20 --out S` on the bundled digits."""
    cwd = tmp_path_factory.mktemp("user")
    return ok(sweep("--trials", 20, "--out", "S", cwd=cwd)), cwd / "S"


def test_the_readme_sweep_prints_the_best_and_draws_both_plots(readme_sweep):
    result, sweep_dir = readme_sweep
    out = result.stdout
    assert "writing S" in out and "20 of 20 trials finished" in out
    lines = out.splitlines()
    header = lines.index("  rank  trial  lr          weight decay  val acc   train acc")
    ranks = [row.split() for row in lines[header + 1:header + 6]]
    assert [r[0] for r in ranks] == ["1", "2", "3", "4", "5"]
    accs = [float(r[4]) for r in ranks]
    assert accs == sorted(accs, reverse=True) and accs[0] > 0.5
    assert lines[header + 6] == ""  # five rows, no more
    command = next(line.strip() for line in lines if line.startswith("  layerwise train "))
    assert "--lr " in command and "--weight-decay " in command and "--model mlp" in command
    for name in ("best-trials.png", "lr-weight-decay.png"):
        assert (sweep_dir / name).read_bytes()[:8] == PNG
        assert str(Path("S") / name) in out
    trials = records(sweep_dir / "trials.jsonl")
    assert len(trials) == 20 and sorted(r["trial"] for r in trials) == list(range(20))
    best = max(trials, key=lambda r: r["final_val_acc"] if r["status"] == "done" else -1)
    assert f"{best['final_val_acc']:.4f}" == ranks[0][4] and str(best["trial"]) == ranks[0][1]
    spec = json.loads((sweep_dir / "sweep.json").read_text())
    assert spec["trials"] == 20 and spec["lr"] == [1e-6, 1e-2] and spec["weight_decay"] == [1e-8, 1e-4]
    for r in trials:
        assert 1e-6 <= r["config"]["lr"] <= 1e-2 and 1e-8 <= r["config"]["weight_decay"] <= 1e-4
        assert len(r["val_acc"]) == len(r["train_acc"]) == 20 and r["seconds"] >= 0 and r["worker"]


def test_report_prints_the_table_again_and_redraws_the_plots(readme_sweep, tmp_path):
    first, sweep_dir = readme_sweep
    copy = shutil.copytree(sweep_dir, tmp_path / "copy")
    for name in ("best-trials.png", "lr-weight-decay.png"):
        (copy / name).unlink()
    trials_before = (copy / "trials.jsonl").read_bytes()
    result = ok(sweep("--report", copy, cwd=tmp_path))
    assert table(result.stdout) == table(first.stdout)
    for name in ("best-trials.png", "lr-weight-decay.png"):
        assert (copy / name).read_bytes()[:8] == PNG
    assert (copy / "trials.jsonl").read_bytes() == trials_before  # a report runs nothing


def test_report_of_a_folder_that_is_no_sweep(tmp_path):
    result = sweep("--report", "nothing-here", cwd=tmp_path, timeout=10)
    assert result.returncode == 2 and "no sweep.json" in result.stderr


@pytest.mark.parametrize("args, words", [
    (["--lr", "1e-2..1e-6"], ["--lr", "1e-2..1e-6", "reversed"]),
    (["--lr", "0..1e-2"], ["--lr", "0..1e-2", "positive"]),
    (["--weight-decay", "-1..1"], ["--weight-decay", "-1..1", "positive"]),
    (["--lr", "1e-6..1e-2", "--weight-decay", "1e-4..1e-8"], ["--weight-decay", "reversed"]),
    (["--lr", "fast"], ["--lr", "LOW..HIGH"]),
    (["--trials", "0"], ["--trials", "at least 1"]),
    (["--validation", "0.0001"], ["--validation 0.0001", "leaves 0 for validation"]),
    (["--dataset", "nosuch"], ["nosuch", "dataset", "digits"]),
    (["--model", "convnet", "--weight-decay", "1e-8..1e-4"], ["--weight-decay", "--model mlp"]),
    (["--grid", "--trials", "10"], ["--grid", "square"]),
])
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, args, words):
    result = sweep(*args, "--out", "S", cwd=tmp_path, timeout=10)  # the bound: within 10 s
    assert result.returncode == 2, result.stdout + result.stderr
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []  # no SWEEP_DIR, nor sweeps/


def leftover_data_dirs(pid: int) -> list[Path]:
    """The data folders a sweep in process ``pid`` made, wherever it put them."""
    from layerwise.sweep.trial import data_dir_prefix  # the name the command gives them

    prefix = data_dir_prefix(pid)
    return [p for parent in (Path("/dev/shm"), Path(tempfile.gettempdir())) if parent.is_dir()
            for p in parent.iterdir() if p.name.startswith(prefix)]


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` is still running (zombies have stopped)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


#: A sweep long enough to be stopped mid-way (16 trials of a 784-200-200-10 net, 40 epochs each).
LONG_SWEEP = ["--trials", 16, "--epochs", 40, "--model", "mlp", "--hidden", "200,200", "--workers", 2,
              "--out", "S", "--quiet"]
NEEDS_PROCESS_GROUPS = pytest.mark.skipif(
    not hasattr(os, "killpg") or not Path("/proc/self/stat").exists(),
    reason="signals to a process group, observed through /proc (Linux)")


def start_sweep(tmp_path: Path, output: Path, trials: int) -> subprocess.Popen:
    """``layerwise sweep`` LONG_SWEEP in a process group of its own, returned once ``trials``
    trials are recorded (its output goes to ``output``)."""
    trials_path = tmp_path / "S" / "trials.jsonl"
    with open(output, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "layerwise", "sweep", *map(str, LONG_SWEEP)], cwd=tmp_path,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + HANG_SECONDS
        while not (trials_path.exists() and trials_path.read_bytes().count(b"\n") >= trials):
            assert proc.poll() is None, output.read_text()
            assert time.monotonic() < deadline, f"{trials} trials never finished"
            time.sleep(0.02)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        raise
    return proc


SHM = Path("/dev/shm")


def semaphores() -> set[str]:
    """Names of Python's named semaphores (multiprocessing's) in /dev/shm now."""
    return {p.name for p in SHM.glob("sem.mp-*")} if SHM.is_dir() else set()


def orphaned_semaphores(before: set[str]) -> list[Path]:
    """Semaphores made since ``before`` that no running process has mapped: what a process
    group killed with -9 leaves in /dev/shm (its resource tracker died with it)."""
    mapped = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            mapped.update(line.split("/dev/shm/", 1)[1].split()[0] for line in maps.read_text().splitlines()
                          if "/dev/shm/sem.mp-" in line)
        except OSError:  # the process ended meanwhile
            continue
    return sorted(SHM / name for name in semaphores() - before - mapped)


def wait_group_gone(pgid: int) -> None:
    deadline = time.monotonic() + 30
    while _group_alive(pgid):
        assert time.monotonic() < deadline, "a worker of the stopped sweep is still running"
        time.sleep(0.05)


@NEEDS_PROCESS_GROUPS
def test_kill_9_mid_sweep_then_rerun_completes_without_rerunning_finished_trials(tmp_path):
    trials_path = tmp_path / "S" / "trials.jsonl"
    before = semaphores()
    proc = start_sweep(tmp_path, tmp_path / "first.out", trials=2)
    os.killpg(proc.pid, signal.SIGKILL)  # the sweep and its pool's workers: the whole group
    proc.wait(timeout=30)
    wait_group_gone(proc.pid)
    for semaphore in orphaned_semaphores(before):  # kill -9 left them; don't let the suite leak them
        semaphore.unlink(missing_ok=True)
    data = trials_path.read_bytes()
    whole = data[: data.rfind(b"\n") + 1].splitlines(keepends=True)  # a cut-short last line is no record
    print(f"killed after {len(whole)} of 16 trials")
    assert 2 <= len(whole) < 16, f"the sweep was not killed mid-way ({len(whole)} trials recorded)"
    assert proc.returncode == -signal.SIGKILL
    # kill -9 skips every cleanup: the data folder the workers mapped is still there ...
    left = leftover_data_dirs(proc.pid)
    assert len(left) == 1, left

    rerun = ok(sweep(*LONG_SWEEP, cwd=tmp_path))
    assert not left[0].exists()  # ... until the next sweep removes it (its process is gone)
    assert f"resuming S: {len(whole)} done" in rerun.stdout
    final = trials_path.read_bytes()
    assert final.endswith(b"\n")
    lines = final.splitlines(keepends=True)
    assert lines[:len(whole)] == whole  # the first run's records untouched: same seconds, same worker
    after = [json.loads(line) for line in lines]  # every line parses: none truncated
    assert sorted(r["trial"] for r in after) == list(range(16))  # each trial exactly once
    assert "16 of 16 trials finished" in rerun.stdout


@NEEDS_PROCESS_GROUPS
def test_sigterm_mid_sweep_stops_the_workers_and_removes_the_data_folder(tmp_path):
    output = tmp_path / "out"
    before = semaphores()
    proc = start_sweep(tmp_path, output, trials=1)
    try:
        assert leftover_data_dirs(proc.pid)  # the workers' data, while they run
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM, output.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    wait_group_gone(proc.pid)
    assert leftover_data_dirs(proc.pid) == []
    assert orphaned_semaphores(before) == []  # an orderly exit releases its semaphores
    assert "Traceback" not in output.read_text()


def test_another_spec_for_a_sweep_dir_is_refused_unless_forced(tmp_path):
    common = ["--trials", 4, "--hidden", 16, "--workers", 1, "--out", "S", "--quiet"]
    ok(sweep(*common, "--epochs", 2, cwd=tmp_path))
    files = {p.name: p.read_bytes() for p in (tmp_path / "S").iterdir()}
    refused = sweep(*common, "--epochs", 3, cwd=tmp_path, timeout=10)
    assert refused.returncode == 2
    assert "epochs: 2 -> 3" in refused.stderr and "--force" in refused.stderr
    assert "holds another sweep" in refused.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "S").iterdir()} == files

    forced = ok(sweep(*common, "--epochs", 3, "--force", cwd=tmp_path))
    assert "writing S" in forced.stdout and "resuming" not in forced.stdout
    assert json.loads((tmp_path / "S" / "sweep.json").read_text())["epochs"] == 3
    trials = records(tmp_path / "S" / "trials.jsonl")
    assert sorted(r["trial"] for r in trials) == [0, 1, 2, 3]
    assert all(r["config"]["epochs"] == 3 and len(r["val_acc"]) == 3 for r in trials)

    again = ok(sweep(*common, "--epochs", 3, cwd=tmp_path))  # the same spec now: resumes, runs nothing
    assert "resuming S: 4 done" in again.stdout
    assert len(records(tmp_path / "S" / "trials.jsonl")) == 4


def test_diverging_trials_are_recorded_and_the_sweep_finishes(tmp_path):
    result = ok(sweep("--optimizer", "sgd", "--lr", "1..100", "--trials", 4, "--epochs", 2, "--out", "S",
                      "--quiet", cwd=tmp_path))
    trials = records(tmp_path / "S" / "trials.jsonl")
    assert sorted(r["trial"] for r in trials) == [0, 1, 2, 3]
    diverged = [r for r in trials if r["status"] == "diverged"]
    assert diverged, "no trial diverged at lr 1..100"
    assert all(isinstance(r["diverged_step"], int) and r["diverged_step"] >= 1 for r in diverged)
    assert f"4 of 4 trials finished, {len(diverged)} diverged" in result.stdout
    assert "diverged" in result.stdout.split("best ")[1]
    for name in ("best-trials.png", "lr-weight-decay.png"):
        assert (tmp_path / "S" / name).read_bytes()[:8] == PNG


def test_the_default_sweep_dir_is_sweeps_dataset_model(tmp_path):
    result = ok(sweep("--trials", 2, "--epochs", 1, "--quiet", cwd=tmp_path))
    default = Path("sweeps") / "digits-mlp"
    assert f"writing {default}" in result.stdout
    assert len(records(tmp_path / default / "trials.jsonl")) == 2
    assert (tmp_path / default / "sweep.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweeps"]


def test_no_room_for_the_workers_data_is_a_clear_error(tmp_path, monkeypatch, capsys):
    from layerwise.cli import main  # in-process: the full disk is simulated
    from layerwise.cli import sweep as sweep_cli  # the module whose write_data_dir is replaced

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sweep_cli, "write_data_dir", full)
    monkeypatch.chdir(tmp_path)
    code = main(["sweep", "--trials", "2", "--epochs", "1", "--out", "S", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "could not write the training data" in err and "No space left on device" in err
    assert "Traceback" not in err
    assert not (tmp_path / "S").exists()  # refused before the sweep's folder is made

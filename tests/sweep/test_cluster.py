"""`layerwise sweep --address` on a real Dask cluster on 127.0.0.1: a `dask scheduler` process and
two `dask worker` processes on free ports, all stopped at the end (SIGTERM, then SIGKILL).

- the cluster gives, trial by trial, the local pool's validation accuracies bit for bit (one BLAS
  thread per trial in both);
- kill -9 of a worker mid-sweep loses nothing: the command finishes, each trial recorded once;
- an address where no scheduler listens (nothing, or something that never answers), and a
  Python without Dask distributed, are clear errors that write no SWEEP_DIR.

Every wait is bounded in time; the only network is 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import _missing, require_program

DASK_HINT = "Dask distributed's command; pip install 'layerwise[cluster]'"
HOST = "127.0.0.1"
STARTUP = 60  # seconds for the scheduler to see its workers
STOP = 15  # seconds for the cluster's processes to exit after SIGTERM
SWEEP = 120  # seconds any one sweep command may take (they take a few)
IDLE = 300  # seconds after which a cluster with nothing to do closes itself (were stop() never to run)
WORKER_FIELD = re.compile(r"^[^:\s]+:(\d+)$")  # host:pid


def _distributed():
    try:
        import distributed
    except ImportError:
        _missing("needs Dask distributed (pip install 'layerwise[cluster]')")
    return distributed


def _dask_program() -> str:
    """The `dask` command of this Python (its workers must import this layerwise), else the PATH's."""
    return shutil.which("dask", path=str(Path(sys.executable).parent)) or require_program("dask", DASK_HINT)


def _free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound by the OS, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 15) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-n:])
    except OSError:
        return ""


def _dead(process) -> bool:
    import psutil

    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class DaskCluster:
    """`dask scheduler` and ``n`` × `dask worker --nthreads 1 --nworkers 1`, as subprocesses.

    Each `dask worker` process is a nanny; the worker that runs the tasks is its child process
    (``worker_pids``, by worker address, as the workers report it), which the nanny restarts
    should it die."""

    def __init__(self, workdir: Path, n_workers: int = 2) -> None:
        _distributed()  # skips (or fails) before psutil, which comes with it, is imported
        self.dask = _dask_program()
        import psutil

        self.psutil = psutil
        self.workdir = workdir
        self.n_workers = n_workers
        self.address = f"tcp://{HOST}:{_free_port()}"
        self.launchers: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.descendants: list = []  # psutil.Process of every child of a launcher seen
        self.client = None
        self.worker_pids: dict[str, int] = {}
        self.nannies: dict[str, subprocess.Popen] = {}  # worker address -> its `dask worker` process

    def _spawn(self, name: str, args: list[str]) -> None:
        log = self.workdir / f"{name}.log"
        self.logs.append(log)
        with open(log, "wb") as out:
            self.launchers.append(subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir,
                                                   stdin=subprocess.DEVNULL))

    def start(self) -> DaskCluster:
        distributed = _distributed()
        dask = self.dask
        port = self.address.rsplit(":", 1)[1]
        # Should this process die without stop(), the scheduler closes once idle for IDLE seconds,
        # and its workers follow it within seconds.
        # --no-dashboard leaves an HTTP server (health, metrics) on the dashboard address, by
        # default :8787 and all interfaces: it goes on a free port of 127.0.0.1.
        web = ["--no-dashboard", "--dashboard-address", f"{HOST}:0"]
        self._spawn("scheduler", [dask, "scheduler", "--host", HOST, "--port", port, *web,
                                  "--idle-timeout", f"{IDLE}s"])
        for i in range(self.n_workers):
            self._spawn(f"worker-{i}", [dask, "worker", self.address, "--nthreads", "1", "--nworkers", "1",
                                        "--host", HOST, *web, "--death-timeout", str(STARTUP),
                                        "--local-directory", str(self.workdir / f"worker-{i}")])
        try:
            self.client = distributed.Client(self.address, timeout=f"{STARTUP}s")
            self.client.wait_for_workers(self.n_workers, timeout=STARTUP)
        except Exception as exc:
            self.stop()
            pytest.fail(f"the Dask cluster at {self.address} did not start within {STARTUP} s: {exc}\n"
                        + self.log_tails())
        self.worker_pids = self.client.run(os.getpid)
        for launcher in self.launchers:
            children = self.psutil.Process(launcher.pid).children(recursive=True)
            self.descendants += children
            for address, pid in self.worker_pids.items():
                if pid in {c.pid for c in children}:
                    self.nannies[address] = launcher
        assert len(self.nannies) == self.n_workers, (self.worker_pids, self.log_tails())
        return self

    def log_tails(self) -> str:
        return "\n".join(f"--- {log.name}:\n{_tail(log)}" for log in self.logs)

    def stop(self) -> None:
        """Every process started here ends: the workers, then the scheduler (a worker whose
        scheduler is gone first waits for it before closing), each SIGTERM and then SIGKILL
        after STOP seconds; then any child a nanny left behind."""
        if self.client is not None:
            try:
                self.client.close(timeout=5)
            except Exception:
                pass  # the scheduler may be gone already; the processes are stopped below
            self.client = None
        for launcher in self.launchers:
            try:
                self.descendants += self.psutil.Process(launcher.pid).children(recursive=True)
            except self.psutil.Error:
                pass
        workers, scheduler = self.launchers[1:], self.launchers[:1]
        for group in (workers, scheduler):
            for launcher in group:
                if launcher.poll() is None:
                    launcher.terminate()
            deadline = time.monotonic() + STOP
            for launcher in group:
                try:
                    launcher.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    launcher.kill()
                    launcher.wait(5)
        deadline = time.monotonic() + 5
        while not all(_dead(p) for p in self.descendants) and time.monotonic() < deadline:
            time.sleep(0.05)
        for process in self.descendants:
            if not _dead(process):
                try:
                    process.kill()  # psutil checks that the pid is still that process's
                except self.psutil.Error:
                    pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two workers, shared by the tests that do not harm them."""
    dask = DaskCluster(tmp_path_factory.mktemp("dask-cluster"))
    try:
        yield dask.start()
    finally:
        dask.stop()


@pytest.fixture
def own_cluster(tmp_path):
    """A cluster for one test (one that kills a worker)."""
    dask = DaskCluster(tmp_path / "dask-cluster")
    dask.workdir.mkdir()
    try:
        yield dask.start()
    finally:
        dask.stop()


def _sweep_args(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "layerwise", "sweep", "--out", str(out), "--quiet", *extra]


def _sweep(out: Path, *extra: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_sweep_args(out, *extra), cwd=cwd, capture_output=True, text=True, timeout=SWEEP,
                          stdin=subprocess.DEVNULL)


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]


def _by_trial(records: list[dict], trials: int) -> dict[int, dict]:
    """The records by trial number, after checking that each trial is there exactly once."""
    numbers = sorted(r["trial"] for r in records)
    assert numbers == list(range(trials)), f"trials recorded: {numbers}"
    return {r["trial"]: r for r in records}


def _worker_pid(record: dict) -> int:
    match = WORKER_FIELD.match(str(record.get("worker")))
    assert match, f"trial {record.get('trial')}: worker {record.get('worker')!r} is not host:pid"
    return int(match.group(1))


# An lr range where 2 epochs move the accuracies, so that equal lists say something.
SMALL = ("--trials", "8", "--epochs", "2", "--lr", "1e-2..5e-1", "--seed", "3")


def test_cluster_gives_the_local_pools_accuracies_bit_for_bit(cluster, tmp_path):
    on_cluster = _sweep(tmp_path / "cluster", *SMALL, "--address", cluster.address, cwd=tmp_path)
    assert on_cluster.returncode == 0, on_cluster.stderr + cluster.log_tails()
    assert f"on the Dask cluster at {cluster.address}" in on_cluster.stdout
    local = _sweep(tmp_path / "local", *SMALL, "--workers", "2", "--threads", "1", cwd=tmp_path)
    assert local.returncode == 0, local.stderr

    remote = _by_trial(_records(tmp_path / "cluster"), 8)
    here = _by_trial(_records(tmp_path / "local"), 8)
    for trial in range(8):
        a, b = remote[trial], here[trial]
        assert a["status"] == b["status"] == "done", (trial, a["status"], b["status"])
        assert a["config"] == b["config"], trial
        assert a["threads"] == b["threads"] == 1, trial
        assert len(a["val_acc"]) == 2, trial
        assert a["val_acc"] == b["val_acc"], (trial, a["val_acc"], b["val_acc"])
        assert a["train_acc"] == b["train_acc"], (trial, a["train_acc"], b["train_acc"])
        assert a["final_val_acc"] == b["final_val_acc"], trial
    assert len({r["final_val_acc"] for r in remote.values()}) > 1, "every trial scored the same: a vacuous check"

    # The trials ran in the cluster's worker processes (which of the two is Dask's choice: not checked).
    cluster_pids = set(cluster.worker_pids.values())
    used = {_worker_pid(r) for r in remote.values()}
    assert used <= cluster_pids, (used, cluster.worker_pids)
    assert not {_worker_pid(r) for r in here.values()} & cluster_pids


def _count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("victim", ["host", "worker"])
def test_kill_9_of_a_worker_mid_sweep_loses_no_trial(own_cluster, tmp_path, victim):
    """kill -9 mid-sweep of a worker that has trials assigned:

    - "host": its `dask worker` process (the nanny) and then the worker process under it, as when
      a machine dies: nothing restarts it, and the remaining trials run on the other worker;
    - "worker": the worker process only; its nanny starts a new one, as Dask does by default.

    Either way the command exits 0 with every trial recorded exactly once."""
    import psutil

    trials = 12
    out = tmp_path / "sweep"
    # About 1 s per trial here, so the sweep lasts several seconds and the kill lands in it.
    args = _sweep_args(out, "--trials", str(trials), "--epochs", "30", "--model", "mlp", "--hidden", "500,500",
                       "--lr", "1e-2..3e-1", "--address", own_cluster.address)
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with open(stdout, "wb") as o, open(stderr, "wb") as e:
        proc = subprocess.Popen(args, cwd=tmp_path, stdout=o, stderr=e, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + SWEEP
        victim_address = None
        while victim_address is None:  # bounded by the deadline
            assert proc.poll() is None, f"the sweep ended before a worker was killed:\n{_tail(stderr)}"
            assert time.monotonic() < deadline, "no trial finished in time\n" + own_cluster.log_tails()
            done = _count_lines(out / "trials.jsonl")
            if done >= 1:
                assert done < trials, "the sweep finished before a worker was killed"
                busy = [a for a, keys in own_cluster.client.processing().items() if keys]
                victim_address = busy[0] if busy else None
            if victim_address is None:
                time.sleep(0.05)
        worker = psutil.Process(own_cluster.worker_pids[victim_address])
        survivor_address = next(a for a in own_cluster.worker_pids if a != victim_address)
        if victim == "host":
            os.kill(own_cluster.nannies[victim_address].pid, signal.SIGKILL)
        os.kill(worker.pid, signal.SIGKILL)
        killed_at = _count_lines(out / "trials.jsonl")

        code = proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    err = _tail(stderr, 40)
    assert code == 0, f"exit {code}\n{err}\n{own_cluster.log_tails()}"
    assert killed_at < trials, "the sweep finished before the kill took effect"
    assert _dead(worker), "the killed worker still runs"

    records = _records(out)
    assert len(records) == trials, [r["trial"] for r in records]
    by_trial = _by_trial(records, trials)
    assert all(r["status"] == "done" and len(r["val_acc"]) == 30 for r in by_trial.values())
    pids = {_worker_pid(r) for r in records}
    if victim == "host":
        # Nothing restarted the dead worker: the trials ran on the two original workers only,
        # and the scheduler is left with the survivor.
        assert pids <= {worker.pid, own_cluster.worker_pids[survivor_address]}, (pids, own_cluster.worker_pids)
        assert set(own_cluster.client.nthreads()) == {survivor_address}
    assert f"{trials} of {trials} trials finished" in stdout.read_text(), stdout.read_text()


@pytest.mark.parametrize("listener", ["nothing", "silent"])
def test_an_address_with_no_scheduler_is_a_clear_error_within_10_s(tmp_path, listener):
    """Nothing listens at the port (connection refused), or something that never answers does:
    Dask's Client bounds the connection by its timeout, but not the handshake after it."""
    _distributed()  # without it, --address is refused before any connection (the next test)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        if listener == "silent":
            silent.bind((HOST, 0))
            silent.listen(4)  # the kernel accepts connections; nobody ever reads or writes
            port = silent.getsockname()[1]
        else:
            port = _free_port()
        address = f"tcp://{HOST}:{port}"
        out = tmp_path / "sweep"
        started = time.monotonic()
        result = _sweep(out, "--trials", "2", "--epochs", "1", "--address", address, cwd=tmp_path)
        seconds = time.monotonic() - started
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert address in result.stderr, result.stderr
    assert "no Dask scheduler answered" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert seconds < 10, f"{seconds:.1f} s to report an unreachable scheduler"
    assert not out.exists()


def test_address_without_dask_distributed_names_the_extra(tmp_path):
    out = tmp_path / "sweep"
    # A Python where `import distributed` fails, as where the extra is not installed.
    code = ("import sys; sys.modules['distributed'] = None; from layerwise.cli import main; "
            f"sys.exit(main(['sweep', '--trials', '2', '--address', 'tcp://{HOST}:{_free_port()}', "
            f"'--out', {str(out)!r}]))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                            timeout=SWEEP, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "pip install 'layerwise[cluster]'" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert not out.exists()

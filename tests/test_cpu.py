"""The thread count's decisions: cgroup quotas (v1 and v2), affinity, and who overrides whom."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from layerwise import cpu


def _proc_cgroup(tmp_path: Path, text: str) -> Path:
    proc = tmp_path / "proc_cgroup"
    proc.write_text(text)
    return proc


def _cgroup_v2(tmp_path: Path, group: str, limits: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    (root / group).mkdir(parents=True)
    for directory, text in limits.items():
        (root / directory).mkdir(parents=True, exist_ok=True)
        (root / directory / "cpu.max").write_text(text + "\n")
    return _proc_cgroup(tmp_path, f"0::/{group}\n"), root


def test_cgroup_v2_quota_is_read_from_the_group(tmp_path):
    proc, root = _cgroup_v2(tmp_path, "user.slice/job", {"user.slice/job": "150000 100000"})
    assert cpu.cgroup_cpu_limit(proc, root) == 1.5


def test_cgroup_v2_a_parent_group_can_be_the_tighter_limit(tmp_path):
    proc, root = _cgroup_v2(tmp_path, "a/b", {"a/b": "400000 100000", "a": "200000 100000", ".": "max 100000"})
    assert cpu.cgroup_cpu_limit(proc, root) == 2.0


def test_cgroup_v2_without_quota(tmp_path):
    proc, root = _cgroup_v2(tmp_path, "a", {"a": "max 100000"})
    assert cpu.cgroup_cpu_limit(proc, root) is None


def test_cgroup_v2_in_a_container_reads_its_own_mount_root(tmp_path):
    # The group path names the host's hierarchy; inside the container only the root exists.
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cpu.max").write_text("100000 100000\n")
    proc = _proc_cgroup(tmp_path, "0::/docker/abc\n")
    assert cpu.cgroup_cpu_limit(proc, root) == 1.0


def test_cgroup_v1_quota(tmp_path):
    root = tmp_path / "cgroup"
    group = root / "cpu,cpuacct" / "docker" / "abc"
    group.mkdir(parents=True)
    (group / "cpu.cfs_quota_us").write_text("300000\n")
    (group / "cpu.cfs_period_us").write_text("100000\n")
    proc = _proc_cgroup(tmp_path, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
    assert cpu.cgroup_cpu_limit(proc, root) == 3.0


def test_cgroup_v1_unlimited_is_minus_one(tmp_path):
    root = tmp_path / "cgroup"
    (root / "cpu").mkdir(parents=True)
    (root / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (root / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    proc = _proc_cgroup(tmp_path, "2:cpu:/\n")
    assert cpu.cgroup_cpu_limit(proc, root) is None


def test_no_cgroup_file_means_no_limit(tmp_path):
    assert cpu.cgroup_cpu_limit(tmp_path / "missing", tmp_path) is None


@pytest.mark.parametrize(("affinity", "quota", "expected"), [
    ({0, 1, 2, 3}, None, 4),
    ({0, 1, 2, 3}, 2.5, 2),  # rounded down: a third thread would get the group throttled
    ({0, 1}, 8.0, 2),
    ({0, 1, 2, 3}, 0.5, 1),  # never below one
])
def test_usable_cores_is_affinity_capped_by_the_quota(monkeypatch, affinity, quota, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: affinity)
    monkeypatch.setattr(cpu, "_quota", lambda: quota)
    assert cpu.usable_cores() == expected


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, (3, "usable cores")),
    ({"OMP_NUM_THREADS": "2"}, (2, "OMP_NUM_THREADS")),
    ({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "2"}, (1, "OPENBLAS_NUM_THREADS")),
    ({"LAYERWISE_THREADS": "5", "OPENBLAS_NUM_THREADS": "1"}, (5, "LAYERWISE_THREADS")),
    ({"OMP_NUM_THREADS": "4,2"}, (4, "OMP_NUM_THREADS")),
    ({"LAYERWISE_THREADS": " "}, (3, "usable cores")),
])
def test_which_setting_decides(monkeypatch, environ, expected):
    monkeypatch.setattr(cpu, "usable_cores", lambda: 3)
    assert cpu.threads_from(environ) == expected


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_setting_is_named(value):
    with pytest.raises(ValueError, match=f"LAYERWISE_THREADS.*{value!r}"):
        cpu.threads_from({"LAYERWISE_THREADS": value})


def test_set_num_threads_overrides_the_environment_until_reset(monkeypatch):
    monkeypatch.setenv("LAYERWISE_THREADS", "3")
    try:
        cpu.set_num_threads(1)
        assert cpu.get_num_threads() == 1
        cpu.set_num_threads(None)
        assert cpu.get_num_threads() == 3
    finally:
        cpu.set_num_threads(None)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_refuses_what_is_not_a_thread_count(bad):
    with pytest.raises(ValueError, match="set_num_threads"):
        cpu.set_num_threads(bad)


@pytest.mark.parametrize(("environ", "chosen", "fixed"), [
    ({}, None, False),
    ({"LAYERWISE_THREADS": "2"}, None, True),
    ({"OPENBLAS_NUM_THREADS": "4"}, None, True),
    ({"OMP_NUM_THREADS": "1"}, None, True),
    ({}, 2, True),
])
def test_a_number_the_user_gave_is_fixed(environ, chosen, fixed):
    try:
        cpu.set_num_threads(chosen)
        assert cpu.is_fixed(environ) is fixed
    finally:
        cpu.set_num_threads(None)


def test_describe_names_who_decided(monkeypatch):
    monkeypatch.setattr(cpu, "usable_cores", lambda: 2)
    for name in ("LAYERWISE_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert cpu.describe() == "2 threads (the usable cores, shared with other processes)"
    assert cpu.describe(option=1) == "1 thread (--threads)"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu.describe() == "3 threads (OMP_NUM_THREADS)"
    try:
        cpu.set_num_threads(4)
        assert cpu.describe() == "4 threads (set_num_threads)"
    finally:
        cpu.set_num_threads(None)


def _stat(path: Path, cpus: dict[str, tuple[int, ...]]) -> None:
    lines = ["cpu  " + " ".join("0" * 10)]
    lines += [f"{name} " + " ".join(map(str, ticks)) + " 0 0" for name, ticks in cpus.items()]
    path.write_text("\n".join([*lines, "intr 0", "ctxt 0"]) + "\n")


class Clock:
    def __init__(self):
        self.now, self.cpu_s = 100.0, 5.0

    def times(self):
        return os.times_result((self.cpu_s, 0.0, 0.0, 0.0, self.now))


def test_cpu_share_is_what_others_kept_busy_on_our_cpus(tmp_path, monkeypatch):
    clock = Clock()
    monkeypatch.setattr(cpu.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(cpu.os, "sysconf", lambda name: 100, raising=False)
    monkeypatch.setattr(cpu.os, "times", clock.times)
    monkeypatch.setattr(cpu.time, "monotonic", lambda: clock.now)
    stat = tmp_path / "stat"
    # user nice system idle iowait irq softirq steal; cpu2 is not ours
    _stat(stat, {"cpu0": (0, 0, 0, 0, 0, 0, 0, 0), "cpu1": (0, 0, 0, 0, 0, 0, 0, 0), "cpu2": (0,) * 8})
    share = cpu.CpuShare(window_s=0.3, stat=stat)
    assert share.ncpus == 2
    clock.now += 0.1
    assert share.others() is None  # the window has not passed
    # One second later: cpu0 busy all second (90 user + 10 system ticks); cpu1 busy 50 ticks,
    # 20 taken by the hypervisor (steal: busy for us), idle or waiting for I/O for the rest;
    # cpu2 fully busy but not ours. 1.7 s busy; this process used 1.2 s: others 0.5 cores.
    clock.now, clock.cpu_s = 101.0, 6.2
    _stat(stat, {"cpu0": (90, 0, 10, 0, 0, 0, 0, 0), "cpu1": (30, 10, 10, 20, 10, 0, 0, 20), "cpu2": (100,) + (0,) * 7})
    assert share.others() == pytest.approx(0.5)
    clock.now += 1.0  # nothing happened since: nobody else was busy
    assert share.others() == 0.0


def test_cpu_share_knows_nothing_without_proc_stat(tmp_path):
    share = cpu.CpuShare(window_s=0.0, stat=tmp_path / "missing")
    assert share.others() is None

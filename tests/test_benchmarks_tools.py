"""``benchmarks.before_after`` and ``benchmarks.under_load``: their bookkeeping, and one small
real run of each. No timing is asserted (speed is the benchmarks' own report)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import require_fixture

from benchmarks import under_load
from benchmarks.before_after import table as before_after_table

ROOT = Path(__file__).resolve().parents[1]
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def test_before_after_reports_the_median_of_per_pair_ratios_and_flags_a_loss() -> None:
    # The machine drifts: pair 2 is slow on both sides. Per pair the ratio stays 1.1.
    table = before_after_table({
        "train:mlp-small:1": {"before": [1.0, 2.0, 1.0], "after": [1.1, 2.2, 1.1]},
        "infer:convnet:2:100": {"before": [1.0, 1.0], "after": [0.9, 0.95]},
    })
    rows = table.splitlines()[2:]
    assert rows[0].startswith("| train:mlp-small:1 | 1000.0 | 1100.0 | 1.100 (1.10-1.10) ⚠ |")
    assert "0.925 (0.90-0.95) |" in rows[1] and "⚠" not in rows[1]


def test_under_load_table_gives_each_time_relative_to_alone() -> None:
    rows = [
        {"net": "mlp-small", "impl": impl, "situation": situation, "epoch_s": [t], "threads": 2}
        for impl, times in (("layerwise", (0.2, 0.3, 0.25, 0.4)), ("torch", (0.4, 2.0, 4.0, 1.2)))
        for situation, t in zip(under_load.SITUATIONS, times, strict=True)
    ]
    lines = under_load.table(rows).splitlines()
    copies = next(line for line in lines if "| copies |" in line)
    assert copies == "| mlp-small | copies | 0.30 | **1.50×** | 2.00 | **5.00×** |"
    assert "| mlp-small | alone | 0.20 | **1.00×** | 0.40 | **1.00×** |" in lines


def test_under_load_refuses_an_unknown_situation_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        under_load.parse_args(["--situations", "alone,disk"])
    assert "unknown situation 'disk'" in capsys.readouterr().err
    args = under_load.parse_args(["--situations", "copies", "--lw-env", "OPENBLAS_THREAD_TIMEOUT=4"])
    assert args.situations == ["alone", "copies"]  # alone is always measured: the reference
    assert args.lw_env == {"OPENBLAS_THREAD_TIMEOUT": "4"}


def _fashion_mnist() -> None:
    require_fixture(FASHION_DIR)  # Debian's dataset-fashion-mnist


def test_under_load_runs_every_situation_for_real(tmp_path: Path) -> None:
    """A tiny run: 784-50-10, 5 steps per pass, both implementations, all four situations;
    the loads and the second copy are started and stopped for real."""
    _fashion_mnist()
    pytest.importorskip("torch")
    out = tmp_path / "load.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.under_load", "--nets", "mlp-small", "--reps", "2", "--warmup", "1",
         "--steps-scale", str(5 / under_load.STEPS["mlp-small"]), "--wait-idle", "0", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    raw = json.loads(out.read_text())
    assert {(r["impl"], r["situation"]) for r in raw["rows"]} == {
        (impl, s) for impl in ("layerwise", "torch") for s in under_load.SITUATIONS}
    assert all(len(r["epoch_s"]) == 2 and all(t > 0 for t in r["epoch_s"]) for r in raw["rows"])
    copies = [r for r in raw["rows"] if r["situation"] == "copies"]
    assert all(len(r["cpu_cores"]) == 2 for r in copies)  # both copies reported
    assert "| mlp-small | numpy |" in proc.stdout
    # Every process it started is gone.
    assert _command_lines_containing("benchmarks.load_worker") == []


def _command_lines_containing(text: str) -> list[str]:
    """The command lines of running processes that contain ``text``, read from /proc (what
    ``pgrep -f`` does, without needing procps: a slim Python image has no pgrep)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:  # the process ended meanwhile
            continue
        line = b" ".join(args).decode(errors="replace")
        if text in line:
            found.append(line)
    return found


def test_the_process_check_finds_a_running_command() -> None:
    # The check above must be able to fail: a process it should see is seen, until it ends.
    marker = "layerwise-process-check-marker"

    def seen_within(seconds: float, expected: bool) -> bool:
        deadline = time.monotonic() + seconds
        while bool(_command_lines_containing(marker)) != expected and time.monotonic() < deadline:
            time.sleep(0.05)
        return bool(_command_lines_containing(marker)) == expected

    proc = subprocess.Popen([sys.executable, "-c", "import sys, time; time.sleep(30)", marker])
    try:
        assert seen_within(10, expected=True)
    finally:
        proc.kill()
        proc.wait()
    assert seen_within(10, expected=False)


def test_before_after_measures_one_workload_from_a_given_tree() -> None:
    _fashion_mnist()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.before_after", "--measure", "infer:mlp-small:1:1000"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert float(proc.stdout.split()[-1]) > 0


def test_deep_convnet_step_memory_counts_the_kept_inputs_not_im2col() -> None:
    import numpy as np

    import layerwise as lw
    from benchmarks.deep_convnet import step_memory

    model = lw.DeepConvNet(seed=0, dtype=np.float32)
    rng = np.random.default_rng(0)
    x, t = rng.random((4, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 4)
    kept, peak = step_memory(model, x, t)
    # inputs of the six convolutions: 1 and 16 channels at 28x28, 16 and 32 at 14x14, 32 and 64
    # at 8x8 (the fourth pads by 2)
    assert kept == 4 * 4 * (28 * 28 * (1 + 16) + 14 * 14 * (16 + 32) + 8 * 8 * (32 + 64))
    assert peak > kept

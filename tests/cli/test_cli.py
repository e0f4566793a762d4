"""The command line as a user runs it: a real subprocess each time."""

import subprocess
import sys

import layerwise


def run(*args, check=True):
    return subprocess.run([sys.executable, "-m", "layerwise", *args], capture_output=True, text=True,
                          check=check, timeout=300)


def test_version():
    assert run("--version").stdout.strip() == f"layerwise {layerwise.__version__}"


def test_help_lists_commands():
    out = run("--help").stdout
    assert "gradcheck" in out and "usage: layerwise" in out


def test_gradcheck_prints_a_passing_table():
    result = run("gradcheck")
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["layer", "tensor", "max"]
    rows = [line for line in lines[1:-1]]
    assert len(rows) >= 13 and all(row.endswith("pass") for row in rows)
    for name in ("ReLU", "Sigmoid", "Affine", "SoftmaxWithLoss"):
        assert any(row.startswith(name) for row in rows)
    assert " 0 failed" in lines[-1]


def test_unknown_command_fails_cleanly():
    result = run("frobnicate", check=False)
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_closed_pipe_is_not_a_traceback():
    # Regression: `layerwise gradcheck | head -1` ended in a BrokenPipeError traceback.
    # The reader closes its end before the command prints anything.
    child = subprocess.Popen([sys.executable, "-m", "layerwise", "gradcheck"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    child.stdout.close()
    _, stderr = child.communicate(timeout=300)
    assert b"Traceback" not in stderr and b"BrokenPipe" not in stderr, stderr.decode()
    assert child.returncode == 141

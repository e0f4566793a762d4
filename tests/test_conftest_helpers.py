"""The shared test helpers themselves: a missing program skips (fails in CI), and the
rounding tolerances accept rounding but not a real difference."""

import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import (
    GRAPHVIZ_HINT,
    REPO,
    assert_close_for_dtype,
    dtype_tolerance,
    require_fixture,
    require_program,
    unambiguous_argmax,
)

MISSING = "layerwise-no-such-program"
HELPERS_CONFTEST = """
import importlib.util

spec = importlib.util.spec_from_file_location("layerwise_test_helpers", {path!r})
helpers = importlib.util.module_from_spec(spec)
spec.loader.exec_module(helpers)
needs_dot = helpers.needs_dot
"""


def test_require_program_returns_a_program_on_the_path(monkeypatch, tmp_path):
    program = tmp_path / "some-tool"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert require_program("some-tool", "install it") == str(program)


@pytest.mark.parametrize("required", [None, "0"])
def test_require_program_skips_naming_the_program_and_how_to_install_it(monkeypatch, required):
    if required is None:
        monkeypatch.delenv("LAYERWISE_REQUIRE_FIXTURES", raising=False)
    else:
        monkeypatch.setenv("LAYERWISE_REQUIRE_FIXTURES", required)
    with pytest.raises(pytest.skip.Exception) as info:
        require_program(MISSING, "apt-get install it")
    assert str(info.value) == f"needs `{MISSING}` on the PATH (apt-get install it)"


def test_require_program_fails_when_fixtures_are_required(monkeypatch):
    monkeypatch.setenv("LAYERWISE_REQUIRE_FIXTURES", "1")
    with pytest.raises(pytest.fail.Exception, match=rf"needs `{MISSING}`.*LAYERWISE_REQUIRE_FIXTURES=1"):
        require_program(MISSING, "apt-get install it")


def test_require_fixture_fails_when_fixtures_are_required(monkeypatch, tmp_path):
    monkeypatch.setenv("LAYERWISE_REQUIRE_FIXTURES", "1")
    with pytest.raises(pytest.fail.Exception, match="fixture not found"):
        require_fixture(tmp_path / "absent")
    monkeypatch.delenv("LAYERWISE_REQUIRE_FIXTURES")
    with pytest.raises(pytest.skip.Exception, match="fixture not found"):
        require_fixture(tmp_path / "absent")


def test_needs_dot_without_dot_skips_or_fails_in_a_real_session(tmp_path):
    # The fixture as a test uses it, in a pytest run of its own whose PATH has no `dot`.
    (tmp_path / "conftest.py").write_text(HELPERS_CONFTEST.format(path=str(REPO / "tests" / "conftest.py")))
    (tmp_path / "test_draw.py").write_text("def test_draws(needs_dot):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "LAYERWISE_REQUIRE_FIXTURES"}
    env["PATH"] = str(tmp_path)  # python itself is started by its full path

    def run(**extra):
        return subprocess.run([sys.executable, "-m", "pytest", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                              cwd=tmp_path, env={**env, **extra}, capture_output=True, text=True, timeout=120)

    skipped = run()
    assert skipped.returncode == 0 and "1 skipped" in skipped.stdout, skipped.stdout + skipped.stderr
    assert f"needs `dot` on the PATH ({GRAPHVIZ_HINT})" in skipped.stdout
    failed = run(LAYERWISE_REQUIRE_FIXTURES="1")
    assert failed.returncode == 1 and "1 error" in failed.stdout, failed.stdout + failed.stderr
    assert "LAYERWISE_REQUIRE_FIXTURES=1" in failed.stdout


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_close_for_dtype_accepts_rounding_and_refuses_more(dtype):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((64, 300)).astype(dtype), rng.standard_normal((300, 8)).astype(dtype)
    whole = a @ b
    rows = np.concatenate([a[i : i + 1] @ b for i in range(len(a))])  # other GEMM shapes
    wide = (a.astype(np.float64) @ b.astype(np.float64)).astype(dtype)  # rounded once
    for other in (rows, wide):
        assert_close_for_dtype(other, whole, dtype, terms=300)
    off = whole.copy()
    off[3, 4] += 100 * dtype_tolerance(dtype, 300) * np.abs(whole).max()
    with pytest.raises(AssertionError):
        assert_close_for_dtype(off, whole, dtype, terms=300)
    assert dtype_tolerance(np.float32) > dtype_tolerance(np.float64)


def test_unambiguous_argmax_refuses_near_ties():
    scores = np.array([[0.0, 1.0, 0.5], [2.0, -1.0, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(unambiguous_argmax(scores, np.float32, terms=10), [1, 0])
    scores[0, 2] = np.nextafter(np.float32(1.0), np.float32(0.0))
    with pytest.raises(AssertionError, match=r"rows \[0\]"):
        unambiguous_argmax(scores, np.float32, terms=10)

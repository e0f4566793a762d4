"""The commands' one thread setting, and two trainings at once, run as a user runs them."""

import os
import subprocess
import sys

import numpy as np
import pytest
from safetensors.numpy import load_file
from threadpoolctl import threadpool_limits

import layerwise as lw
import layerwise.train
from layerwise.cli import main
from layerwise.kernels.blas_limits import blas_threads

THREAD_VARIABLES = ("LAYERWISE_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def _env(**settings):
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    return {**env, **settings}


def _train(out, *extra, env=None):
    return subprocess.Popen([sys.executable, "-m", "layerwise", "train", "--epochs", "3", "--model", "mlp",
                             "--hidden", "64,64", "--quiet", "--out", str(out), *extra],
                            env=env or _env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(proc):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return out


@pytest.mark.parametrize("extra", [[], ["--threads", "2"], ["--threads", "1"]],
                         ids=["default", "threads-2", "threads-1"])
def test_two_trainings_at_once_finish_with_the_model_trained_alone(tmp_path, extra):
    """With a fixed thread count, bit for bit. Left to layerwise, the BLAS threads follow the
    load and OpenBLAS's last bits follow them (README, "Threads"): equal to float32 rounding."""
    _finish(_train(tmp_path / "alone", *extra))
    together = [_train(tmp_path / name, *extra) for name in ("first", "second")]
    for proc in together:
        _finish(proc)
    alone = load_file(tmp_path / "alone" / "model.safetensors")
    for name in ("first", "second"):
        model = load_file(tmp_path / name / "model.safetensors")
        assert model.keys() == alone.keys()
        for k in alone:
            if extra:
                assert np.array_equal(model[k], alone[k]), (name, k)
            else:
                np.testing.assert_allclose(model[k], alone[k], rtol=1e-4, atol=1e-6, err_msg=f"{name} {k}")


@pytest.mark.parametrize("command", [["train"], ["evaluate", "m.safetensors"], ["predict", "m.safetensors", "a.png"]],
                         ids=["train", "evaluate", "predict"])
@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_thread_count_is_named(command, value, capsys):
    with pytest.raises(SystemExit) as exc:
        main([*command, "--threads", value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--threads" in err and repr(value) in err and "at least 1" in err


def test_the_variable_names_a_bad_value():
    result = subprocess.run([sys.executable, "-m", "layerwise", "train", "--epochs", "1", "--quiet"],
                            env=_env(LAYERWISE_THREADS="lots"), capture_output=True, text=True, timeout=600)
    assert result.returncode == 2
    assert "LAYERWISE_THREADS must be a whole number of threads" in result.stderr and "'lots'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "env", "expected"), [
    ([], {}, None),  # left to layerwise
    (["--threads", "1"], {}, (1, True)),
    (["--threads", "3"], {"LAYERWISE_THREADS": "1"}, (3, True)),  # the option wins over the variable
    ([], {"LAYERWISE_THREADS": "1"}, (1, True)),
    ([], {"OPENBLAS_NUM_THREADS": "1"}, (1, True)),  # an explicit BLAS setting is respected
    ([], {"OMP_NUM_THREADS": "2"}, (2, True)),
])
def test_train_runs_on_the_threads_asked_for(tmp_path, monkeypatch, args, env, expected):
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    seen = []
    run_threads = layerwise.train.run_threads
    monkeypatch.setattr(layerwise.train, "run_threads", lambda: seen.append(run_threads()) or seen[-1])
    try:
        assert main(["train", "--epochs", "1", "--quiet", "--out", str(tmp_path / "run"), *args]) == 0
    finally:
        lw.set_num_threads(None)
    if expected is None:  # the usable cores, shared; fixed at BLAS's limit if this process set a lower one
        usable, allowed = lw.cpu.usable_cores(), blas_threads()
        expected = (usable, False) if allowed >= usable else (allowed, True)
    assert seen == [expected]


def test_the_first_line_says_how_many_threads(tmp_path):
    result = subprocess.run([sys.executable, "-m", "layerwise", "train", "--epochs", "1", "--threads", "1",
                             "--out", str(tmp_path / "run")], env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert first.startswith("training two-layer on digits") and "1 thread (--threads)" in first


def test_nothing_is_set_for_blas_before_numpy_loads():
    """The policy acts at run time (threadpoolctl), so importing NumPy first, as a notebook
    does, changes nothing; layerwise leaves the environment its children inherit alone. (The
    spin timeout OPENBLAS_THREAD_TIMEOUT, the one setting OpenBLAS reads only when it loads,
    was measured: no value helped, see benchmarks/README.md.)"""
    code = ("import os, sys; import layerwise.cli; assert 'numpy' in sys.modules; "
            "print([os.environ.get(k) for k in ('OPENBLAS_THREAD_TIMEOUT', 'OPENBLAS_NUM_THREADS', "
            "'OMP_NUM_THREADS', 'LAYERWISE_THREADS')])")
    result = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[None, None, None, None]"


def test_evaluate_keeps_blas_to_the_threads_option(tmp_path, monkeypatch):
    """Regression: --threads 1 did not reach BLAS where predict runs a batch whole."""
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert main(["train", "--epochs", "1", "--quiet", "--out", str(tmp_path / "run")]) == 0
    seen = []
    forward = lw.Affine.forward

    def probe(self, x, *args, **kwargs):
        seen.append(blas_threads())
        return forward(self, x, *args, **kwargs)

    monkeypatch.setattr(lw.Affine, "forward", probe)
    with threadpool_limits(limits=2):
        if blas_threads() < 2:
            pytest.skip("BLAS runs on one thread on this machine: nothing to limit")
        assert main(["evaluate", str(tmp_path / "run" / "model.safetensors"), "--threads", "1"]) == 0
        assert seen and set(seen) == {1}

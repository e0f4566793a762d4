"""The Trainer asks glibc's malloc to keep freed memory, so steps reuse pages instead of faulting."""

import os
import platform
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import layerwise as lw

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="mallopt settings are glibc's")

FAULTS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    import layerwise as lw
    from layerwise.kernels.memory import keep_freed_memory
    applied = keep_freed_memory() if sys.argv[1] == "keep" else False
    rng = np.random.default_rng(0)
    x, t = rng.random((100, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, 100)
    model, opt = lw.SimpleConvNet(seed=0), lw.Adam(lr=1e-3)
    for _ in range(3):
        opt.update(model.params, model.gradient(x, t))
    faults = []
    for _ in range(9):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        opt.update(model.params, model.gradient(x, t))
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    # The median step: malloc's heap grows once more at some step (the 5th, the 9th: it moves
    # with the sizes of the arrays), one step of ~440 faults, kept or not.
    print(applied, float(np.median(faults)))
""")


def _run(mode: str, **env: str) -> tuple[str, float]:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "1", **env}, timeout=300)
    applied, faults = out.stdout.split()
    return applied, float(faults)


@glibc
def test_kept_memory_removes_the_page_faults_of_a_convnet_step():
    applied, faults = _run("keep")
    assert applied == "True"
    assert faults < 50  # the same sizes each step: the freed pages are reused
    _, default_faults = _run("default")
    assert default_faults > 10 * max(faults, 10)  # malloc's defaults: ~1,000 a step


@glibc
def test_the_setting_can_be_turned_off():
    applied, _ = _run("keep", LAYERWISE_KEEP_FREED_MEMORY="0")
    assert applied == "False"


def test_the_trainer_applies_it_before_training(monkeypatch):
    import layerwise.train

    calls = []
    monkeypatch.setattr(layerwise.train, "keep_freed_memory", lambda: calls.append(1) or True)
    x, t = np.zeros((20, 4)), np.zeros(20, np.int64)
    lw.Trainer(lw.TwoLayerNet(4, 3, 2, seed=0), lw.SGD(lr=0.1), x, t, epochs=1, batch_size=10,
               progress=False, log=None).fit()
    assert calls == [1]

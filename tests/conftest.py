"""Shared test helpers: where the ../shared fixtures are, how a missing fixture or system
program is handled, and how results that differ only in rounding are compared."""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, settings

from layerwise import cpu
from layerwise.kernels import measuring, split_sizes, threads, updates

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LAYERWISE_SHARED", REPO.parent / "shared"))
MNIST_T10K = SHARED / "datasets" / "mnist-t10k"
BOOK_WEIGHTS = SHARED / "reference" / "dlfs-weights"

# Choices the Trainer measures (layerwise.kernels.tuning) are kept in a folder of the test
# session's own, never in the user's ~/.cache; the command lines the tests start inherit it.
_TUNING_CACHE = tempfile.TemporaryDirectory(prefix="layerwise-tests-cache-")
os.environ["LAYERWISE_CACHE_DIR"] = _TUNING_CACHE.name

# Fast, bounded fuzzing in CI; `pytest --hypothesis-profile=long` for a deep run.
settings.register_profile(
    "default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis' pytest plugin loads --hypothesis-profile in its own pytest_configure. When
    # this file is imported after that (it is not always an initial conftest), the
    # load_profile("default") above would silently replace the profile asked for: re-apply it.
    profile = config.getoption("--hypothesis-profile", None)
    if profile:
        settings.load_profile(profile)


@pytest.fixture(autouse=True)
def _thread_setting_reset() -> Iterator[None]:
    """No test leaves a thread count behind: ``set_num_threads`` (and the CLI's ``--threads``)
    limits BLAS for the whole process, and a test's LAYERWISE_THREADS (monkeypatched, so put
    back before this teardown runs) would keep that limit on for the tests after it."""
    yield
    cpu.set_num_threads(None)


_MEASURED_SPLIT_SIZE = split_sizes._kept_or_measured


@pytest.fixture(autouse=True)
def _default_split_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test splits work across owned threads at the default sizes, not this machine's
    (``kernels.split_sizes``: measured, so they differ by machine and by run, and a test that
    checks how work was cut would pass or fail with them); ``machine_split_sizes`` measures."""
    monkeypatch.setattr(threads, "_min_elements", threads.SPLIT_MIN_ELEMENTS)
    monkeypatch.setattr(threads, "_min_macs", threads.SPLIT_MIN_MACS)
    monkeypatch.setattr(split_sizes, "_kept_or_measured", lambda key, measure: None)
    monkeypatch.setattr(split_sizes, "_disturbed", set())
    monkeypatch.setattr(updates, "_update_sizes", {})


@pytest.fixture(autouse=True)
def _steady_blas_speedup(monkeypatch: pytest.MonkeyPatch) -> None:
    """BLAS's speed-up on all threads reads the same around every measurement of a choice
    (``kernels.measuring.blas_speedup``, which a busy test machine would make vary: a choice
    measured then is not kept); tests/kernels/test_measuring.py measures it for real."""
    monkeypatch.setattr(measuring, "blas_speedup", lambda threads: 1.9)


@pytest.fixture
def machine_split_sizes(monkeypatch: pytest.MonkeyPatch) -> None:
    """The split sizes measured on this machine and kept, as outside the tests."""
    monkeypatch.setattr(split_sizes, "_kept_or_measured", _MEASURED_SPLIT_SIZE)


def _missing(message: str) -> NoReturn:
    """Skip with ``message``; fail instead when LAYERWISE_REQUIRE_FIXTURES=1 (CI sets it, so a
    missing fixture or program can never turn a test into a silent skip there)."""
    if os.environ.get("LAYERWISE_REQUIRE_FIXTURES") == "1":
        pytest.fail(message + " (LAYERWISE_REQUIRE_FIXTURES=1)")
    pytest.skip(message)


def require_fixture(path: Path) -> Path:
    """Return ``path`` if it exists; otherwise skip, or fail when LAYERWISE_REQUIRE_FIXTURES=1."""
    if path.exists():
        return path
    _missing(f"fixture not found: {path}")


def require_program(name: str, install_hint: str) -> str:
    """Return the path of the system program ``name`` on the PATH; otherwise skip with a reason
    that names it and how to install it (``install_hint``), or fail when
    LAYERWISE_REQUIRE_FIXTURES=1 (CI installs the programs the tests use)."""
    path = shutil.which(name)
    if path is not None:
        return path
    _missing(f"needs `{name}` on the PATH ({install_hint})")


#: How to get Graphviz's `dot`, which renders graphs to SVG and PNG (DOT text needs nothing).
GRAPHVIZ_HINT = (
    "Graphviz's dot; Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz; "
    "conda: conda install graphviz"
)


@pytest.fixture
def mnist_t10k_dir() -> Path:
    return require_fixture(MNIST_T10K)


@pytest.fixture
def book_weights_dir() -> Path:
    return require_fixture(BOOK_WEIGHTS)


@pytest.fixture
def needs_dot() -> str:
    """Graphviz's `dot` (for a test that renders SVG/PNG, itself or through the CLI)."""
    return require_program("dot", GRAPHVIZ_HINT)


# -- results that differ only in rounding ------------------------------------------------------
#
# Results computed with different shapes, batch splits, thread counts or BLAS kernels (OpenBLAS
# picks its kernels by CPU: AVX-512 or not, or OPENBLAS_CORETYPE) add in another order, and
# NumPy's exp/log loops differ by CPU too (AVX-512, AVX2, SSE), so such results agree to
# rounding, not bit for bit, and a number measured on one machine is not another's to the bit.
# Bitwise checks are for the same call on the same inputs, shapes and threads on one machine
# (determinism, resume, save and load); everything else uses these.


def dtype_tolerance(dtype: npt.DTypeLike, terms: int = 1, ulps: float = 8) -> float:
    """Relative difference allowed between two roundings of the same values of ``dtype``:
    ``ulps`` units of roundoff (``np.finfo(dtype).eps``) times sqrt(``terms``), where ``terms``
    is the number of additions behind one value (a product's inner length; summed over the
    layers of a network). Roundoff of a sum of n terms grows like sqrt(n) in practice (like n
    in the worst case, which two blockings of the same sum do not come near)."""
    return ulps * float(np.finfo(dtype).eps) * math.sqrt(max(int(terms), 1))


def assert_close_for_dtype(actual, expected, dtype: npt.DTypeLike, *, terms: int = 1,
                           scale: float | None = None, ulps: float = 8, err_msg: str = "") -> None:
    """``actual`` equals ``expected`` up to the rounding of ``dtype`` (see ``dtype_tolerance``):
    relative tolerance tol, and absolute tolerance tol * ``scale`` (default: the largest
    |expected|), so values near zero after cancellation are judged on the scale of the result."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape, err_msg)
    tol = dtype_tolerance(dtype, terms, ulps)
    if scale is None:
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale, err_msg=err_msg)


def unambiguous_argmax(scores, dtype: npt.DTypeLike, *, terms: int = 1, ulps: float = 8) -> np.ndarray:
    """``scores.argmax(axis=1)``, after checking that in every row the best score leads the
    second by more than the rounding of ``dtype`` could move them (``dtype_tolerance`` on the
    scale of the largest |score|): then the predictions, and an accuracy, are the same with any
    BLAS kernel, batch split or thread count, and may be compared exactly."""
    scores = np.asarray(scores)
    top2 = np.sort(scores, axis=1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    limit = 2 * dtype_tolerance(dtype, terms, ulps) * float(np.max(np.abs(scores)))
    close = np.flatnonzero(margin <= limit)
    assert close.size == 0, f"rows {close[:10].tolist()} have their top two scores within {limit:.3g}"
    return scores.argmax(axis=1)

"""Shared test helpers: where the ../shared fixtures are, and how a missing one is handled."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LAYERWISE_SHARED", REPO.parent / "shared"))
MNIST_T10K = SHARED / "datasets" / "mnist-t10k"
BOOK_WEIGHTS = SHARED / "reference" / "dlfs-weights"

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


def require_fixture(path: Path) -> Path:
    """Return ``path`` if it exists; otherwise skip, or fail when LAYERWISE_REQUIRE_FIXTURES=1
    (CI sets it, so a missing fixture can never turn a test into a silent skip there)."""
    if path.exists():
        return path
    message = f"fixture not found: {path}"
    if os.environ.get("LAYERWISE_REQUIRE_FIXTURES") == "1":
        pytest.fail(message + " (LAYERWISE_REQUIRE_FIXTURES=1)")
    pytest.skip(message)


@pytest.fixture
def mnist_t10k_dir() -> Path:
    return require_fixture(MNIST_T10K)


@pytest.fixture
def book_weights_dir() -> Path:
    return require_fixture(BOOK_WEIGHTS)

"""kernels/measuring.py: the timing the kernels' measured choices share, and whether the cores
ran as usual meanwhile."""

import pytest

from layerwise.kernels import kept_choices, measuring

REAL_BLAS_SPEEDUP = measuring.blas_speedup  # conftest replaces it in every test


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv(kept_choices.CACHE_ENV_VAR, str(tmp_path))
    monkeypatch.setattr(kept_choices, "_memory", {})


def test_the_usual_speedup_is_the_largest_seen(cache):
    signature = kept_choices.machine_signature()
    assert measuring.cores_as_usual(signature, 2, 1.5) is None  # the first: kept as usual
    assert measuring.cores_as_usual(signature, 2, 1.9) is None  # larger: the new usual
    assert measuring.cores_as_usual(signature, 2, 1.5) is None  # within 0.75 of 1.9
    assert measuring.cores_as_usual(signature, 2, 1.2) == 1.9
    assert measuring.cores_as_usual(signature, 4, 1.2) is None  # another thread count: its own


def test_bracketed_reads_the_speedup_before_and_after_and_judges_the_lower(cache, monkeypatch):
    signature = kept_choices.machine_signature()
    readings = iter([1.9, 1.8, 1.9, 1.2, 1.1, 1.9])
    monkeypatch.setattr(measuring, "blas_speedup", lambda threads: next(readings))
    ran = []
    assert measuring.bracketed(signature, 2, lambda: ran.append(1) or "first") == ("first", 1.8, None)
    # slow after the measurement only: the lower reading counts
    assert measuring.bracketed(signature, 2, lambda: ran.append(1) or "second") == ("second", 1.2, 1.8)
    # slow before it only
    assert measuring.bracketed(signature, 2, lambda: ran.append(1) or "third") == ("third", 1.1, 1.8)
    assert ran == [1, 1, 1]


def test_blas_speedup_and_median_seconds_measure_for_real():
    assert 0.2 < REAL_BLAS_SPEEDUP(1) < 5  # one thread against one: about 1
    calls = []
    seconds = measuring.median_seconds(lambda: calls.append(1), 5)
    assert len(calls) == 6 and 0 <= seconds < 0.1  # one untimed call first

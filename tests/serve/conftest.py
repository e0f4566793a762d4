"""Fixtures of the web app's tests: the default served model (trained once per session, in
well under a second) and, once per test module, the app on it behind a TestClient."""

from __future__ import annotations

import pytest

from layerwise.serve import create_app, default_model


@pytest.fixture(scope="session")
def served():
    return default_model()


@pytest.fixture(scope="module")
def client(served):
    from starlette.testclient import TestClient

    with TestClient(create_app(served), base_url="http://127.0.0.1") as test_client:  # `with`: the app's lifespan runs
        yield test_client

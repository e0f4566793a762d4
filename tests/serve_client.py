"""Helpers for the web app's tests (tests/serve): requests that must be refused with a JSON
error naming what was wrong, and the check that the server still answers afterwards."""

from __future__ import annotations

import json

import numpy as np


def blank(height: int = 8, width: int = 8) -> list[list[float]]:
    return [[0.0] * width for _ in range(height)]


def stroke(height: int = 8, width: int = 8) -> list[list[float]]:
    """A vertical stroke, a plausible "1"."""
    image = np.zeros((height, width))
    image[1:-1, width // 2] = 1.0
    return image.tolist()


def assert_error(response, status: int, *words: str) -> str:
    """``response`` is a ``status`` refusal whose body is exactly {"error": message}, the
    message naming each of ``words``; returns the message."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and list(body) == ["error"], body
    message = body["error"]
    assert isinstance(message, str) and message.strip(), body
    for word in words:
        assert word in message, (word, message)
    return message


def assert_alive(client, height: int = 8, width: int = 8) -> dict:
    """The server still answers a good predict (after an error, a failure, a stopped run)."""
    response = client.post("/api/predict", json={"image": stroke(height, width)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert abs(sum(body["probabilities"]) - 1) < 1e-6
    return body


def sse_events(text: str) -> list[tuple[str, dict]]:
    """The (event, data) pairs of a text/event-stream body, in order. Every event has an id
    (how far a reconnecting browser got) except ``weights``, of which only the latest is kept."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        expected = {"event", "data"} if fields.get("event") == "weights" else {"event", "data", "id"}
        assert set(fields) == expected, block
        events.append((fields["event"], json.loads(fields["data"])))
    return events

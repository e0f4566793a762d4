"""``layerwise serve`` under concurrent load: the real server (``python -m layerwise serve FILE
--port 0`` in its own process) answers 200 predict requests sent at once over 127.0.0.1, every
one correctly. No timing is asserted (``python -m benchmarks.serve_predict`` measures speed)."""

from __future__ import annotations

import asyncio
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import numpy as np

from layerwise.datasets import load_digits
from layerwise.functional import softmax
from layerwise.io import load_checkpoint, save
from layerwise.models import TwoLayerNet

REPO = Path(__file__).resolve().parents[2]
REQUESTS = 200
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_S = 20.0


class _Server:
    """``layerwise serve ARGS --port 0`` in its own process; its output read on a thread, so
    every wait on it is bounded."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "layerwise", "serve", *args, "--port", "0"],
                                     cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def url(self) -> str:
        while True:
            line = self._lines.get(timeout=START_TIMEOUT_S)
            if line is None:
                raise AssertionError("the server exited before serving:\n" + "".join(self.output))
            if line.startswith("open http://"):
                return line.split()[1].rstrip("/")

    def stop(self) -> int:
        """Ctrl-C (SIGINT), as a user stops it; killed if it has not exited within STOP_TIMEOUT_S."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        self._reader.join(timeout=STOP_TIMEOUT_S)
        return self.proc.returncode


@contextmanager
def _serving(args: list[str]) -> Iterator[tuple[_Server, str]]:
    server = _Server(args)
    try:
        yield server, server.url()
    finally:
        server.stop()


async def _predict_all(url: str, images: np.ndarray) -> list[httpx2.Response | BaseException]:
    """Every image's POST /api/predict started at once, each on a connection of its own."""
    limits = httpx2.Limits(max_connections=len(images), max_keepalive_connections=len(images))
    async with httpx2.AsyncClient(base_url=url, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:
        requests = [client.post("/api/predict", json={"image": img.tolist()}) for img in images]
        return await asyncio.wait_for(asyncio.gather(*requests, return_exceptions=True), 3 * REQUEST_TIMEOUT_S)


def test_200_concurrent_predictions_all_succeed_with_the_models_answers(tmp_path: Path) -> None:
    # A seeded 64-50-10 float32 net in a model file: the server and this test hold the same weights.
    path = tmp_path / "digits-64-50-10.safetensors"
    save(TwoLayerNet(64, 50, 10, seed=3, dtype=np.float32), path,
         state={"dataset": "digits", "input_shape": [64], "classes": 10})
    model = load_checkpoint(path).model
    (x_train, _), (x_test, _) = load_digits(dtype=np.float32)
    images = np.concatenate([x_test, x_train])[:REQUESTS].reshape(REQUESTS, 8, 8)
    assert len(np.unique(images.reshape(REQUESTS, -1), axis=0)) == REQUESTS  # 200 distinct images

    with _serving([str(path)]) as (server, url):
        assert url.startswith("http://127.0.0.1:")
        responses = asyncio.run(_predict_all(url, images))
        after = httpx2.post(url + "/api/predict", json={"image": images[0].tolist()}, timeout=REQUEST_TIMEOUT_S)
        code = server.stop()

    failures = [f"request {k}: {r!r}" for k, r in enumerate(responses) if isinstance(r, BaseException)]
    failures += [f"request {k}: HTTP {r.status_code} {r.text[:200]}" for k, r in enumerate(responses)
                 if not isinstance(r, BaseException) and r.status_code != 200]
    assert not failures, f"{len(failures)} of {REQUESTS} requests failed:\n" + "\n".join(failures[:10])
    for k, (image, response) in enumerate(zip(images, responses, strict=True)):
        # The server runs one image at a time; so does the reference.
        expected = softmax(model.predict(image.reshape(1, 64)).astype(np.float64))[0]
        answer = response.json()
        np.testing.assert_allclose(answer["probabilities"], expected, rtol=0, atol=1e-6, err_msg=f"request {k}")
        assert answer["class"] == answer["top"][0]["class"] == int(np.argmax(expected)), f"request {k}"
    # Still serving after the burst, with the same answer; then stopped by Ctrl-C, cleanly.
    assert after.status_code == 200 and after.json()["probabilities"] == responses[0].json()["probabilities"]
    output = "".join(server.output)
    assert code == 0, output
    assert "Traceback" not in output and "ERROR" not in output, output

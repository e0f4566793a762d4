"""`layerwise serve` run as a user runs it: it prints the address, answers there, stops
cleanly on Ctrl-C; a taken port and a missing model file are clear errors; another --host
than the loopback is warned about. Every wait is bounded; requests go to 127.0.0.1 only."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

STARTUP = 60  # seconds to print the address (imports, and the default model's training)
STOP = 10  # seconds to stop after Ctrl-C


class Serve:
    """`python -m layerwise serve ARGS` with its output read line by line in threads."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "layerwise", "serve", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines: dict[str, queue.Queue] = {"stdout": queue.Queue(), "stderr": queue.Queue()}
        self.seen: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self.readers = [threading.Thread(target=self._read, args=(name,), daemon=True) for name in self.lines]
        for reader in self.readers:
            reader.start()

    def _read(self, name: str) -> None:
        for line in getattr(self.proc, name):
            self.lines[name].put(line)
        self.lines[name].put(None)

    def wait_for(self, pattern: str, stream: str = "stdout", timeout: float = STARTUP) -> re.Match:
        """The first line of ``stream`` matching ``pattern``."""
        while True:
            try:
                line = self.lines[stream].get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no line matching {pattern!r} within {timeout} s; {stream}: {self.seen[stream]}")
            if line is None:
                pytest.fail(f"{stream} ended without {pattern!r}: {self.seen[stream]}; exit {self.proc.poll()}")
            self.seen[stream].append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def finish(self, timeout: float = STOP) -> tuple[int, str, str]:
        """Wait for the exit; returns (exit status, all stdout, all stderr)."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"layerwise serve did not exit within {timeout} s")
        for reader in self.readers:
            reader.join(timeout)
        out = {}
        for name, q in self.lines.items():
            while True:
                try:
                    line = q.get_nowait()
                except queue.Empty:
                    break
                if line is not None:
                    self.seen[name].append(line)
            out[name] = "".join(self.seen[name])
        return code, out["stdout"], out["stderr"]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP)


@pytest.fixture
def serve():
    started = []

    def run(*args: str) -> Serve:
        started.append(Serve(*args))
        return started[-1]

    yield run
    for s in started:  # whatever a failed test left running
        s.kill()


def get(port: int, path: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.status, response.headers["content-type"], response.read()


def test_serve_prints_its_address_answers_and_stops_on_ctrl_c(serve):
    s = serve("--port", "0")
    s.wait_for(r"training the default model")
    port = int(s.wait_for(r"open http://127\.0\.0\.1:(\d+)/").group(1))
    assert any("serving the default model" in line for line in s.seen["stdout"])
    status, kind, page = get(port, "/")
    assert status == 200 and kind.startswith("text/html") and b"<html" in page.lower()
    status, kind, body = get(port, "/api/model")
    info = json.loads(body)
    assert status == 200 and kind == "application/json"
    assert info["architecture"] == "64-50-10" and info["dataset"] == "digits"
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/predict", method="POST",
                                     data=json.dumps({"image": [[0.0] * 8] * 8}).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert len(json.loads(response.read())["probabilities"]) == 10
    s.proc.send_signal(signal.SIGINT)
    code, out, err = s.finish()
    assert code == 0, err
    assert out.rstrip().endswith("layerwise serve: stopped")
    assert "Traceback" not in err and "warning" not in err


def test_a_model_file_is_served(serve, tmp_path):
    from layerwise.cli import main

    assert main(["train", "--epochs", "1", "--hidden", "8", "--quiet", "--out", str(tmp_path / "run")]) == 0
    model = tmp_path / "run" / "model.safetensors"
    s = serve(str(model), "--port", "0")
    port = int(s.wait_for(r"open http://127\.0\.0\.1:(\d+)/").group(1))
    assert any(f"serving {model} (64-8-10, 8×8 images)" in line for line in s.seen["stdout"])
    info = json.loads(get(port, "/api/model")[2])
    assert info["architecture"] == "64-8-10" and info["source"] == str(model)
    s.proc.send_signal(signal.SIGINT)
    assert s.finish()[0] == 0


def test_a_taken_port_is_a_clear_error(serve):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code, out, err = serve("--port", str(port)).finish(STARTUP)
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err and "choose another --port" in err
    assert "Traceback" not in err and "training" not in out  # refused before any work


def test_another_host_is_warned_about(serve):
    s = serve("--host", "0.0.0.0", "--port", "0")
    warning = s.wait_for(r"warning: listening on 0\.0\.0\.0", stream="stderr")
    assert "other machines can reach this app" in warning.string and "127.0.0.1" in warning.string
    port = int(s.wait_for(r"open http://0\.0\.0\.0:(\d+)/").group(1))
    assert get(port, "/api/model")[0] == 200  # reached through the loopback only
    s.proc.send_signal(signal.SIGINT)
    code, out, _ = s.finish()
    assert code == 0 and "layerwise serve: stopped" in out


def test_a_bad_port_or_host_is_named(serve):
    code, _, err = serve("--port", "99999").finish(STARTUP)
    assert code == 2 and "--port" in err and "0 to 65535" in err and "'99999'" in err
    code, _, err = serve("--host", "192.0.2.1", "--port", "0").finish(STARTUP)  # TEST-NET-1: not this machine's
    assert code == 2 and "cannot listen on 192.0.2.1:0" in err and "Traceback" not in err


def test_a_missing_model_file_names_it(serve, tmp_path):
    missing = tmp_path / "nowhere" / "model.safetensors"
    code, out, err = serve(str(missing), "--port", "0").finish(STARTUP)
    assert code == 1
    assert str(missing) in err and "layerwise serve: error" in err and "Traceback" not in err
    assert "open http" not in out


def test_a_model_file_serve_cannot_show_is_refused(serve, tmp_path):
    import layerwise as lw

    path = lw.save(lw.TwoLayerNet(60, 5, 10, seed=0), tmp_path / "flat.safetensors", state={"input_shape": [60]})
    code, _, err = serve(str(path), "--port", "0").finish(STARTUP)
    assert code == 2 and "60 inputs, not a square image" in err and str(path) in err


def test_ctrl_c_stops_while_a_page_follows_a_training_run(serve):
    # Regression: uvicorn waits for open connections before it stops, and the Train page's event
    # stream stays open until its run ends (hours for a long one): Ctrl-C must end both.
    s = serve("--port", "0")
    port = int(s.wait_for(r"open http://127\.0\.0\.1:(\d+)/")[1])
    body = json.dumps({"epochs": 100, "batch_size": 1}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/train", body,
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
    stream = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/train/events", timeout=10)
    try:
        assert stream.readline().startswith(b"event: ")  # the stream is live
        s.proc.send_signal(signal.SIGINT)
        code, out, err = s.finish()
    finally:
        stream.close()
    assert code == 0, err
    assert "layerwise serve: stopped" in out
    assert "Traceback" not in err and "ERROR" not in err


def test_requests_from_other_sites_and_other_host_names_are_refused(serve):
    s = serve("--port", "0")
    port = int(s.wait_for(r"open http://127\.0\.0\.1:(\d+)/")[1])

    def status(path: str, headers: dict, data: bytes | None = None) -> tuple[int, str]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data, headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    # A page on another site posting to the app (any page the user opens could try).
    code, text = status("/api/graphs/apple", {"Origin": "http://evil.example", "Content-Type": "text/plain"}, b"{}")
    assert code == 403 and "another site" in json.loads(text)["error"]
    # DNS rebinding: the browser sends the attacker's host name.
    code, text = status("/api/model", {"Host": "evil.example"})
    assert code == 403 and "evil.example" in json.loads(text)["error"]
    # The page itself (same origin), and scripts (no Origin), are served.
    assert status("/api/graphs/apple", {"Origin": f"http://127.0.0.1:{port}"}, b"{}")[0] == 201
    assert status("/api/model", {"Host": f"localhost:{port}"})[0] == 200
    s.proc.send_signal(signal.SIGINT)
    assert s.finish()[0] == 0

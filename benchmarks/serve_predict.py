"""Serve: one prediction's round trip through ``layerwise serve``, its parts, and 200 at once.

    python -m benchmarks.serve_predict                         # both models (~15 s)
    python -m benchmarks.serve_predict --requests 3000 --json results.json
    python -m benchmarks.serve_predict --models mnist --connections 200

For each model the real server runs in its own process (``python -m layerwise serve [FILE]
--port 0``, bound to 127.0.0.1) and is stopped with SIGINT (Ctrl-C) at the end:

  mnist    a 784-50-10 TwoLayerNet (float32) in a model file written by ``layerwise.io.save``;
           trained briefly on part of MNIST's test set when ``../shared/datasets/mnist-t10k``
           is here (``LAYERWISE_SHARED`` overrides ``../shared``), else left at its seeded
           random initialisation (the time is the same; the answers mean nothing)
  digits   the default model (no MODEL_FILE): 64-50-10, trained by the server at start on the
           bundled 8×8 digits

Round trip: ``POST /api/predict`` with one image (28×28 or 8×8, cycling through real images)
from httpx2 on one keep-alive connection, timed from encoding the request to decoding the
response, ``--requests`` times after ``--warmup``; every answer is checked against the same
model in this process. The issue's budget is 50 ms for the 784-50-10 net.

Parts, in this process on the same model and images (median of ``--part-reps``): the client's
JSON encoding of the request and decoding of the response, the server's parsing of the body
(``json_body`` + ``image_field``), ``Explainer.explain`` (the compute), building and encoding
the response (what ``app.predict`` does after ``explain``), and the whole Starlette app called
in-process (ASGI, no socket: parsing, the thread-pool hop, explain, encoding). What the round
trip adds to that is HTTP over the loopback: uvicorn, the socket, httpx2.

Concurrency: 200 requests (``--concurrent``) started at once from httpx2's AsyncClient with at
most ``--connections`` connections (one burst per value, each on fresh connections), every
answer checked: status 200, the top class and the probabilities (to 1e-6) of the same model
predicting that image in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from .run import ROOT, _cpu_model, wait_until_idle
from .timing import median_seconds

BUDGET_MS = 50.0
PROBABILITY_TOLERANCE = 1e-6
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
REQUEST_TIMEOUT_S = 30.0
SHARED = Path(os.environ.get("LAYERWISE_SHARED", ROOT.parent / "shared"))
MNIST_T10K = SHARED / "datasets" / "mnist-t10k"
TRAIN_IMAGES = 8000  # of the 10,000 test images: the rest measure the accuracy
TRAIN_EPOCHS = 5


# -- the models and images ---------------------------------------------------------------------

@dataclass
class Subject:
    """One served model: how to start its server, the same model in this process, the images."""

    key: str
    architecture: str
    serve_args: list[str]
    served: Any  # a ServedModel with the server's weights, in this process
    images: np.ndarray  # (N, height, width) float32 in [0, 1]
    note: str


def _mnist_images() -> tuple[np.ndarray, np.ndarray] | None:
    from layerwise.datasets import read_idx

    images, labels = MNIST_T10K / "t10k-images-idx3-ubyte.gz", MNIST_T10K / "t10k-labels-idx1-ubyte.gz"
    if not (images.is_file() and labels.is_file()):
        return None
    return (read_idx(images).astype(np.float32) / np.float32(255)), read_idx(labels).astype(np.int64)


def mnist_subject(directory: Path) -> Subject:
    """A 784-50-10 TwoLayerNet model file, trained briefly on MNIST's test set when it is here."""
    from layerwise.io import save
    from layerwise.models import TwoLayerNet
    from layerwise.optim import make_optimizer
    from layerwise.serve import load_served
    from layerwise.train import Trainer

    model = TwoLayerNet(784, 50, 10, seed=0, dtype=np.float32)
    data = _mnist_images()
    if data is None:
        note = f"random initialisation (seed 0): no MNIST at {MNIST_T10K}"
        images = np.random.default_rng(0).random((1000, 28, 28), dtype=np.float32)
    else:
        x, t = data
        flat = x.reshape(len(x), -1)
        trainer = Trainer(model, make_optimizer("adam", lr=0.01), flat[:TRAIN_IMAGES], t[:TRAIN_IMAGES],
                          flat[TRAIN_IMAGES:], t[TRAIN_IMAGES:], epochs=TRAIN_EPOCHS, batch_size=100, seed=0,
                          log=None, progress=False)
        accuracy = trainer.fit().epochs[-1]["test_acc"]
        note = (f"trained {TRAIN_EPOCHS} epochs (Adam 0.01) on {TRAIN_IMAGES:,} MNIST test images: "
                f"{accuracy:.1%} on the other {len(x) - TRAIN_IMAGES:,}")
        images = x[TRAIN_IMAGES:]
    path = directory / "mnist-784-50-10.safetensors"
    save(model, path, state={"dataset": "mnist", "input_shape": [784], "classes": 10})
    return Subject("mnist", "784-50-10", [str(path)], load_served(path), images, note)


def digits_subject() -> Subject:
    """The server's default model, trained here the same way (seeded) to check its answers."""
    from layerwise.datasets import load_digits
    from layerwise.serve import default_model

    _, (x_test, _) = load_digits(dtype=np.float32)
    return Subject("digits", "64-50-10", [], default_model(), x_test.reshape(-1, 8, 8),
                   "the default model (no MODEL_FILE), trained by the server at start; the same seeded "
                   "training in this process gives the reference answers")


def expected_probabilities(model: Any, images: np.ndarray) -> np.ndarray:
    """softmax of ``model.predict`` for each image alone (batch of 1, as the server runs it)."""
    from layerwise.functional import softmax

    flat = images.reshape(len(images), 1, -1)
    return np.concatenate([softmax(model.predict(x).astype(np.float64)) for x in flat])


# -- the server --------------------------------------------------------------------------------

class Server:
    """``python -m layerwise serve ARGS --port 0`` in a process of its own, until ``stop``."""

    def __init__(self, serve_args: list[str]) -> None:
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "layerwise", "serve", *serve_args, "--port", "0"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.stderr, text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.output: list[str] = []
        self.url = self._wait_for_url()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                self.stop()
                raise RuntimeError(f"the server printed no URL within {START_TIMEOUT_S:.0f} s") from None
            if line is None:
                self.stop()
                raise RuntimeError(f"the server exited before serving: {''.join(self.output)}{self.stderr_text()}")
            self.output.append(line)
            if line.startswith("open http://"):
                return line.split()[1].rstrip("/")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process (all its threads) so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def stop(self) -> dict[str, Any]:
        """Ctrl-C (SIGINT), as a user stops it; killed if it has not exited in STOP_TIMEOUT_S."""
        started = time.perf_counter()
        killed = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                killed = True
                self.proc.kill()
                self.proc.wait(timeout=STOP_TIMEOUT_S)
        seconds = time.perf_counter() - started
        while (line := self.lines.get(timeout=STOP_TIMEOUT_S)) is not None:
            self.output.append(line)
        return {"exit_code": self.proc.returncode, "killed": killed, "stop_s": seconds,
                "stdout": "".join(self.output), "stderr": self.stderr_text()}


# -- measurements ------------------------------------------------------------------------------

def distribution(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"n": len(ms), "median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "p99": float(np.percentile(a, 99)), "max": float(a.max()), "min": float(a.min())}


def _request_body(image: np.ndarray) -> dict:
    return {"image": image.tolist()}


def _check(data: dict, expected: np.ndarray) -> float:
    """|Δ| of the answer's probabilities from ``expected``; inf if the top class differs."""
    p = np.asarray(data["probabilities"], dtype=np.float64)
    if data["class"] != int(np.argmax(expected)) or p.shape != expected.shape:
        return float("inf")
    return float(np.abs(p - expected).max())


def round_trips(server: Server, images: np.ndarray, expected: np.ndarray, n: int, warmup: int) -> dict[str, Any]:
    """``n`` sequential predictions on one keep-alive connection, after ``warmup``."""
    import httpx2

    bodies = [_request_body(img) for img in images]
    times, worst = [], 0.0
    with httpx2.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_S) as client:
        for i in range(warmup):
            client.post("/api/predict", json=bodies[i % len(bodies)]).raise_for_status()
        cpu_server, cpu_client = server.cpu_seconds(), time.process_time()
        started = time.perf_counter()
        for i in range(n):
            k = i % len(bodies)
            t0 = time.perf_counter()
            response = client.post("/api/predict", json=bodies[k])
            data = response.json()
            times.append((time.perf_counter() - t0) * 1e3)
            if response.status_code != 200:
                raise RuntimeError(f"request {i}: HTTP {response.status_code}: {response.text[:300]}")
            worst = max(worst, _check(data, expected[k]))
        wall = time.perf_counter() - started
        cpu_server, cpu_client = server.cpu_seconds() - cpu_server, time.process_time() - cpu_client
        request_bytes = len(json.dumps(bodies[0]))
        response_bytes = len(response.content)
    return {**distribution(times), "times_ms": times, "max_abs_diff": worst,
            "server_cpu_ms_per_request": 1e3 * cpu_server / n, "client_cpu_ms_per_request": 1e3 * cpu_client / n,
            "wall_ms_per_request": 1e3 * wall / n, "request_bytes": request_bytes, "response_bytes": response_bytes,
            "http_version": response.http_version}


def _median_us(fn: Callable[[], Any], reps: int) -> float:
    return median_seconds(fn, reps, warmup=min(reps, 50)) * 1e6


def parts(served: Any, image: np.ndarray, reps: int) -> dict[str, float]:
    """Median µs of each part of a prediction, in this process on the same model and image."""
    from starlette.responses import JSONResponse

    from layerwise.serve import create_app
    from layerwise.serve.explain import Explainer
    from layerwise.serve.payloads import image_field, json_body, prediction_json

    height, width = served.image_size
    explainer = Explainer(served)
    image = image.astype(np.float64)
    body = _request_body(image)
    raw = json.dumps(body).encode()
    result = explainer.explain(image)

    def payload() -> dict:  # what app.predict builds from the explanation
        return prediction_json(result, served.labels)

    built = payload()
    response_body = JSONResponse(built).body
    return {
        "client_encode_request": _median_us(lambda: json.dumps(body).encode(), reps),
        "server_parse_request": _median_us(lambda: image_field(json_body(raw), height, width), reps),
        "explain": _median_us(lambda: explainer.explain(image), reps),
        "server_build_response": _median_us(payload, reps),
        "server_encode_response": _median_us(lambda: JSONResponse(built).body, reps),
        "client_decode_response": _median_us(lambda: json.loads(response_body), reps),
        "asgi_app_in_process": _asgi_median_us(create_app(served), raw, reps),
    }


def _asgi_median_us(app: Any, raw: bytes, reps: int) -> float:
    """The whole app (Starlette, its thread-pool hop, explain, encoding) called without a socket."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/api/predict", "raw_path": b"/api/predict", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(raw)).encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }

    async def one() -> None:
        messages = [{"type": "http.request", "body": raw, "more_body": False}]
        statuses = []

        async def receive() -> dict:
            if messages:
                return messages.pop()
            await asyncio.sleep(3600)  # the client never disconnects
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        await asyncio.wait_for(app(scope, receive, send), REQUEST_TIMEOUT_S)
        if statuses != [200]:
            raise RuntimeError(f"the in-process app answered {statuses}")

    async def all_reps() -> float:
        for _ in range(min(reps, 50)):
            await one()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            await one()
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1e6

    return asyncio.run(all_reps())


def burst(server: Server, images: np.ndarray, expected: np.ndarray, connections: int) -> dict[str, Any]:
    """All of ``images`` requested at once (at most ``connections`` open), each answer checked."""
    import httpx2

    async def run() -> tuple[list[tuple[int | None, float, float, str]], float]:
        limits = httpx2.Limits(max_connections=connections, max_keepalive_connections=connections)
        async with httpx2.AsyncClient(base_url=server.url, limits=limits, timeout=REQUEST_TIMEOUT_S) as client:

            async def one(k: int) -> tuple[int | None, float, float, str]:
                t0 = time.perf_counter()
                try:
                    response = await client.post("/api/predict", json=_request_body(images[k]))
                    data = response.json() if response.status_code == 200 else None
                except httpx2.HTTPError as exc:
                    return None, (time.perf_counter() - t0) * 1e3, float("inf"), f"{type(exc).__name__}: {exc}"
                ms = (time.perf_counter() - t0) * 1e3
                if data is None:
                    return response.status_code, ms, float("inf"), response.text[:300]
                return response.status_code, ms, _check(data, expected[k]), ""

            started = time.perf_counter()
            results = await asyncio.wait_for(asyncio.gather(*(one(k) for k in range(len(images)))),
                                             4 * REQUEST_TIMEOUT_S)
            return results, time.perf_counter() - started

    cpu_server, cpu_client = server.cpu_seconds(), time.process_time()
    results, wall = asyncio.run(run())
    cpu_server, cpu_client = server.cpu_seconds() - cpu_server, time.process_time() - cpu_client
    ok = [r for r in results if r[0] == 200]
    correct = [r for r in ok if r[2] <= PROBABILITY_TOLERANCE]
    errors = sorted({r[3] for r in results if r[3]})
    return {"requests": len(images), "connections": connections, "status_200": len(ok), "correct": len(correct),
            "failed": len(results) - len(ok), "errors": errors[:5], "wall_s": wall,
            "throughput_per_s": len(images) / wall, "max_abs_diff": max(r[2] for r in results),
            "server_cpu_s": cpu_server, "client_cpu_s": cpu_client, **distribution([r[1] for r in results]),
            "times_ms": [r[1] for r in results]}


def measure(subject: Subject, args: argparse.Namespace) -> dict[str, Any]:
    expected = expected_probabilities(subject.served.model, subject.images)
    batch = subject.images[: args.concurrent]
    print(f"[{time.strftime('%H:%M:%S')}] {subject.key}: starting the server", file=sys.stderr, flush=True)
    started = time.perf_counter()
    server = Server(subject.serve_args)
    try:
        ready_s = time.perf_counter() - started
        busy = wait_until_idle(args.wait_idle, verbose=False)  # other processes' share of the CPUs
        print(f"[{time.strftime('%H:%M:%S')}] {subject.key}: round trips", file=sys.stderr, flush=True)
        sequential = round_trips(server, subject.images, expected, args.requests, args.warmup)
        bursts = []
        for connections in args.connections:
            print(f"[{time.strftime('%H:%M:%S')}] {subject.key}: {len(batch)} at once, "
                  f"{connections} connections", file=sys.stderr, flush=True)
            bursts.append(burst(server, batch, expected[: len(batch)], connections))
    finally:
        stopped = server.stop()
    print(f"[{time.strftime('%H:%M:%S')}] {subject.key}: parts in-process", file=sys.stderr, flush=True)
    return {"key": subject.key, "architecture": subject.architecture, "note": subject.note,
            "serve_command": " ".join(["python -m layerwise serve", *subject.serve_args, "--port 0"]),
            "server_ready_s": ready_s, "cpus_busy_before": busy, "loadavg": os.getloadavg()[0],
            "round_trip": sequential,
            "parts_us": parts(subject.served, subject.images[0], args.part_reps),
            "bursts": bursts, "server": stopped}


# -- report ------------------------------------------------------------------------------------

PART_NAMES = {
    "client_encode_request": "client: request to JSON (json.dumps)",
    "server_parse_request": "server: parse body + check image (json_body, image_field)",
    "explain": "server: compute (Explainer.explain: forward, backward to the pixels)",
    "server_build_response": "server: build the response (tolist, activations)",
    "server_encode_response": "server: JSON-encode the response (JSONResponse)",
    "client_decode_response": "client: response from JSON (json.loads)",
}


def report(raw: dict[str, Any]) -> str:
    lines = [
        f"Command: `{raw['command']}`",
        f"Machine: {raw['cpu']}, {raw['cpus']} CPUs; "
        + ", ".join(f"{name} {v}" for name, v in raw["versions"].items()) + ".",
        "",
        f"**Round trip** of `POST /api/predict`, one keep-alive connection (httpx2), {raw['requests']:,} requests "
        f"after {raw['warmup']} warm-up, encoding the request to decoding the response:",
        "",
        "| model | image | median ms | p90 ms | p99 ms | max ms | median / 50 ms budget | answers agree (max abs Δp) |",
        "|---|---|--:|--:|--:|--:|--:|---|",
    ]
    for r in raw["results"]:
        rt, side = r["round_trip"], r["architecture"].split("-")[0]
        image = "28×28" if side == "784" else "8×8"
        agree = "yes" if rt["max_abs_diff"] <= PROBABILITY_TOLERANCE else "**no**"
        lines.append(f"| {r['architecture']} ({r['key']}) | {image} | {rt['median']:.2f} | {rt['p90']:.2f} | "
                     f"{rt['p99']:.2f} | {rt['max']:.2f} | {rt['median'] / BUDGET_MS:.3f} | "
                     f"{agree} ({rt['max_abs_diff']:.1e}) |")
    lines += ["", "**Where the time goes** (parts: median µs in this process on the same model and image; "
              "CPU: per request during the round trips above):", "",
              "| part | " + " | ".join(f"{r['architecture']} µs" for r in raw["results"]) + " |",
              "|---|" + "--:|" * len(raw["results"])]

    def row(name: str, values: list[float]) -> None:
        lines.append(f"| {name} | " + " | ".join(f"{v:.0f}" for v in values) + " |")

    for key, name in PART_NAMES.items():
        row(name, [r["parts_us"][key] for r in raw["results"]])
    row("server's parts, summed", [sum(v for k, v in r["parts_us"].items() if k.startswith(("server", "explain")))
                                   for r in raw["results"]])
    row("whole app in-process (ASGI call, thread-pool hop included; no socket)",
        [r["parts_us"]["asgi_app_in_process"] for r in raw["results"]])
    row("**round trip, median**", [1e3 * r["round_trip"]["median"] for r in raw["results"]])
    row("round trip − app in-process − client JSON (HTTP over loopback: uvicorn, socket, httpx2)",
        [1e3 * r["round_trip"]["median"] - r["parts_us"]["asgi_app_in_process"]
         - r["parts_us"]["client_encode_request"] - r["parts_us"]["client_decode_response"]
         for r in raw["results"]])
    row("server process CPU per request", [1e3 * r["round_trip"]["server_cpu_ms_per_request"]
                                           for r in raw["results"]])
    row("client process CPU per request", [1e3 * r["round_trip"]["client_cpu_ms_per_request"]
                                           for r in raw["results"]])
    lines.append("| request / response size (bytes) | " + " | ".join(
        f"{r['round_trip']['request_bytes']:,} / {r['round_trip']['response_bytes']:,}" for r in raw["results"]) + " |")

    lines += ["", f"**Concurrency**: {raw['concurrent']} requests started at once (httpx2 AsyncClient, asyncio), "
              "distinct images, each answer checked against the same model predicting in this process "
              f"(status 200, top class, probabilities to {PROBABILITY_TOLERANCE:g}):", "",
              "| model | connections | HTTP 200 | correct | failed | wall s | requests/s | median ms | p90 ms | "
              "p99 ms | max ms | server CPU s | client CPU s |",
              "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for r in raw["results"]:
        for b in r["bursts"]:
            lines.append(f"| {r['architecture']} | {b['connections']} | {b['status_200']}/{b['requests']} | "
                         f"{b['correct']}/{b['requests']} | {b['failed']} | {b['wall_s']:.3f} | "
                         f"{b['throughput_per_s']:.0f} | {b['median']:.1f} | {b['p90']:.1f} | {b['p99']:.1f} | "
                         f"{b['max']:.1f} | {b['server_cpu_s']:.2f} | {b['client_cpu_s']:.2f} |")
    lines += ["", "Models:"]
    for r in raw["results"]:
        s = r["server"]
        clean = s["exit_code"] == 0 and not s["killed"] and "Traceback" not in s["stderr"]
        errors = "" if clean else f", with errors: {s['stderr'][-500:]!r}"
        lines.append(f"- {r['architecture']}: {r['note']}. `{r['serve_command']}` printed its URL "
                     f"{r['server_ready_s']:.1f} s after it started and stopped on SIGINT in {s['stop_s']:.2f} s "
                     f"(exit code {s['exit_code']}{', killed' if s['killed'] else ''}{errors}); CPUs "
                     f"{100 * r['cpus_busy_before']:.0f}% busy just before its round trips.")
    return "\n".join(lines)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("numpy", "layerwise", "starlette", "uvicorn", "httpx2"):
        try:
            out[name] = version(name)
        except Exception:  # only for the report
            out[name] = "?"
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serve_predict", description=__doc__.split("\n")[0])
    p.add_argument("--models", default="mnist,digits", help="comma-separated subset of mnist, digits")
    p.add_argument("--requests", type=int, default=1000, help="timed sequential round trips per model")
    p.add_argument("--warmup", type=int, default=100, help="untimed round trips first")
    p.add_argument("--part-reps", type=int, default=1000, help="repetitions of each in-process part (median)")
    p.add_argument("--concurrent", type=int, default=200, help="requests started at once")
    p.add_argument("--connections", default="200,50",
                   help="comma-separated: at most this many connections, one burst per value")
    p.add_argument("--wait-idle", type=float, default=30.0, metavar="SECONDS",
                   help="before the round trips wait up to SECONDS for the CPUs to go idle")
    p.add_argument("--json", type=Path, help="also write the raw numbers to this file")
    p.add_argument("--report", type=Path, help="print the tables of a run saved with --json")
    args = p.parse_args(argv)
    args.models = args.models.split(",")
    unknown = [m for m in args.models if m not in ("mnist", "digits")]
    if unknown:
        p.error(f"unknown model {unknown[0]!r}; choose from mnist, digits")
    try:
        args.connections = [int(c) for c in args.connections.split(",")]
    except ValueError:
        p.error("--connections takes whole numbers, e.g. 200,50")
    if min(args.requests, args.part_reps, args.concurrent, *args.connections) < 1 or args.warmup < 0:
        p.error("--requests, --part-reps, --concurrent and --connections must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report is not None:
        print(report(json.loads(args.report.read_text())))
        return 0
    raw: dict[str, Any] = {
        "command": " ".join(["python -m benchmarks.serve_predict", *(sys.argv[1:] if argv is None else argv)]),
        "cpu": _cpu_model(), "cpus": os.cpu_count(), "versions": _versions(), "requests": args.requests,
        "warmup": args.warmup, "concurrent": args.concurrent, "budget_ms": BUDGET_MS, "results": [],
    }
    with tempfile.TemporaryDirectory(prefix="serve-predict-") as scratch:
        for key in args.models:
            subject = mnist_subject(Path(scratch)) if key == "mnist" else digits_subject()
            if len(subject.images) < args.concurrent:
                raise SystemExit(f"{key}: only {len(subject.images)} images for --concurrent {args.concurrent}")
            raw["results"].append(measure(subject, args))
            if args.json:
                args.json.write_text(json.dumps(raw, indent=1))
    print(report(raw))
    failed = sum(b["requests"] - b["correct"] for r in raw["results"] for b in r["bursts"])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

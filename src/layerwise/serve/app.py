"""The web app: Starlette routes over the served model, the step-through sessions and the
training slot. The page (``static/``) is plain HTML, CSS and JavaScript, no build step.

Routes (JSON unless said otherwise; the README documents them):

- ``GET /?lang=en|ko|ja``: the page, in the language asked for, remembered in a cookie, or
  else the browser's (``Accept-Language``; see ``i18n``). ``GET /static/...``: its files.
- ``GET /api/model``: the served model (architecture, input size, class labels, source).
- ``POST /api/predict``: ``{"image": rows, "class": k?}`` -> probabilities, top 3, the
  input gradient of class k's score (default: the top class), each layer's activations.
- ``GET /api/images?start=&count=``: the model's test images, for choosing a mini-batch.
- ``GET /api/graphs``; ``POST /api/graphs/{name}``: a new step-through session.
- ``GET /api/sessions/{id}``; ``POST /api/sessions/{id}/forward|backward|reset``;
  ``GET /api/sessions/{id}/nodes/{node}?full=1``; ``POST /api/sessions/{id}/check``.
- ``GET /api/train``; ``POST /api/train``; ``POST /api/train/stop``;
  ``GET /api/train/events`` (server-sent events); ``GET /api/train/model`` (the model file).

Every refusal is a 4xx with ``{"error": "..."}`` naming the field or value; a body over
``MAX_BODY`` bytes is refused while it is read.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Collection
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import InputError
from .explain import Explainer
from .i18n import COOKIE, LANGUAGES, catalogue, choose, render_page
from .model import ServedModel
from .payloads import RequestError, image_field, int_field, json_body, prediction_json
from .sessions import GRAPHS, MAX_BATCH, Sessions
from .training import Training

__all__ = ["LOOPBACK_HOSTS", "MAX_BODY", "create_app"]

MAX_BODY = 1_000_000  # bytes: a 28×28 image is ~10 kB of JSON
EVENT_POLL_SECONDS = 0.1


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


async def _body(request: Request, optional: bool = False) -> dict:
    """The JSON object in the request body, read up to MAX_BODY bytes and no further; with
    ``optional``, an empty body is an empty object (every field has a default)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise RequestError(f"the request body is {int(declared):,} bytes; the limit is {MAX_BODY:,}", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise RequestError(f"the request body is over the limit of {MAX_BODY:,} bytes", 413)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if optional and not raw.strip():
        return {}
    return json_body(raw)


class _ThisMachineOnly:
    """Refuses, with a JSON 403, a request whose Host is not one this server answers to (a DNS
    rebinding page would name its own host) and any cross-site request that changes state (a
    POST or DELETE whose Origin is another site: any web page the user opens could send one).
    Scripts and curl send no Origin and are not affected."""

    def __init__(self, app: Any, hosts: Collection[str]) -> None:
        self.app, self.hosts = app, {h.lower() for h in hosts}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        name = urlsplit(f"//{host}").hostname or ""
        problem = None
        if "*" not in self.hosts and name.lower() not in self.hosts:
            problem = f"the Host header {host!r} is not this server's ({', '.join(sorted(self.hosts))})"
        origin = headers.get("origin")
        if problem is None and origin is not None and scope["method"] not in ("GET", "HEAD") \
                and urlsplit(origin).netloc.lower() != host.lower():
            problem = f"a {scope['method']} from another site ({origin}) is refused"
        if problem is None:
            return await self.app(scope, receive, send)
        await JSONResponse({"error": problem}, status_code=403)(scope, receive, send)


#: The names 127.0.0.1 answers to.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def create_app(served: ServedModel, hosts: Collection[str] = LOOPBACK_HOSTS) -> Starlette:
    """The web app for ``served``, answering requests addressed to ``hosts`` (``"*"``: any)."""
    explainer = Explainer(served)
    sessions = Sessions(served)
    training = Training()
    stopping = threading.Event()
    height, width = served.image_size
    classes = len(served.labels)
    template = resources.files(__package__).joinpath("static", "index.html").read_text(encoding="utf-8")
    pages = {lang: render_page(template, lang) for lang in LANGUAGES}

    async def index(request: Request) -> Response:
        asked = request.query_params.get("lang")
        if asked is not None and asked not in LANGUAGES:
            raise RequestError(f"lang: no language {asked!r}; choose from {', '.join(LANGUAGES)}")
        lang = choose(asked, request.cookies.get(COOKIE), request.headers.get("accept-language"))
        response = HTMLResponse(pages[lang], headers={"Content-Language": lang, "Vary": "Accept-Language, Cookie"})
        if asked is not None:  # the switch on the page: remembered for the next visit
            response.set_cookie(COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax")
        return response

    async def model_info(request: Request) -> Response:
        return _json({
            "architecture": served.architecture, "source": served.source, "trained": served.trained,
            "dataset": served.dataset,
            "input_shape": list(served.sample_shape), "height": height, "width": width,
            "labels": list(served.labels), "dtype": str(served.model.dtype),
            "layers": explainer.labels,
        })

    async def predict(request: Request) -> Response:
        body = await _body(request)
        image = image_field(body, height, width)
        chosen = int_field(body, "class", 0, classes - 1, -1)
        result = await run_in_threadpool(explainer.explain, image, None if chosen < 0 else chosen)
        return _json(prediction_json(result, served.labels))

    async def images(request: Request) -> Response:
        try:
            x, t = await run_in_threadpool(served.test_images)
        except InputError as exc:  # why there are none (the data set is not on this machine)
            raise RequestError(str(exc), 409) from None
        query = _query_ints(dict(request.query_params), ("start", "count"))
        start = int_field(query, "start", 0, max(len(x) - 1, 0), 0)
        count = int_field(query, "count", 1, 100, 24)
        part = slice(start, min(start + count, len(x)))
        return _json({"total": len(x), "start": start, "height": height, "width": width,
                      "images": [img.astype(np.float64).round(4).tolist() for img in x[part]],
                      "labels": [int(k) for k in t[part]], "max_batch": MAX_BATCH})

    async def graphs(request: Request) -> Response:
        asked = request.query_params.get("lang")
        if asked is not None and asked not in LANGUAGES:
            raise RequestError(f"lang: no language {asked!r}; choose from {', '.join(LANGUAGES)}")
        words = catalogue(choose(asked, request.cookies.get(COOKIE), request.headers.get("accept-language")))
        response = _json({"graphs": [{"name": k, "title": words[f"graph.{k}"]} for k in GRAPHS],
                          "max_batch": MAX_BATCH})
        response.headers["Vary"] = "Accept-Language, Cookie"
        return response

    async def new_session(request: Request) -> Response:
        name = request.path_params["name"]
        body = await _body(request, optional=name != "network")  # a body sent to any graph is read
        session = await run_in_threadpool(sessions.create, name, body)
        return _json(await run_in_threadpool(session.state), 201)

    async def session_state(request: Request) -> Response:
        session = sessions.get(request.path_params["sid"])
        return _json(await run_in_threadpool(session.state))

    async def step(request: Request) -> Response:
        session = sessions.get(request.path_params["sid"])
        return _json(await run_in_threadpool(session.step, request.path_params["step"]))

    async def node(request: Request) -> Response:
        session = sessions.get(request.path_params["sid"])
        full = request.query_params.get("full", "0") in ("1", "true", "yes")
        return _json(await run_in_threadpool(session.node, request.path_params["node"], full))

    async def check(request: Request) -> Response:
        session = sessions.get(request.path_params["sid"])
        return _json(await run_in_threadpool(session.check))

    async def delete_session(request: Request) -> Response:
        sessions.delete(request.path_params["sid"])
        return _json({"deleted": request.path_params["sid"]})

    def run_state() -> dict:
        run = training.run
        state: dict[str, Any] = {"options": training.options(), "run": None}
        if run is not None:
            state["run"] = {"number": run.number, "status": run.status, "error": run.error,
                            "settings": run.public_settings(), "events": len(run.events)}
        return state

    async def train_state(request: Request) -> Response:
        return _json(await run_in_threadpool(run_state))

    async def train_start(request: Request) -> Response:
        body = await _body(request)
        run = await run_in_threadpool(training.start, body)
        return _json({"run": run.number, "status": run.status, "settings": run.public_settings()}, 202)

    async def train_stop(request: Request) -> Response:
        run = training.stop()
        return _json({"run": run.number, "status": "stopping"})

    async def train_events(request: Request) -> Response:
        run = training.run
        if run is None:
            raise RequestError("no run has been started", 404)

        # A browser that reconnects says how far it got: those events are not sent twice.
        last_id = request.headers.get("last-event-id", "")
        resume = int(last_id) if last_id.isascii() and last_id.isdigit() and len(last_id) < 10 else 0

        async def stream() -> AsyncIterator[str]:
            sent, weights_sent = min(resume, len(run.events)), 0

            def new_weights() -> str:
                # Only the latest weights are kept and sent: a grid every half second would
                # otherwise pile up megabytes over a long run.
                nonlocal weights_sent
                version, weights = run.weights
                if weights is None or version == weights_sent:
                    return ""
                weights_sent = version
                return f"event: weights\ndata: {json.dumps(weights)}\n\n"

            while True:
                events = run.events
                while sent < len(events):
                    event = events[sent]
                    if event["event"] == "finished":
                        yield new_weights()  # the final weights before the end
                    sent += 1
                    yield f"event: {event['event']}\ndata: {json.dumps(event['data'])}\nid: {sent}\n\n"
                if sent:  # weights follow the run's start
                    yield new_weights()
                if run.finished and sent >= len(run.events):
                    return
                if stopping.is_set() or await request.is_disconnected():
                    return  # the server is stopping: an open stream must not hold it up
                await asyncio.sleep(EVENT_POLL_SECONDS)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def train_model(request: Request) -> Response:
        run = training.run
        if run is None or not run.finished or run.model is None or run.status == "failed":
            raise RequestError("no finished run to save: train one (and let it finish or stop it) first", 409)
        data = await run_in_threadpool(run.model_file)
        name = f"layerwise-run{run.number}-{run.settings['dataset']}.safetensors"
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def on_request_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestError)
        return _json({"error": exc.message}, exc.status)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        detail = exc.detail
        if exc.status_code == 404:
            detail = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            detail = f"{request.url.path} does not take {request.method}"
        return _json({"error": detail}, exc.status_code)

    async def on_server_error(request: Request, exc: Exception) -> Response:
        # A bug, not bad input: said as such, and the server goes on serving.
        return _json({"error": f"internal error ({type(exc).__name__}: {exc})"}, 500)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(training.shutdown)

    routes = [
        Route("/", index),
        Route("/api/model", model_info),
        Route("/api/predict", predict, methods=["POST"]),
        Route("/api/images", images),
        Route("/api/graphs", graphs),
        Route("/api/graphs/{name}", new_session, methods=["POST"]),
        Route("/api/sessions/{sid}", session_state),
        Route("/api/sessions/{sid}", delete_session, methods=["DELETE"]),
        Route("/api/sessions/{sid}/nodes/{node}", node),
        Route("/api/sessions/{sid}/check", check, methods=["POST"]),
        Route("/api/sessions/{sid}/{step}", step, methods=["POST"]),
        Route("/api/train", train_state),
        Route("/api/train", train_start, methods=["POST"]),
        Route("/api/train/stop", train_stop, methods=["POST"]),
        Route("/api/train/events", train_events),
        Route("/api/train/model", train_model),
        Mount("/static", StaticFiles(packages=[(__package__, "static")]), name="static"),
    ]
    handlers: dict[Any, Callable] = {RequestError: on_request_error, HTTPException: on_http_error,
                                     Exception: on_server_error}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan,
                    middleware=[Middleware(_ThisMachineOnly, hosts=hosts)])
    app.state.served, app.state.training, app.state.sessions = served, training, sessions

    def begin_shutdown() -> None:
        """Called when the server is asked to stop (Ctrl-C), before it waits for open
        connections: event streams end and a training run stops after its current step."""
        stopping.set()
        run = training.run
        if run is not None and not run.finished:
            run.stop()

    app.state.begin_shutdown = begin_shutdown
    return app


def _query_ints(query: dict[str, str], names: tuple[str, ...]) -> dict:
    """Query parameters as numbers where they are whole numbers (else left as text, so the
    field check names the bad value)."""
    out: dict[str, Any] = {}
    for name in names:
        if name in query:
            text = query[name]
            # isascii: "²" is a digit to str.isdigit but not to int(); 12 digits is beyond any index.
            plain = text.isascii() and text.removeprefix("-").isdigit() and len(text) <= 12
            out[name] = int(text) if plain else text
    return out

"""A tiny HTTP server on 127.0.0.1 that plays download mirrors, good and bad, for the tests.

Each route maps a URL path to a behaviour:

- ``("ok", body)``: 200 with the body (application/octet-stream);
- ``("html", body)``: 200 with Content-Type text/html (a captive portal or error page);
- ``("truncated", body)``: 200 announcing ``len(body) + 1000`` bytes, sends ``body``, closes;
- anything not routed: 404.

Every request path is recorded in ``requests``. Use as a context manager; it stops itself.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Handler(BaseHTTPRequestHandler):
    server: MirrorServer._Server  # type: ignore[name-defined]

    def do_GET(self) -> None:
        owner = self.server.owner
        with owner.lock:
            owner.requests.append(self.path)
        route = owner.routes.get(self.path)
        if route is None:
            self.send_error(404, "Not Found")
            return
        kind, body = route
        self.send_response(200)
        if kind == "html":
            self.send_header("Content-Type", "text/html; charset=utf-8")
        else:
            self.send_header("Content-Type", "application/octet-stream")
        announced = len(body) + 1000 if kind == "truncated" else len(body)
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        # HTTP/1.0 (the handler's default): the connection closes after this response,
        # which is what cuts the "truncated" transfer short.

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


class MirrorServer:
    class _Server(ThreadingHTTPServer):
        daemon_threads = True
        owner: MirrorServer

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self._server = self._Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, prefix: str) -> str:
        """Mirror base URL for files routed under ``/prefix/``."""
        return f"{self.base}/{prefix.strip('/')}/"

    def serve(self, prefix: str, files: dict[str, bytes], kind: str = "ok") -> str:
        """Route every ``files`` entry under ``/prefix/``; return that mirror's URL."""
        for name, body in files.items():
            self.routes[f"/{prefix.strip('/')}/{name}"] = (kind, body)
        return self.url(prefix)

    def __enter__(self) -> MirrorServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"

"""Running the app: uvicorn on a socket the command line opened, stopped cleanly by Ctrl-C.

A page following a training run holds an event stream open, and uvicorn waits for open
connections before it stops; so on the signal the app is told first (``begin_shutdown``: its
streams end and the run stops after its current step), then uvicorn shuts down as usual.
"""

from __future__ import annotations

import socket
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from .app import LOOPBACK_HOSTS

__all__ = ["hosts_for", "run_server"]

#: Seconds uvicorn waits for requests still running when it stops.
GRACEFUL_SECONDS = 5


def hosts_for(host: str) -> tuple[str, ...]:
    """The Host names the app answers to when it listens on ``host``: the loopback names and
    ``host`` itself; any name when it listens on every address (0.0.0.0, ::), since other
    machines reach it by names of their own."""
    if host in ("0.0.0.0", "::", ""):
        return ("*",)
    return (*LOOPBACK_HOSTS, host)


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app first when a signal asks it to stop."""

    def __init__(self, app: Starlette) -> None:
        super().__init__(uvicorn.Config(app, log_level="warning", lifespan="on",
                                        timeout_graceful_shutdown=GRACEFUL_SECONDS))
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.app.state.begin_shutdown()
        super().handle_exit(sig, frame)


def run_server(app: Starlette, sock: socket.socket) -> None:
    """Serve ``app`` on the listening ``sock`` until Ctrl-C (or SIGTERM)."""
    try:
        _Server(app).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn shut down gracefully on Ctrl-C, then re-raised it for the caller's default

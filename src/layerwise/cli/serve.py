"""``layerwise serve``: the web app (``layerwise.serve``) on uvicorn, bound to 127.0.0.1."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path

from ..errors import InputError
from ._common import add_threads_option

LOOPBACK = "127.0.0.1"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="a local web app: draw a digit, step through backprop, train live",
        description="Serve a web app on this machine: draw a digit and see the model's answer, its "
        "activations and the gradient of its score; step through forward and backward of the book's "
        "graphs and of a real network; train a small net and watch its curves. With no MODEL_FILE, "
        "the book's two-layer net is trained at start on the bundled 8x8 digits (well under a second).",
    )
    p.add_argument("model_file", nargs="?", type=Path, default=None, metavar="MODEL_FILE",
                   help="a model file `layerwise train` wrote (MLP or convnet)")
    p.add_argument("--host", default=LOOPBACK,
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0 picks a free one)")
    add_threads_option(p)
    p.set_defaults(func=run)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {text!r}")
    return port


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, made here so that a taken port is a clear error before any work,
    and ``--port 0`` can print the port it got."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise InputError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror}; choose another --port") from None
    sock.listen(128)
    return sock


def run(args: argparse.Namespace) -> int:
    from ..serve import create_app, default_model, load_served  # Starlette loads for this command only
    from ..serve.server import hosts_for, run_server  # and uvicorn: not at every CLI start

    sock = _listen(args.host, args.port)
    if not _is_loopback(args.host):
        print(f"layerwise serve: warning: listening on {args.host}, so other machines can reach this app; "
              "it has no login. Use the default 127.0.0.1 unless you mean it.", file=sys.stderr)
    if args.model_file is None:
        print("training the default model on the bundled digits ...", flush=True)
        served = default_model()
    else:
        served = load_served(args.model_file)
    print(f"serving {served.source}" if args.model_file is None else f"serving {args.model_file} "
          f"({served.architecture}, {served.image_size[0]}×{served.image_size[1]} images)")
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"open http://{shown}:{port}/  (Ctrl-C stops)", flush=True)
    try:
        run_server(create_app(served, hosts=hosts_for(args.host)), sock)
    finally:
        sock.close()
    print("layerwise serve: stopped")
    return 0

"""Step-through sessions: each is a :class:`~layerwise.graph.stepper.Stepper` on one graph,
kept on the server between a page's clicks.

The graphs are the book's examples (``graph.examples``) and ``network``: the served model's
layers on a mini-batch of 1-8 of its test images (``graph.stepper.network_graph``). At most
``MAX_SESSIONS`` are kept; the least recently used goes first.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from ..errors import InputError, StateError
from ..graph.examples import EXAMPLES, example
from ..graph.stepper import NodeView, Stepper, network_graph
from .model import ServedModel
from .payloads import RequestError, value_json

__all__ = ["GRAPHS", "MAX_BATCH", "MAX_SESSIONS", "Sessions", "view_json"]

MAX_SESSIONS = 64
MAX_BATCH = 8

#: The graphs a session can step through: name -> what the page says about it.
GRAPHS = {
    "apple": "Buying apples (5.4.1): 100 × 2 apples × tax 1.1",
    "apple-orange": "Apples and oranges (5.4.2): (100 × 2 + 150 × 3) × tax 1.1",
    "sigmoid": "Sigmoid taken apart (5.5.2): ×(−1), exp, +1, 1/x, beside the Sigmoid layer",
    "network": "A real network (5.7): the served model's layers and SoftmaxWithLoss on test images",
}
assert set(GRAPHS) - {"network"} == set(EXAMPLES)


def view_json(view: NodeView, full: bool = False) -> dict:
    """A node's state as the page shows it."""
    return {
        "index": view.index, "label": view.label, "kind": view.kind, "name": view.output_name,
        "inputs": view.inputs, "formula": view.formula,
        "forward_done": view.forward_done, "backward_done": view.backward_done,
        "output": value_json(view.output, full),
        "caches": {k: value_json(v, full) for k, v in view.caches.items()},
        "params": {k: value_json(v, full) for k, v in view.params.items()},
        "dout": value_json(view.dout, full),
        "returns": [{"name": name, "to": to, "value": value_json(g, full)} for name, to, g in view.returns],
        "param_grads": {k: value_json(v, full) for k, v in view.param_grads.items()},
    }


class Session:
    def __init__(self, sid: str, name: str, stepper: Stepper, extra: dict) -> None:
        self.id, self.name, self.stepper, self.extra = sid, name, stepper, extra
        self.lock = threading.Lock()

    def state(self) -> dict:
        s = self.stepper
        graph = s.graph
        return {
            "session": self.id, "graph": self.name, "title": graph.title, **self.extra,
            "phase": s.phase, "forward_done": s.forward_done, "backward_done": s.backward_done,
            "current": s.current, "n_nodes": s.n_nodes,
            "inputs": [{"name": v.name, "label": v.label, "value": value_json(v.value)} for v in graph.inputs],
            "nodes": [view_json(v) for v in s.views()],
        }


class Sessions:
    """The live sessions, by id."""

    def __init__(self, served: ServedModel) -> None:
        self.served = served
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, name: str, body: dict) -> Session:
        if name not in GRAPHS:
            raise RequestError(f"no graph {name!r}; choose from {', '.join(GRAPHS)}", 404)
        extra: dict[str, Any] = {}
        if name == "network":
            graph, extra = self._network(body)
        elif name == "sigmoid":
            x = body.get("x", 1.0)
            if not isinstance(x, int | float) or isinstance(x, bool) or abs(x) > 100 or not np.isfinite(x):
                raise RequestError(f"field 'x' must be a number from -100 to 100, got {x!r}")
            graph = example("sigmoid", float(x))
        else:
            graph = example(name)
        session = Session(secrets.token_hex(8), name, Stepper(graph), extra)
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def _network(self, body: dict) -> tuple[Any, dict]:
        try:
            images, labels = self.served.test_images()
        except InputError as exc:
            raise RequestError(str(exc), 409) from None
        indices = body.get("images")
        if not isinstance(indices, list) or not 1 <= len(indices) <= MAX_BATCH:
            raise RequestError(f"field 'images' must be a list of 1 to {MAX_BATCH} test image numbers "
                               f"(0 to {len(images) - 1}), got {indices!r}")
        for i in indices:
            if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < len(images):
                raise RequestError(f"field 'images': {i!r} is not a test image number (0 to {len(images) - 1})")
        x = images[indices].reshape(len(indices), *self.served.sample_shape)
        t = labels[indices]
        model = self.served.model
        graph = network_graph(model, x, t, title=f"{self.served.architecture} on {len(indices)} test "
                              f"image{'s' if len(indices) > 1 else ''} ({self.served.dataset}), float64")
        return graph, {"images": indices, "labels": [int(k) for k in t]}

    def get(self, sid: str) -> Session:
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                raise RequestError(f"no session {sid!r} (it may have expired: the server keeps the "
                                   f"last {MAX_SESSIONS}); start the graph again", 404)
            self._sessions.move_to_end(sid)
            return session

    @staticmethod
    def step(session: Session, direction: str) -> dict:
        """One step; out of order is a 409 naming what comes next."""
        with session.lock:
            try:
                if direction == "forward":
                    index = session.stepper.step_forward()
                elif direction == "backward":
                    index = session.stepper.step_backward()
                elif direction == "reset":
                    session.stepper.reset()
                    index = None
                else:
                    raise RequestError(f"no step {direction!r}; steps are forward, backward and reset", 404)
            except StateError as exc:
                raise RequestError(str(exc), 409) from None
            return {"stepped": index, **session.state()}

    @staticmethod
    def node(session: Session, key: str, full: bool) -> dict:
        with session.lock:
            try:
                # isdecimal, not isdigit: int() refuses "²"; a long number is no index (and int() limits digits)
                index = session.stepper.node_index(int(key) if key.isdecimal() and len(key) < 10 else key)
            except InputError as exc:  # it names the nodes there are
                raise RequestError(str(exc), 404) from None
            return view_json(session.stepper.view(index), full)

    @staticmethod
    def check(session: Session) -> dict:
        with session.lock:
            try:
                rows = session.stepper.check()
            except StateError as exc:
                raise RequestError(str(exc), 409) from None
        return {"rows": [{"name": r.name, "analytic": value_json(r.analytic), "numerical": value_json(r.numerical),
                          "relative_error": r.relative_error, "checked": r.checked, "size": r.size,
                          "agrees": r.agrees, "note": r.note} for r in rows]}

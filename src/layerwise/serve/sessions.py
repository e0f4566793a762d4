"""Step-through sessions: each is a :class:`~layerwise.graph.stepper.Stepper` on one graph,
kept on the server between a page's clicks.

The graphs are the book's examples (``graph.examples``) and ``network``: the served model's
layers on a mini-batch of 1-8 of its test images (``graph.stepper.network_graph``). At most
``MAX_SESSIONS`` are kept, holding at most ``MAX_SESSION_BYTES`` of arrays between them (a
DeepConvNet session on 28×28 images holds ~45 MB); the least recently used goes first, and
the page deletes a session when it starts another.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from ..errors import InputError, StateError
from ..graph.captions import LANGUAGES
from ..graph.engine import format_value
from ..graph.examples import EXAMPLES, example
from ..graph.stepper import NodeView, Stepper, network_graph
from .model import ServedModel
from .payloads import RequestError, finite, value_json

__all__ = ["GRAPHS", "MAX_BATCH", "MAX_SESSIONS", "MAX_SESSION_BYTES", "Session", "Sessions", "view_json"]

MAX_SESSIONS = 32
MAX_SESSION_BYTES = 512 * 2**20
MAX_BATCH = 8

#: The graphs a session can step through: name -> what the page says about it.
#: The graphs a session can step through; the page titles them from its catalogue (i18n).
GRAPHS = ("apple", "apple-orange", "sigmoid", "network")
assert set(GRAPHS) - {"network"} == set(EXAMPLES)


def view_json(view: NodeView, full: bool = False) -> dict:
    """A node's state as the page shows it. Parameters go as their shape and first numbers only
    (the page shows what flows, not the weights)."""
    return {
        "index": view.index, "label": view.label, "kind": view.kind, "name": view.output_name,
        "inputs": view.inputs, "formula": view.formula,
        "forward_done": view.forward_done, "backward_done": view.backward_done,
        "output": value_json(view.output, full),
        "caches": {k: value_json(v, full) for k, v in view.caches.items()},
        "params": {k: {"shape": list(np.shape(v)), "text": format_value(v)} for k, v in view.params.items()},
        "dout": value_json(view.dout, full),
        "returns": [{"name": name, "to": to, "value": value_json(g, full)} for name, to, g in view.returns],
        "param_grads": {k: value_json(v, full) for k, v in view.param_grads.items()},
    }


def _array_bytes(graph: Any) -> int:
    """What a session's arrays weigh, about: its values, and each node's parameters three times
    over (the parameters, their gradients, and caches of similar size)."""
    total = sum(v.value.nbytes for v in graph.vars.values() if isinstance(v.value, np.ndarray))
    for op in graph.ops:
        total += 3 * sum(a.nbytes for a in (getattr(op.node, "params", {}) or {}).values())
    return 2 * total  # gradients of the values, too


class Session:
    """One step-through: a :class:`~layerwise.graph.stepper.Stepper` on one graph, and a lock,
    since a page's clicks may arrive while a check is still perturbing the values."""

    def __init__(self, sid: str, name: str, stepper: Stepper, extra: dict) -> None:
        self.id, self.name, self.stepper, self.extra = sid, name, stepper, extra
        self.nbytes = _array_bytes(stepper.graph)
        self.lock = threading.Lock()

    def _summary(self) -> dict:
        s = self.stepper
        return {"session": self.id, "graph": self.name, "phase": s.phase, "forward_done": s.forward_done,
                "backward_done": s.backward_done, "current": s.current, "n_nodes": s.n_nodes}

    def state(self) -> dict:
        """Everything the page draws: the inputs and every node."""
        with self.lock:
            graph = self.stepper.graph
            return {**self._summary(), "title": graph.title, **self.extra,
                    "inputs": [{"name": v.name, "label": v.label, "value": value_json(v.value)} for v in graph.inputs],
                    "nodes": [view_json(v) for v in self.stepper.views()]}

    def step(self, direction: str) -> dict:
        """One step forward or backward (the answer holds the node it ran), or a reset (the
        answer is the whole state); a step out of order is a 409 naming what comes next."""
        if direction == "reset":
            with self.lock:
                self.stepper.reset()
            return {"stepped": None, **self.state()}
        if direction not in ("forward", "backward"):
            raise RequestError(f"no step {direction!r}; steps are forward, backward and reset", 404)
        with self.lock:
            try:
                index = self.stepper.step_forward() if direction == "forward" else self.stepper.step_backward()
            except StateError as exc:
                raise RequestError(str(exc), 409) from None
            return {"stepped": index, **self._summary(), "node": view_json(self.stepper.view(index))}

    def node(self, key: str, full: bool) -> dict:
        """One node by index, output name or label; ``full``: every value of every array."""
        with self.lock:
            try:
                # isdecimal, not isdigit: int() refuses "²"; a long number is no index (and int() limits digits)
                index = self.stepper.node_index(int(key) if key.isdecimal() and len(key) < 10 else key)
            except InputError as exc:  # it names the nodes there are
                raise RequestError(str(exc), 404) from None
            return view_json(self.stepper.view(index), full)

    def check(self) -> dict:
        """Every gradient beside central differences (after the backward pass, else a 409)."""
        with self.lock:
            try:
                rows = self.stepper.check()
            except StateError as exc:
                raise RequestError(str(exc), 409) from None
        return {"rows": [{"name": r.name, "analytic": value_json(r.analytic), "numerical": value_json(r.numerical),
                          "relative_error": finite(r.relative_error), "checked": r.checked, "size": r.size,
                          "kinks": r.kinks, "agrees": r.agrees, "note": r.note} for r in rows]}


class Sessions:
    """The live sessions, by id, least recently used first."""

    def __init__(self, served: ServedModel) -> None:
        self.served = served
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def create(self, name: str, body: dict) -> Session:
        if name not in GRAPHS:
            raise RequestError(f"no graph {name!r}; choose from {', '.join(GRAPHS)}", 404)
        extra: dict[str, Any] = {}
        lang = body.get("lang", "en")
        if lang not in LANGUAGES:
            raise RequestError(f"field 'lang' must be one of {', '.join(LANGUAGES)}, got {lang!r}")
        if name == "network":
            graph, extra = self._network(body)
        elif name == "sigmoid":
            x = body.get("x", 1.0)
            if not isinstance(x, int | float) or isinstance(x, bool) or abs(x) > 100 or not np.isfinite(x):
                raise RequestError(f"field 'x' must be a number from -100 to 100, got {x!r}")
            graph = example("sigmoid", float(x), lang=lang)
        else:
            graph = example(name, lang=lang)
        session = Session(secrets.token_hex(8), name, Stepper(graph), extra)
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > 1 and (len(self._sessions) > MAX_SESSIONS or sum(
                    s.nbytes for s in self._sessions.values()) > MAX_SESSION_BYTES):
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

    def delete(self, sid: str) -> None:
        with self._lock:
            if self._sessions.pop(sid, None) is None:
                raise RequestError(f"no session {sid!r}", 404)

"""A worker process of the ``"processes"`` thread plan: ``python -m layerwise.models.part_worker FD``.

It builds the network it is sent (``build_model`` from its config), reads the parameters from
the shared block the trainer writes them to, and for each step computes ``gradient`` of its
rows, writing the gradients into its own part of the block (``models.batch_parts`` sends the
steps and adds the parts; ``kernels.processes`` starts the workers and passes the messages).

Messages, each answered ``("ok", value)`` or ``("error", traceback)``:

- ``("setup", spec, path, layout)``: map the block at ``path``; build ``spec["config"]`` in
  ``spec["dtype"]`` with its parameters as views of the block; answer None.
- ``("step", (index, rows, weight, dropout_states, choices, errors))``: the gradient of worker
  ``index``'s first ``rows`` inputs times ``weight`` (the part's share of the batch, as the
  trainer adds it), the Dropout layers drawing from these generator states, NumPy's floating
  point errors handled as ``errors`` says (the trainer's ``np.geterr()``: a plan's measurement
  keeps a diverging copy quiet); answer the part's loss. ``choices``, on a setup's first step:
  the trainer's measured choices (``kernels.tuning``), taken as the worker's own; the worker
  measures nothing itself (``kept_choices.measure_nothing``).
- ``("peak_rss", None)``: answer this process's peak resident memory in bytes.
- ``("stop", None)``, or the trainer gone: exit.
"""

from __future__ import annotations

import mmap
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..kernels import kept_choices
from ..kernels.blas_limits import blas_limit
from ..kernels.memory import keep_freed_memory
from ..kernels.processes import Layout
from ..layers import Dropout
from .batch_parts import layer_configs
from .config import build_model
from .sequential import Sequential


class Part:
    """The network of one setup and its views of the shared block."""

    def __init__(self, spec: dict, path: str, layout: Layout) -> None:
        with open(path, "r+b") as file:
            self.block = mmap.mmap(file.fileno(), layout.size)
        views = layout.views(self.block)
        self.model: Sequential = build_model(spec["config"], spec["dtype"])
        rebuilt = layer_configs(self.model)
        if rebuilt != spec["layers"]:
            raise ValueError(f"the network rebuilt from its config differs: {rebuilt} against {spec['layers']}")
        for name, (layer, key) in self.model._param_slots.items():
            shared = views[f"param {name}"]
            if layer.params[key].shape != shared.shape:
                raise ValueError(f"{name}: the rebuilt network's shape {layer.params[key].shape}, "
                                 f"the trainer's {shared.shape}")
            layer.params[key] = shared
        self.model._index_tensors()
        self.views = views
        self.dropouts = [layer for layer in self.model._layers if isinstance(layer, Dropout)]

    def step(
        self, index: int, rows: int, weight: float, dropout_states: list[dict], choices: dict | None, errors: dict,
    ) -> float:
        if choices:
            kept_choices.adopt_choices(choices)
        for layer, state in zip(self.dropouts, dropout_states, strict=True):
            bit_generator = getattr(np.random, state["bit_generator"])()  # the trainer's kind (PCG64, ...)
            bit_generator.state = state
            layer.rng = np.random.Generator(bit_generator)
        x, t = self.views[f"x {index}"][:rows], self.views[f"t {index}"][:rows]
        with np.errstate(**errors):
            grads = self.model.gradient(x, t)
            for name, g in grads.items():  # g · weight, the very product the trainer would take
                np.multiply(g, weight, out=self.views[f"grad {index} {name}"])
        return float(self.model.loss_layer.loss)


def serve(connection: Connection) -> None:
    """Answer the trainer's messages until it says stop or goes away."""
    part: Part | None = None
    while True:
        try:
            kind, *body = connection.recv()
        except (EOFError, OSError):
            return
        if kind == "stop":
            return
        try:
            value: Any = None
            if kind == "setup":
                part = None  # the old block's views go before the new one is mapped
                part = Part(*body)
            elif kind == "step":
                if part is None:
                    raise RuntimeError("a step before any setup")
                value = part.step(*body[0])
            elif kind == "peak_rss":
                value = _peak_rss()
            else:
                raise ValueError(f"unknown message {kind!r}")
            answer = ("ok", value)
        except Exception:  # any: the trainer computes the part itself and reports what is wrong
            answer = ("error", traceback.format_exc())
        try:
            connection.send(answer)
        except (OSError, ValueError):
            return


def _peak_rss() -> int:
    """This process's peak resident memory in bytes since it started running this module:
    Linux's VmHWM (its ru_maxrss also counts the trainer's pages it shared between the fork and
    the exec that started it: a whole copy of the trainer's memory, never really used), else
    ru_maxrss."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource  # POSIX only, as the plan; Linux answered above

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the trainer decides when to stop
    connection = Connection(int(argv[0]))
    keep_freed_memory()  # as the trainer's process: each step's arrays reuse the last one's pages
    kept_choices.measure_nothing()
    with blas_limit(1):  # one core each: the trainer's process takes the other part
        serve(connection)


if __name__ == "__main__":
    main(sys.argv[1:])

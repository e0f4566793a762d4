"""The speed machinery of ``Optimizer.update``: per-parameter plans, scratch buffers, and a
large parameter's update split across threads.

What it computes is the plain expression: for every parameter ``p`` with gradient ``g``,

    optimizer._apply(p, g + weight_decay·p, state[p], s)      (g itself when weight_decay is 0)

on the whole arrays, where ``_apply`` is the rule's formula (``layerwise.optim.rules``),
``state[p]`` its state arrays and ``s`` a scratch array of p's shape and dtype. Slices give
the same numbers, because every rule is elementwise (tests/test_kernels_updates.py checks it,
bit for bit).

Why it exists (measured):

- plans: a parameter's checks, state arrays and scratch are looked up once and kept while
  the same array comes back with the same state arrays; then a step costs the arithmetic and
  a shape check. On the 784-50-10 net the generic path (checks and lookups every step) was a
  third of the non-matrix-product time of a training step.
- scratch: one flat buffer per dtype, the size of the largest parameter, serves every
  parameter, so a step allocates no parameter-sized array.
- splitting: Adam on SimpleConvNet's 432,000-weight layer takes ~1 ms on one core; while
  layerwise owns the threads (``owned_threads``), a parameter at least as large as the
  smallest whose update by that rule ran faster split on this machine (measured once and kept:
  ``split_sizes.update_min_elements``) is updated as slices on all of them (``in_parts``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import split_sizes
from .threads import current_split_sizes, in_parts, owned

__all__ = ["UpdatePlans", "apply_in_parts", "apply_updates"]

#: ``_apply(p, g, state, s)`` of an optimizer: one parameter's update, elementwise, in place.
Apply = Callable[[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray], None]
#: ``_state_of(key, p)`` of an optimizer: p's state arrays by slot, allocated on first use.
StateOf = Callable[[str, np.ndarray], dict[str, np.ndarray]]
#: A parameter's plan: (the parameter, its state arrays by slot, its scratch).
Plan = tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]


class UpdatePlans:
    """One optimizer's plans (parameter name -> ``Plan``) and scratch buffers."""

    __slots__ = ("_plans", "_scratch")

    def __init__(self) -> None:
        self._plans: dict[str, Plan] = {}
        # (dtype, which) -> flat scratch array; a parameter's scratch is a reshaped view of a
        # prefix, so one buffer (the size of the largest parameter) serves every parameter.
        self._scratch: dict[tuple[np.dtype, int], np.ndarray] = {}

    def current(self, key: str, p: np.ndarray, state: dict[str, dict[str, np.ndarray]]) -> Plan | None:
        """The plan of ``key`` if it still stands for ``p``'s checks: made for this very array,
        which is still writable, and its state arrays are still the optimizer's
        (``state[slot][key]``; ``load_state_dict`` or a user may have replaced them). Else None:
        the caller checks ``p`` again and the plan is remade."""
        plan = self._plans.get(key)
        if plan is None or plan[0] is not p or not p.flags.writeable:
            return None
        for slot, arr in plan[1].items():
            if state[slot].get(key) is not arr:
                return None
        return plan

    def make(self, key: str, p: np.ndarray, state_of: StateOf) -> Plan:
        """A new plan for the checked parameter ``p``, kept under ``key``."""
        plan = self._plans[key] = (p, state_of(key, p), self.scratch(p, 0))
        return plan

    def scratch(self, p: np.ndarray, which: int) -> np.ndarray:
        """A scratch array of p's shape and dtype: a view of a prefix of one flat buffer per
        dtype (and ``which``), so the largest parameter's size serves every parameter. A
        plan keeps its view, which stays valid when a larger parameter replaces the buffer."""
        buf = self._scratch.get((p.dtype, which))
        if buf is None or buf.size < p.size:
            buf = self._scratch[(p.dtype, which)] = np.empty(p.size, dtype=p.dtype)
        return buf[: p.size].reshape(p.shape)


def apply_updates(
    apply: Apply,
    state_of: StateOf,
    plans: UpdatePlans,
    work: list[tuple[str, np.ndarray, np.ndarray, Plan | None]],
    decay: float,
) -> None:
    """``apply(p, g + decay·p, state_of(key, p), scratch)`` for each checked ``(key, p, g, plan)``
    of ``work`` (plan None: make one), each large parameter split across owned threads."""
    for key, p, g, plan in work:
        if plan is None:
            plan = plans.make(key, p, state_of)
        _, state, s = plan
        if decay:
            # L2 decay, g + λ·p, into a second scratch: the caller's gradient is not ours to change.
            gd = plans.scratch(p, 1)
            np.multiply(p, decay, out=gd)
            gd += g
            g = gd
        apply_in_parts(apply, p, g, state, s)


def apply_in_parts(apply: Apply, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], s: np.ndarray) -> None:
    """``apply(p, g, state, s)``, for a large parameter as slices of the flattened arrays on
    the threads layerwise owns (``in_parts``). Every rule's ``_apply`` is elementwise, so
    slices give the same numbers; a non-contiguous array (whose flat view would be a copy) is
    not split."""
    if (owned() <= 1 or p.size < split_sizes.SMALLEST or p.size < _update_min_elements(apply, state, p.dtype)
            or not all(a.flags.c_contiguous for a in (p, g, s, *state.values()))):
        apply(p, g, state, s)
        return
    p, g, s = p.reshape(-1), g.reshape(-1), s.reshape(-1)
    flat = {slot: a.reshape(-1) for slot, a in state.items()}
    in_parts(lambda part: apply(p[part], g[part], {k: a[part] for k, a in flat.items()}, s[part]), p.size)


_update_sizes: dict[tuple[str, tuple[str, ...], np.dtype, int], int] = {}  # the kept sizes, looked up once each


def _update_min_elements(apply: Apply, state: dict[str, np.ndarray], dtype: np.dtype) -> int:
    """``split_sizes.update_min_elements`` for the rule whose ``_apply`` is ``apply``."""
    rule = type(getattr(apply, "__self__", apply)).__name__
    key = (rule, tuple(state), dtype, owned())
    size = _update_sizes.get(key)
    if size is None:
        size = split_sizes.update_min_elements(rule, apply, key[1], dtype)
        if size is None:  # not to be had now (tuning off, a worker, another thread measuring)
            return current_split_sizes()[0]
        _update_sizes[key] = size
    return size

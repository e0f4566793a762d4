"""The Optimizer base class: hyperparameters and their checks, per-parameter state, ``update``
with its validation, and ``state_dict`` / ``load_state_dict``. The formulas are in ``rules``.

The book's API: ``optimizer.update(params, grads)``, where ``params`` and ``grads`` are
mappings name -> ndarray (``model.params``, ``model.gradient(x, t)``). Every optimizer updates
the parameter arrays *in place*: the arrays in ``params`` are modified and no entry is rebound,
so a layer holding the same array sees the new values (the book's nets keep two references to
each weight, and a rebinding update silently stops training).

Conventions shared by all optimizers:

- State (velocity, squared-gradient sums, moments) is allocated on a parameter's first update,
  with the parameter's shape and dtype; float32 parameters keep float32 state.
- Hyperparameters are stored as Python floats and every step runs through ``out=`` / in-place
  ufuncs into a scratch buffer that is reused across steps, so float32 stays float32 (NumPy 2
  treats Python floats as "weak" scalars) and a step allocates no parameter-sized array.
- ``weight_decay`` adds L2 decay to the gradient, g ← g + λ·p, as ``torch.optim`` does.
- ``state_dict()`` / ``load_state_dict()`` capture everything needed to resume bit-exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from ..errors import InputError, ShapeError, StateError
from ..kernels.updates import UpdatePlans, apply_updates

__all__ = ["Optimizer"]


# -- hyperparameter checks ---------------------------------------------------------------

def _as_float(name: str, value: object) -> float:
    # bool is an int subclass; Adam(lr=True) is a bug, not 1.0.
    if isinstance(value, bool):
        raise InputError(f"{name} must be a number, got {value!r}")
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(f):
        raise InputError(f"{name} must be finite, got {value!r}")
    return f


def _positive(name: str, value: object) -> float:
    f = _as_float(name, value)
    if f <= 0:
        raise InputError(f"{name} must be > 0, got {value!r}")
    return f


def _non_negative(name: str, value: object) -> float:
    f = _as_float(name, value)
    if f < 0:
        raise InputError(f"{name} must be >= 0, got {value!r}")
    return f


def _fraction(name: str, value: object) -> float:
    f = _as_float(name, value)
    if not 0 <= f < 1:
        raise InputError(f"{name} must be in [0, 1), got {value!r}")
    return f


class _Hyper:
    """A hyperparameter attribute: validated and stored as a Python float on every assignment,
    so ``optimizer.lr = np.float64(0.1)`` (a learning-rate schedule) cannot upcast a step.

    Its ``check`` is the only check of that hyperparameter: the constructor, a schedule's
    assignment and ``load_state_dict`` all go through it."""

    def __init__(self, check: Callable[[str, object], float]) -> None:
        self.check = check

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        return self if obj is None else obj.__dict__[self.name]

    def __set__(self, obj: object, value: object) -> None:
        obj.__dict__[self.name] = self.check(self.name, value)


# -- the base class ----------------------------------------------------------------------

class Optimizer:
    """Base class: validation, lazily allocated per-parameter state, weight decay and
    ``state_dict``. Subclasses name their state arrays in ``slots``, declare each
    hyperparameter as a ``_Hyper`` attribute listed in ``hyper_names``, and implement
    ``_apply(p, g, state, s)`` for one parameter ``p`` with gradient ``g``, its state arrays
    ``state[slot]`` and a scratch array ``s`` of p's shape and dtype; it must be elementwise
    (a large parameter is updated in slices, concurrently: see ``kernels/updates.py``)."""

    slots: ClassVar[tuple[str, ...]] = ()
    #: Constructor arguments that ``state_dict()["hyper"]`` records; each is a ``_Hyper``.
    hyper_names: ClassVar[tuple[str, ...]] = ("lr", "weight_decay")

    lr = _Hyper(_positive)
    weight_decay = _Hyper(_non_negative)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls.hyper_names:
            if not isinstance(getattr(cls, name, None), _Hyper):
                raise TypeError(f"{cls.__name__}.{name} is in hyper_names but is not a _Hyper attribute")

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr = lr
        self.weight_decay = weight_decay
        #: Number of ``update`` calls so far (Adam's t).
        self.step = 0
        #: slot -> parameter name -> state array, e.g. ``state["m"]["W1"]``.
        self.state: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self.slots}
        # Per-parameter plans and scratch buffers of update() (kernels/updates.py).
        self._plans = UpdatePlans()

    def _apply(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], s: np.ndarray) -> None:
        raise NotImplementedError

    def _begin_step(self) -> None:
        """Per-step scalars (Adam's bias corrections), computed once per ``update``."""

    # -- update --------------------------------------------------------------------------
    def update(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """One optimization step on every parameter in ``params``, in place.

        A parameter whose gradient is ``None`` is left alone (frozen). Everything is checked
        before anything is changed, so a bad gradient leaves the parameters and state as they were.
        A parameter is checked when first seen (or changed); afterwards its plan stands for the check.
        """
        plans, state = self._plans, self.state
        work = []
        for key in params:
            p = params[key]
            if key not in grads:
                raise InputError(f"{type(self).__name__}: no gradient for parameter {key!r}")
            g = grads[key]
            if g is None:
                continue
            plan = plans.current(key, p, state)
            if plan is None:
                self._check_param(key, p)
            if type(g) is not np.ndarray:
                g = np.asarray(g)
            if g.shape != p.shape:
                raise ShapeError(
                    f"{type(self).__name__}: gradient of {key!r} has shape {g.shape}, "
                    f"parameter has shape {p.shape}"
                )
            work.append((key, p, g, plan))

        self.step += 1
        self._begin_step()
        # For each parameter: self._apply(p, g + λ·p, its state, a scratch), split across threads when large.
        apply_updates(self._apply, self._state_of, plans, work, self.weight_decay)

    def _check_param(self, key: str, p: np.ndarray) -> None:
        if not isinstance(p, np.ndarray) or p.dtype.kind != "f":
            raise InputError(
                f"{type(self).__name__}: parameter {key!r} must be a floating ndarray to be "
                f"updated in place, got {type(p).__name__} {getattr(p, 'dtype', '')}"
            )
        if not p.flags.writeable:
            raise InputError(f"{type(self).__name__}: parameter {key!r} is a read-only array")
        for slot in self.slots:
            arr = self.state[slot].get(key)
            if arr is not None and (arr.shape != p.shape or arr.dtype != p.dtype):
                raise StateError(
                    f"{type(self).__name__}: state {slot}/{key} is {arr.dtype}{list(arr.shape)} but the "
                    f"parameter is {p.dtype}{list(p.shape)}; make a new optimizer for a changed model"
                )

    def _state_of(self, key: str, p: np.ndarray) -> dict[str, np.ndarray]:
        """The state arrays of parameter ``key`` by slot, allocated as zeros of p's shape and
        dtype on its first update."""
        state = {}
        for slot in self.slots:
            arr = self.state[slot].get(key)
            if arr is None:
                arr = self.state[slot][key] = np.zeros(p.shape, dtype=p.dtype)
            state[slot] = arr
        return state

    # -- saving and resuming -------------------------------------------------------------
    def hyper(self) -> dict[str, float]:
        """The hyperparameters, as Python floats (JSON-able)."""
        return {name: getattr(self, name) for name in self.hyper_names}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: ``{"type", "hyper", "step", "arrays"}``.

        ``arrays`` maps ``"<slot>/<parameter>"`` (e.g. ``"m/W1"``) to a copy of the state array;
        everything else is JSON-able, so a file can keep the arrays as tensors and the rest as JSON.
        """
        return {
            "type": type(self).__name__,
            "hyper": self.hyper(),
            "step": self.step,
            "arrays": {
                f"{slot}/{key}": arr.copy() for slot in self.slots for key, arr in self.state[slot].items()
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict()`` returned; the next ``update`` continues bit-exactly."""
        name = type(self).__name__
        if state.get("type") != name:
            raise InputError(f"{name}.load_state_dict: state is for optimizer {state.get('type')!r}")
        hyper = dict(state.get("hyper", {}))
        unknown = sorted(set(hyper) - set(self.hyper_names))
        if unknown:
            raise InputError(f"{name}: unknown hyperparameters {unknown}; known: {list(self.hyper_names)}")
        step = state.get("step", 0)
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise InputError(f"{name}: step must be an integer >= 0, got {step!r}")
        arrays: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self.slots}
        for full, arr in dict(state.get("arrays", {})).items():
            slot, sep, key = str(full).partition("/")
            if not sep or slot not in arrays or not key:
                raise InputError(f"{name}: unexpected state array {full!r}; slots are {list(self.slots)}")
            arr = np.asarray(arr)
            if arr.dtype.kind != "f":
                raise InputError(f"{name}: state array {full!r} has dtype {arr.dtype}, expected floating")
            arrays[slot][key] = np.array(arr, copy=True, order="C")
        # Validate everything before assigning anything, with each attribute's own check.
        checked = {k: getattr(type(self), k).check(k, v) for k, v in hyper.items()}
        for k, v in checked.items():
            setattr(self, k, v)
        self.step = int(step)
        for slot in self.slots:
            self.state[slot].clear()
            self.state[slot].update(arrays[slot])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper().items())
        return f"{type(self).__name__}({args})"

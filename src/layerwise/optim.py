"""Optimizers with the book's API: ``optimizer.update(params, grads)``.

``params`` and ``grads`` are mappings name -> ndarray (``model.params``, ``model.gradient(x, t)``).
Every optimizer updates the parameter arrays *in place*: the arrays in ``params`` are modified
and no entry is rebound, so a layer holding the same array sees the new values (the book's nets
keep two references to each weight, and a rebinding update silently stops training).

Conventions shared by all optimizers:

- State (velocity, squared-gradient sums, moments) is allocated on a parameter's first update,
  with the parameter's shape and dtype; float32 parameters keep float32 state.
- Hyperparameters are stored as Python floats and every step runs through ``out=`` / in-place
  ufuncs into a scratch buffer that is reused across steps, so float32 stays float32 (NumPy 2
  treats Python floats as "weak" scalars) and a step allocates no parameter-sized array.
- ``weight_decay`` adds L2 decay to the gradient, g ← g + λ·p, as ``torch.optim`` does.
- ``state_dict()`` / ``load_state_dict()`` capture everything needed to resume bit-exactly.

Where the book's formula and PyTorch's differ, this module follows PyTorch (see ``Nesterov``
and ``Adam``); the tests check every optimizer step against ``torch.optim``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from ._threads import SPLIT_MIN_ELEMENTS, in_parts
from .errors import InputError, ShapeError, StateError

__all__ = [
    "LR_SCHEDULES",
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "Adam",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "RMSprop",
    "lr_factor",
    "make_optimizer",
    "optimizer_from_state_dict",
]


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
    so ``optimizer.lr = np.float64(0.1)`` (a learning-rate schedule) cannot upcast a step."""

    def __init__(self, check: Callable[[str, object], float]) -> None:
        self.check = check

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        return self if obj is None else obj.__dict__[self.name]

    def __set__(self, obj: object, value: object) -> None:
        obj.__dict__[self.name] = self.check(self.name, value)


# -- the optimizers ----------------------------------------------------------------------

class Optimizer:
    """Base class: validation, lazily allocated per-parameter state, scratch buffers,
    weight decay and ``state_dict``. Subclasses name their state arrays in ``slots`` and
    implement ``_apply(p, g, state, s)`` for one parameter ``p`` with gradient ``g``,
    its state arrays ``state[slot]`` and a scratch array ``s`` of p's shape and dtype; it must
    be elementwise (a large parameter is updated in slices, concurrently)."""

    slots: ClassVar[tuple[str, ...]] = ()
    #: Constructor arguments that ``state_dict()["hyper"]`` records.
    hyper_names: ClassVar[tuple[str, ...]] = ("lr", "weight_decay")

    lr = _Hyper(_positive)
    weight_decay = _Hyper(_non_negative)

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr = lr
        self.weight_decay = weight_decay
        #: Number of ``update`` calls so far (Adam's t).
        self.step = 0
        #: slot -> parameter name -> state array, e.g. ``state["m"]["W1"]``.
        self.state: dict[str, dict[str, np.ndarray]] = {slot: {} for slot in self.slots}
        # dtype -> flat scratch arrays; a parameter's scratch is a reshaped view of a prefix,
        # so one buffer (the size of the largest parameter) serves every parameter.
        self._scratch: dict[tuple[np.dtype, int], np.ndarray] = {}
        # parameter name -> (parameter, its state arrays, its scratch); see update().
        self._plans: dict[str, tuple] = {}

    def _apply(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], s: np.ndarray) -> None:
        raise NotImplementedError

    def _begin_step(self) -> None:
        """Per-step scalars (Adam's bias corrections), computed once per ``update``."""

    # -- update --------------------------------------------------------------------------
    def update(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """One optimization step on every parameter in ``params``, in place.

        A parameter whose gradient is ``None`` is left alone (frozen). Everything is checked
        before anything is changed, so a bad gradient leaves the parameters and state as they were.

        Speed: a parameter's checks, state arrays and scratch are looked up once and kept in a
        plan that is reused while the same array comes back with the same state arrays; then a
        step costs the update's arithmetic and a shape check (on the 784-50-10 net the generic
        path was a third of the non-matrix-product time of a step).
        """
        work = []
        for key in params:
            p = params[key]
            if key not in grads:
                raise InputError(f"{type(self).__name__}: no gradient for parameter {key!r}")
            g = grads[key]
            if g is None:
                continue
            plan = self._plans.get(key)
            if plan is None or plan[0] is not p or not self._plan_is_current(key, plan):
                self._check_param(key, p)
                plan = None
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
        decay = self.weight_decay
        for key, p, g, plan in work:
            if plan is None:
                plan = self._plans[key] = self._make_plan(key, p)
            _, state, s = plan
            if decay:
                # L2 decay, g + λ·p, into a second scratch: the caller's gradient is not ours to change.
                gd = self._scratch_for(p, 1)
                np.multiply(p, decay, out=gd)
                gd += g
                g = gd
            self._apply_in_parts(p, g, state, s)

    def _apply_in_parts(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], s: np.ndarray) -> None:
        """``_apply``, for a large parameter as slices of the flattened arrays on the threads
        layerwise owns (``_threads.in_parts``; Adam on SimpleConvNet's 432,000-weight layer
        takes ~1 ms on one core). Every optimizer's ``_apply`` is elementwise, so slices give
        the same numbers; a non-contiguous array (whose flat view would be a copy) is not split."""
        if p.size < SPLIT_MIN_ELEMENTS or not all(a.flags.c_contiguous for a in (p, g, s, *state.values())):
            self._apply(p, g, state, s)
            return
        p, g, s = p.reshape(-1), g.reshape(-1), s.reshape(-1)
        flat = {slot: a.reshape(-1) for slot, a in state.items()}
        in_parts(lambda part: self._apply(p[part], g[part], {k: a[part] for k, a in flat.items()}, s[part]), p.size)

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

    def _plan_is_current(self, key: str, plan: tuple) -> bool:
        """The plan's state arrays are still this optimizer's (load_state_dict or a user may
        have replaced them) and the parameter is still writable."""
        if not plan[0].flags.writeable:
            return False
        state = plan[1]
        for slot in self.slots:
            if self.state[slot].get(key) is not state[slot]:
                return False
        return True

    def _make_plan(self, key: str, p: np.ndarray) -> tuple:
        state = {}
        for slot in self.slots:
            arr = self.state[slot].get(key)
            if arr is None:
                arr = self.state[slot][key] = np.zeros(p.shape, dtype=p.dtype)
            state[slot] = arr
        return p, state, self._scratch_for(p, 0)

    def _scratch_for(self, p: np.ndarray, which: int) -> np.ndarray:
        """A scratch array of p's shape and dtype: a view of a prefix of one flat buffer per
        dtype (and ``which``), so the largest parameter's size serves every parameter. A
        plan keeps its view, which stays valid when a larger parameter replaces the buffer."""
        buf = self._scratch.get((p.dtype, which))
        if buf is None or buf.size < p.size:
            buf = self._scratch[(p.dtype, which)] = np.empty(p.size, dtype=p.dtype)
        return buf[: p.size].reshape(p.shape)

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
        # Validate everything before assigning anything.
        checked = {k: _HYPER_CHECKS[k](k, v) for k, v in hyper.items()}
        for k, v in checked.items():
            setattr(self, k, v)
        self.step = int(step)
        for slot in self.slots:
            self.state[slot].clear()
            self.state[slot].update(arrays[slot])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent: p ← p − lr·g.  Same as ``torch.optim.SGD(lr)``."""

    def __init__(self, lr: float = 0.01, *, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)

    def _apply(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], s: np.ndarray) -> None:
        np.multiply(g, self.lr, out=s)
        p -= s


class Momentum(Optimizer):
    """Momentum SGD, the book's form: v ← μ·v − lr·g;  p ← p + v   (v starts at 0).

    With a constant lr this is ``torch.optim.SGD(lr, momentum=μ)`` up to rounding (PyTorch
    keeps b = −v/lr instead of v; when a schedule changes lr, the book's v keeps the velocity in
    parameter units, PyTorch's b in gradient units). ``v`` is the book's attribute: ``v["W1"]``.
    """

    slots = ("v",)
    hyper_names = ("lr", "momentum", "weight_decay")
    momentum = _Hyper(_fraction)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, *, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.momentum = momentum

    v = property(lambda self: self.state["v"], doc="The velocity of each parameter.")

    def _apply(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], s: np.ndarray) -> None:
        v = state["v"]
        v *= self.momentum
        np.multiply(g, self.lr, out=s)
        v -= s
        p += v


class Nesterov(Momentum):
    """Nesterov's accelerated gradient (Sutskever et al. 2013, in the form PyTorch uses):

        v ← μ·v − lr·g;   p ← p + μ·v − lr·g      (v starts at 0)

    which is ``torch.optim.SGD(lr, momentum=μ, nesterov=True)``. Expanded with the previous
    velocity: p ← p + μ²·v_old − (1 + μ)·lr·g.

    The book's ``Nesterov.update`` writes ``p += μ²·v − (1 + μ)·lr·g`` with the *updated*
    velocity v, i.e. p ← p + μ³·v_old − (1 + μ + μ²)·lr·g: a different (and not Nesterov's)
    method. layerwise uses the correct form, so its numbers match PyTorch, not the book's figure.
    """

    def _apply(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], s: np.ndarray) -> None:
        v = state["v"]
        v *= self.momentum
        np.multiply(g, self.lr, out=s)
        v -= s
        p -= s  # − lr·g
        np.multiply(v, self.momentum, out=s)
        p += s  # + μ·v


class AdaGrad(Optimizer):
    """AdaGrad: h ← h + g²;  p ← p − lr·g / (√h + eps).

    The book's formula with its eps = 1e-7; equals ``torch.optim.Adagrad(lr, eps=eps)``
    (PyTorch's own default eps is 1e-10). ``h`` is the book's attribute.
    """

    slots = ("h",)
    hyper_names = ("lr", "eps", "weight_decay")
    eps = _Hyper(_positive)

    def __init__(self, lr: float = 0.01, *, eps: float = 1e-7, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.eps = eps

    h = property(lambda self: self.state["h"], doc="The running sum of squared gradients.")

    def _apply(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], s: np.ndarray) -> None:
        h = state["h"]
        np.multiply(g, g, out=s)
        h += s
        _scaled_step(p, g, h, self.eps, self.lr, s)


class RMSprop(Optimizer):
    """RMSprop: h ← ρ·h + (1 − ρ)·g²;  p ← p − lr·g / (√h + eps),   ρ = decay_rate.

    The book's formula with its eps = 1e-7; equals ``torch.optim.RMSprop(lr, alpha=ρ, eps=eps)``
    (PyTorch's own default eps is 1e-8). ``h`` is the book's attribute.
    """

    slots = ("h",)
    hyper_names = ("lr", "decay_rate", "eps", "weight_decay")
    decay_rate = _Hyper(_fraction)
    eps = _Hyper(_positive)

    def __init__(
        self, lr: float = 0.01, decay_rate: float = 0.99, *, eps: float = 1e-7, weight_decay: float = 0.0
    ) -> None:
        super().__init__(lr, weight_decay)
        self.decay_rate = decay_rate
        self.eps = eps

    h = property(lambda self: self.state["h"], doc="The running average of squared gradients.")

    def _apply(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], s: np.ndarray) -> None:
        h = state["h"]
        h *= self.decay_rate
        np.multiply(g, g, out=s)
        s *= 1.0 - self.decay_rate
        h += s
        _scaled_step(p, g, h, self.eps, self.lr, s)


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) as ``torch.optim.Adam`` defines it, step t = 1, 2, ...:

        m ← β1·m + (1 − β1)·g;   v ← β2·v + (1 − β2)·g²
        p ← p − lr·m̂ / (√v̂ + eps),   m̂ = m / (1 − β1ᵗ),  v̂ = v / (1 − β2ᵗ),   eps = 1e-8

    The book writes p ← p − lr_t·m / (√v + 1e-7) with lr_t = lr·√(1 − β2ᵗ) / (1 − β1ᵗ)
    (Kingma & Ba's "efficient" form), which is this formula with eps = 1e-7 / √(1 − β2ᵗ):
    eps added to the uncorrected √v, so it damps the first steps more (≈3e-6 at t = 1).
    The steps differ only where √v̂ is tiny; layerwise follows PyTorch so its numbers can be
    checked against it. ``m``, ``v`` and ``iter`` (= ``step``) are the book's attributes.
    """

    slots = ("m", "v")
    hyper_names = ("lr", "beta1", "beta2", "eps", "weight_decay")
    beta1 = _Hyper(_fraction)
    beta2 = _Hyper(_fraction)
    eps = _Hyper(_positive)

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        *,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr, weight_decay)
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps

    m = property(lambda self: self.state["m"], doc="First-moment estimates.")
    v = property(lambda self: self.state["v"], doc="Second-moment estimates.")
    iter = property(lambda self: self.step, doc="The book's name for the step count t.")

    def _begin_step(self) -> None:
        # Python floats: a NumPy float64 scalar here would upcast float32 parameters.
        t = self.step
        self._step_size = self.lr / (1.0 - self.beta1**t)
        self._sqrt_bc2 = math.sqrt(1.0 - self.beta2**t)

    def _apply(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], s: np.ndarray) -> None:
        m, v = state["m"], state["v"]
        np.subtract(g, m, out=s)  # m += (1 − β1)(g − m), PyTorch's lerp
        s *= 1.0 - self.beta1
        m += s
        v *= self.beta2
        np.multiply(g, g, out=s)
        s *= 1.0 - self.beta2
        v += s
        np.sqrt(v, out=s)  # denominator √v / √(1 − β2ᵗ) + eps
        s /= self._sqrt_bc2
        s += self.eps
        np.divide(m, s, out=s)
        s *= self._step_size
        p -= s


def _scaled_step(p: np.ndarray, g: np.ndarray, h: np.ndarray, eps: float, lr: float, s: np.ndarray) -> None:
    """p ← p − lr·g / (√h + eps), through the scratch ``s`` (AdaGrad and RMSprop)."""
    np.sqrt(h, out=s)
    s += eps
    np.divide(g, s, out=s)
    s *= lr
    p -= s


_HYPER_CHECKS: dict[str, Callable[[str, object], float]] = {
    "lr": _positive,
    "weight_decay": _non_negative,
    "momentum": _fraction,
    "decay_rate": _fraction,
    "beta1": _fraction,
    "beta2": _fraction,
    "eps": _positive,
}

#: CLI names -> optimizer classes.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adam": Adam,
}


def make_optimizer(name: str, **kwargs: Any) -> Optimizer:
    """Build an optimizer by its CLI name (case-insensitive), e.g. ``make_optimizer("adam", lr=1e-3)``."""
    cls = OPTIMIZERS.get(str(name).lower())
    if cls is None:
        raise InputError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise InputError(f"optimizer {name!r} takes no {', '.join(unknown)}; it takes {', '.join(accepted)}")
    return cls(**kwargs)


def optimizer_from_state_dict(state: Mapping[str, Any]) -> Optimizer:
    """Rebuild an optimizer, with its state, from ``Optimizer.state_dict()``."""
    by_type = {cls.__name__: cls for cls in OPTIMIZERS.values()}
    cls = by_type.get(state.get("type"))  # type: ignore[arg-type]
    if cls is None:
        raise InputError(f"unknown optimizer type {state.get('type')!r}; known: {', '.join(by_type)}")
    hyper = dict(state.get("hyper", {}))
    unknown = sorted(set(hyper) - set(cls.hyper_names))
    if unknown:
        raise InputError(f"{cls.__name__}: unknown hyperparameters {unknown}; known: {list(cls.hyper_names)}")
    opt = cls(**hyper)
    opt.load_state_dict(state)
    return opt


# -- learning-rate schedules -------------------------------------------------------------

#: Names the Trainer and ``layerwise train --lr-schedule`` accept.
LR_SCHEDULES = ("constant", "cosine")


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate for step ``step`` (0-based) of ``total_steps``.

    constant: 1.
    cosine:   ½·(1 + cos(π·step / total_steps)), from 1 at the first step down towards 0 at
              the last: ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total_steps)``
              stepped once per batch. It is a closed form of the step number, so a resumed
              run needs no scheduler state to continue on the same curve.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    raise InputError(f"unknown learning-rate schedule {schedule!r}; choose from {', '.join(LR_SCHEDULES)}")

"""The update rules as formulas: SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam.

Each class states its formula, where it comes from (the book's section, the paper) and the
``torch.optim`` optimizer it equals, and implements it in ``_apply`` for one parameter:
in-place ufuncs through the scratch ``s``, so float32 stays float32 and a step allocates
nothing. Validation, state, weight decay and ``state_dict`` are the base class's (``base``).
At the end, the rules by name: ``OPTIMIZERS`` (the CLI's names), ``make_optimizer`` and
``optimizer_from_state_dict``.

Where the book's formula and PyTorch's differ, layerwise follows PyTorch (see ``Nesterov``
and ``Adam``); the tests check every optimizer step against ``torch.optim``.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import InputError
from .base import Optimizer, _fraction, _Hyper, _positive

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "Adam",
    "Momentum",
    "Nesterov",
    "RMSprop",
    "make_optimizer",
    "optimizer_from_state_dict",
]


class SGD(Optimizer):
    """Stochastic gradient descent: p ← p − lr·g  (the book's §6.1.2).  Same as ``torch.optim.SGD(lr)``."""

    def __init__(self, lr: float = 0.01, *, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)

    def _apply(self, p: np.ndarray, g: np.ndarray, state: dict[str, np.ndarray], s: np.ndarray) -> None:
        np.multiply(g, self.lr, out=s)
        p -= s


class Momentum(Optimizer):
    """Momentum SGD, the book's form (§6.1.4): v ← μ·v − lr·g;  p ← p + v   (v starts at 0).

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

    The book's formula (§6.1.5) with its eps = 1e-7; equals ``torch.optim.Adagrad(lr, eps=eps)``
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

    The book's formula (its ``common/optimizer.py``; named in §6.1.5) with its eps = 1e-7;
    equals ``torch.optim.RMSprop(lr, alpha=ρ, eps=eps)`` (PyTorch's own default eps is 1e-8).
    ``h`` is the book's attribute.
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

    The book (§6.1.6 and its ``common/optimizer.py``) writes p ← p − lr_t·m / (√v + 1e-7)
    with lr_t = lr·√(1 − β2ᵗ) / (1 − β1ᵗ) (Kingma & Ba's "efficient" form), which is this
    formula with eps = 1e-7 / √(1 − β2ᵗ):
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


# -- the rules by name ---------------------------------------------------------------------

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

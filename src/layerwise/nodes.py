"""Computational-graph nodes: the add and multiply nodes of the book's chapter 5, and the
unary nodes that take Sigmoid apart (x -> *(-1) -> exp -> +1 -> 1/x).

Each node remembers what its backward needs and nothing else. Inputs may be Python numbers
(the shopping examples) or arrays; when an input was broadcast, its gradient is summed back
to its shape, because a broadcast copy of x contributes to the loss once per copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import StateError
from .functional import sum_to_shape

__all__ = [
    "Add",
    "AddConst",
    "AddLayer",
    "Exp",
    "Mul",
    "MulConst",
    "MulLayer",
    "Node",
    "Reciprocal",
]

Value = Any  # a Python number or an ndarray


def _grad_like(g: Value, x: Value) -> Value:
    """Shape the gradient ``g`` like the input ``x``: summed over broadcast axes, and a
    Python number when ``x`` was one (so the book's scalar examples print plain floats)."""
    if isinstance(x, np.ndarray):
        return sum_to_shape(g, x.shape)
    if np.ndim(g) == 0:
        return g.item() if isinstance(g, np.generic | np.ndarray) else g
    return sum_to_shape(g, ()).item()


class Node:
    """Base of every graph node; subclasses set ``name`` (the label drawn in a graph)."""

    name = "?"
    n_inputs = 1

    def _cached(self, *attrs: str) -> tuple:
        values = tuple(getattr(self, a, None) for a in attrs)
        if any(v is None for v in values):
            raise StateError(f"{type(self).__name__}.backward called before forward")
        return values

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Mul(Node):
    """Multiply node. forward: out = x * y.  backward: dx = dout * y, dy = dout * x
    (the inputs swap places: the book's "reverse the inputs" rule)."""

    name = "×"
    n_inputs = 2

    def __init__(self) -> None:
        self.x: Value = None
        self.y: Value = None

    def forward(self, x: Value, y: Value) -> Value:
        self.x, self.y = x, y
        return x * y

    def backward(self, dout: Value = 1.0) -> tuple[Value, Value]:
        x, y = self._cached("x", "y")
        return _grad_like(dout * y, x), _grad_like(dout * x, y)


class Add(Node):
    """Add node. forward: out = x + y.  backward: dx = dout, dy = dout (passed through)."""

    name = "+"
    n_inputs = 2

    def __init__(self) -> None:
        self.x: Value = None
        self.y: Value = None

    def forward(self, x: Value, y: Value) -> Value:
        self.x, self.y = x, y
        return x + y

    def backward(self, dout: Value = 1.0) -> tuple[Value, Value]:
        x, y = self._cached("x", "y")
        # dout * 1 is a new object: the caller's dout is never handed back to be mutated.
        return _grad_like(dout * 1, x), _grad_like(dout * 1, y)


# The book's names for the same nodes (chapter 5.4).
MulLayer = Mul
AddLayer = Add


class MulConst(Node):
    """Multiply by a constant c. forward: out = c * x.  backward: dx = c * dout."""

    def __init__(self, c: float) -> None:
        self.c = c
        self.name = f"×{c:g}" if c != -1 else "×(-1)"
        self.x: Value = None

    def forward(self, x: Value) -> Value:
        self.x = x
        return x * self.c

    def backward(self, dout: Value = 1.0) -> Value:
        self._cached("x")
        return dout * self.c

    def __repr__(self) -> str:
        return f"MulConst({self.c!r})"


class AddConst(Node):
    """Add a constant c. forward: out = x + c.  backward: dx = dout."""

    def __init__(self, c: float) -> None:
        self.c = c
        self.name = f"+{c:g}"
        self.x: Value = None

    def forward(self, x: Value) -> Value:
        self.x = x
        return x + self.c

    def backward(self, dout: Value = 1.0) -> Value:
        self._cached("x")
        return dout * 1

    def __repr__(self) -> str:
        return f"AddConst({self.c!r})"


class Exp(Node):
    """Exponential node. forward: out = exp(x).  backward: dx = dout * exp(x) = dout * out."""

    name = "exp"

    def __init__(self) -> None:
        self.out: Value = None

    def forward(self, x: Value) -> Value:
        self.out = np.exp(x) if isinstance(x, np.ndarray) else float(np.exp(x))
        return self.out

    def backward(self, dout: Value = 1.0) -> Value:
        (out,) = self._cached("out")
        return dout * out


class Reciprocal(Node):
    """Reciprocal node. forward: y = 1/x.  backward: dx = dout * (-1/x^2) = -dout * y^2."""

    name = "/"

    def __init__(self) -> None:
        self.out: Value = None

    def forward(self, x: Value) -> Value:
        self.out = 1 / x
        return self.out

    def backward(self, dout: Value = 1.0) -> Value:
        (out,) = self._cached("out")
        return -dout * out * out

"""The layer contract every layer follows (docs/architecture.md says where each kind of code goes).

- ``forward(x, train=True)`` returns the output and caches only what ``backward`` needs.
- ``backward(dout)`` returns ``dx`` and fills ``grads``; it never writes into ``dout`` nor
  into anything ``forward`` returned.
- ``params`` and ``grads`` are dicts with the same keys; a layer without parameters has
  empty ones.
"""

from __future__ import annotations

import numpy as np

from ..checks import to_float_array
from ..errors import StateError


def book_attribute(store: str, key: str) -> property:
    """The book's attribute name for one entry of a layer's ``params``, ``grads`` or
    ``buffers`` (``Affine.W`` is ``params["W"]``, ``dW`` is ``grads["W"]``): one array, never
    two copies, so an optimizer updating ``params`` in place updates what the book's name shows."""
    return property(
        lambda self: getattr(self, store)[key],
        lambda self, value: getattr(self, store).__setitem__(key, value),
        doc=f"The book's name for {store}[{key!r}].",
    )


class Layer:
    """Base class: holds ``params``/``grads`` and the checks every layer shares."""

    #: Loss layers take labels: ``forward(x, t) -> float``, ``backward(dout=1.0) -> dx``.
    is_loss = False

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        # Arrays that are state but not trained (BatchNormalization's running statistics);
        # saved with the model, never touched by an optimizer.
        self.buffers: dict[str, np.ndarray] = {}

    @property
    def name(self) -> str:
        return type(self).__name__

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        return self.forward(x, train)

    def _input(self, x: object) -> np.ndarray:
        if type(x) is np.ndarray and x.dtype.kind == "f":
            return x  # the common case, without a call: it runs per layer per step
        return to_float_array(x, self.name)

    def _need(self, value: object) -> None:
        """Raise a clear error when backward runs before forward filled the cache."""
        if value is None:
            raise StateError(f"{self.name}.backward called before forward")

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the output for an input of ``input_shape`` (batch axis included)."""
        return input_shape

    def workspace_size(self, input_shape: tuple[int, ...]) -> int:
        """Number of values forward keeps in cache for an input of ``input_shape`` (the output,
        by default; a Convolution's input and output); predict sizes its inference chunks by it."""
        return int(np.prod(self.output_shape(input_shape)))

    def config(self) -> dict:
        """JSON-able constructor arguments (no arrays) that rebuild this layer's structure."""
        return {}

    @classmethod
    def from_config(cls, config: dict, dtype: np.dtype | str = np.float32) -> Layer:
        """Build a layer of the right shapes from ``config()``; parameters are loaded after.

        Its arrays, and those its constructor makes, are ``np.zeros``, which costs no memory
        until written: ``build_model`` can then refuse a file's config asking for a layer of
        gigabytes before the layer costs anything."""
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{self.name}({args})"

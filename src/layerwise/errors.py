"""The library's own error types.

Every error layerwise raises on purpose derives from :class:`LayerwiseError`, so a caller can
catch all of them at once; each also derives from the built-in type a Python user would expect
(``ValueError`` for bad shapes and values, ``RuntimeError`` for calls in the wrong order), so
``except ValueError`` keeps working.
"""

from __future__ import annotations


class LayerwiseError(Exception):
    """Base class of every error layerwise raises on purpose."""


class ShapeError(LayerwiseError, ValueError):
    """An array's shape does not fit the layer or model it was given to."""


class InputError(LayerwiseError, ValueError):
    """An input value is unusable: NaN/inf, wrong dtype, label out of range, empty batch."""


class StateError(LayerwiseError, RuntimeError):
    """A method was called in the wrong order (e.g. ``backward`` before ``forward``)."""


class FormatError(LayerwiseError, ValueError):
    """A file is malformed, truncated, or not of the format it claims to be."""


class UnsafePickleError(FormatError):
    """A pickle asked for a global that the restricted unpickler does not admit."""


class DownloadError(LayerwiseError, OSError):
    """Every mirror failed; the message lists what was tried and why each failed."""


class TrainingDiverged(LayerwiseError, RuntimeError):
    """The loss became NaN or infinite during training (or grew far past its start).
    ``step`` (1-based, counted over the run) and ``loss`` say where and what."""

    def __init__(self, message: str, step: int | None = None, loss: float | None = None) -> None:
        super().__init__(message)
        self.step, self.loss = step, loss


class GraphvizNotFoundError(LayerwiseError, FileNotFoundError):
    """Graphviz's ``dot`` program is not installed (needed for SVG and PNG, not for DOT)."""


class GraphvizError(LayerwiseError, RuntimeError):
    """Graphviz's ``dot`` program ran and failed."""


class LayerwiseWarning(UserWarning):
    """Something runs, as the book's code would, but probably not as the user meant."""

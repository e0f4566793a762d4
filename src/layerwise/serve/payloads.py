"""What goes over HTTP: request fields checked with errors that name the field and the
offending value (:class:`RequestError`), and NumPy values turned into JSON the page draws.

An array becomes its shape, its dtype, its short text (``format_value``), its first numbers,
a heat map (a 2-D grid, block-averaged down to at most ``HEAT_MAX`` cells a side) and, up to
``FULL_MAX`` elements or when asked, all its values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..graph.engine import format_value

__all__ = [
    "ACTIVATION_CHANNELS", "FULL_MAX", "HEAT_MAX", "RequestError", "activation_json", "finite", "float_list",
    "image_field", "int_field", "json_body", "nested_list", "prediction_json", "value_json",
]

#: Arrays up to this many elements are sent whole; larger ones only when asked.
FULL_MAX = 4096
#: A heat map has at most this many rows and columns.
HEAT_MAX = 160
#: The most numbers a short view shows.
FIRST = 8
#: Of a convolution's channels, the first this many are drawn.
ACTIVATION_CHANNELS = 8


class RequestError(Exception):
    """A request the server refuses: ``status`` (4xx) and a message naming what was wrong."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def json_body(raw: bytes) -> dict:
    """The request body as a JSON object, or RequestError 400 saying what is wrong with it."""
    if not raw.strip():
        raise RequestError("the request body is empty; send a JSON object", 400)
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise RequestError("the request body is not UTF-8 text; send a JSON object", 400) from None
    except json.JSONDecodeError as exc:
        raise RequestError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}", 400) from None
    except RecursionError:
        raise RequestError("malformed JSON: nested too deeply", 400) from None
    except ValueError as exc:  # an integer of more digits than Python converts (4300)
        raise RequestError(f"unreadable JSON: {exc}", 400) from None
    if not isinstance(body, dict):
        raise RequestError(f"the body must be a JSON object, got {type(body).__name__}", 400)
    return body


def _number_kind(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def image_field(body: dict, height: int, width: int, name: str = "image") -> np.ndarray:
    """``body[name]``: ``height`` rows of ``width`` numbers in [0, 1], as a float64 array."""
    if name not in body:
        raise RequestError(f"missing field {name!r}: {height} rows of {width} numbers in [0, 1]")
    rows = body[name]
    expected = f"{height} rows of {width} numbers in [0, 1] (height × width of the model's input)"
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise RequestError(f"field {name!r} must be a list of rows: {expected}")
    if len(rows) != height or any(len(r) != width for r in rows):
        got = f"{len(rows)} rows" + (f" of {sorted({len(r) for r in rows})} numbers" if rows else "")
        raise RequestError(f"field {name!r} has the wrong shape: got {got}, expected {expected}")
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if not _number_kind(v):
                raise RequestError(f"field {name!r}: row {i}, column {j} is {json.dumps(v)}, not a number")
            if isinstance(v, int) and not 0 <= v <= 1:  # checked here: it may be too large for a float
                shown = str(v) if len(str(v)) <= 20 else f"an integer of {len(str(abs(v)))} digits"
                raise RequestError(f"field {name!r}: row {i}, column {j} is {shown}, outside [0, 1] "
                                   "(light strokes on dark: 0 is background, 1 is ink)")
    image = np.array(rows, dtype=np.float64)
    bad = ~np.isfinite(image)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raise RequestError(f"field {name!r}: row {i}, column {j} is {image[i, j]}; values must be finite, in [0, 1]")
    outside = (image < 0) | (image > 1)
    if outside.any():
        i, j = (int(k) for k in np.argwhere(outside)[0])
        raise RequestError(f"field {name!r}: row {i}, column {j} is {image[i, j]:g}, outside [0, 1] "
                           "(light strokes on dark: 0 is background, 1 is ink)")
    return image


def int_field(body: dict, name: str, low: int, high: int, default: int | None = None) -> int:
    """``body[name]`` as a whole number in [low, high]; ``default`` when absent (if given)."""
    if name not in body or body[name] is None:
        if default is None:
            raise RequestError(f"missing field {name!r}: a whole number from {low} to {high}")
        return default
    value = body[name]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RequestError(f"field {name!r} must be a whole number from {low} to {high}, got {json.dumps(value)}")
    return value


# -- values to JSON ------------------------------------------------------------------------------

def finite(x: float) -> float | None:
    """JSON has no NaN or infinity: such a number is sent as null."""
    return x if math.isfinite(x) else None


def float_list(a: np.ndarray) -> list:
    """An array's values, flat, as JSON numbers (NaN and infinity as null)."""
    values = np.asarray(a).astype(np.float64).reshape(-1)
    if np.isfinite(values).all():
        return values.tolist()
    return [finite(v) for v in values.tolist()]


def nested_list(a: np.ndarray) -> list:
    """A 2-D array as rows of JSON numbers (NaN and infinity as null)."""
    a = np.asarray(a, dtype=np.float64)
    if np.isfinite(a).all():
        return a.tolist()
    return [[finite(v) for v in row] for row in a.tolist()]


def prediction_json(explanation: Any, labels: Sequence[str]) -> dict:
    """``POST /api/predict``'s answer for an :class:`~layerwise.serve.explain.Explanation`:
    the probabilities, the top 3 with their labels, the explained class, its input gradient and
    every layer's activations."""
    p = explanation.probabilities
    top = np.argsort(-p, kind="stable")[:3]
    return {
        "probabilities": float_list(p),
        "top": [{"class": int(k), "label": labels[k], "probability": finite(float(p[k]))} for k in top],
        "class": explanation.chosen,
        "input_gradient": nested_list(explanation.input_gradient),
        "activations": [activation_json(a.layer, a.kind, a.values, a.mask) for a in explanation.activations],
    }


def activation_json(layer: str, kind: str, values: np.ndarray, mask: np.ndarray | None) -> dict:
    """One layer's output for one image, as the Draw page shows it: a convolution's first
    ``ACTIVATION_CHANNELS`` channels (``shown``), ReLU's mask, and the mask's count over all."""
    shown = values[:ACTIVATION_CHANNELS] if values.ndim == 3 else values
    return {"layer": layer, "kind": kind, "shape": list(values.shape), "shown": list(shown.shape),
            "values": float_list(shown),
            "mask": None if mask is None else mask[: shown.shape[0]].reshape(-1).tolist() if values.ndim == 3
            else mask.reshape(-1).tolist(),
            "masked": None if mask is None else int(mask.sum())}


def _grid(a: np.ndarray) -> np.ndarray:
    """An array as a 2-D grid for a heat map: (n,) is one row; (N, D) as it is; images
    (N, C, H, W) as N rows of their first ``ACTIVATION_CHANNELS`` channels side by side, so that
    each image and channel still looks like one; other shapes as N rows."""
    if a.ndim == 1:
        return a.reshape(1, -1)
    if a.ndim == 2:
        return a
    if a.ndim == 4:
        n, c, h, w = a.shape
        c = min(c, ACTIVATION_CHANNELS)
        return a[:, :c].transpose(0, 2, 1, 3).reshape(n * h, c * w)
    return a.reshape(a.shape[0], -1)


def _shrink(grid: np.ndarray, limit: int = HEAT_MAX) -> np.ndarray:
    """Block means, so that neither side of the grid exceeds ``limit``."""
    rows, cols = grid.shape
    fr, fc = math.ceil(rows / limit), math.ceil(cols / limit)
    if fr == 1 and fc == 1:
        return grid
    pad_r, pad_c = (-rows) % fr, (-cols) % fc
    padded = np.pad(grid, ((0, pad_r), (0, pad_c)), constant_values=np.nan)
    with np.errstate(invalid="ignore"):
        return np.nanmean(padded.reshape(padded.shape[0] // fr, fr, padded.shape[1] // fc, fc), axis=(1, 3))


def value_json(value: Any, full: bool = False) -> dict | None:
    """A value as the page shows it: a scalar's number and text; an array's shape, dtype, text,
    first numbers, heat map (``heat``: rows, cols, values, min, max) and all its values when
    it has at most ``FULL_MAX`` elements or ``full`` is true. None stays None."""
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return {"kind": "scalar", "value": bool(value), "text": str(bool(value))}
    if not isinstance(value, np.ndarray) or value.ndim == 0:
        number = float(np.asarray(value))
        return {"kind": "scalar", "value": finite(number), "text": format_value(value)}
    a = value.astype(np.float64) if value.dtype.kind in "biuf" else value
    flat = a.reshape(-1)
    out: dict[str, Any] = {
        "kind": "array", "shape": list(value.shape), "dtype": str(value.dtype), "size": int(value.size),
        "text": format_value(value), "first": float_list(flat[:FIRST]),
    }
    if value.size:
        grid = _shrink(_grid(a))
        good = flat[np.isfinite(flat)]
        out["heat"] = {"rows": int(grid.shape[0]), "cols": int(grid.shape[1]), "values": float_list(grid),
                       "min": float(good.min()) if good.size else 0.0,
                       "max": float(good.max()) if good.size else 0.0,
                       "shrunk": grid.shape != _grid(a).shape}
    if full or value.size <= FULL_MAX:
        out["values"] = float_list(flat)
    return out

"""Pieces the model-using commands share."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..cpu import ENV_VAR
from ..io import load_checkpoint, save_png


def _thread_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of threads, at least 1; got {text!r}")
    return n


def add_threads_option(p: argparse.ArgumentParser) -> None:
    """``--threads N``: the command's one thread setting (``main`` applies it before running)."""
    p.add_argument("--threads", type=_thread_count, default=None, metavar="N",
                   help=f"compute on N threads, a fixed number (default: {ENV_VAR} if set, else the usable "
                   "cores, given up to other processes while they need them)")


def load_model_file(path: Path) -> tuple:
    """The model in a layerwise model file and what it was trained on (dataset, input shape)."""
    checkpoint = load_checkpoint(path)
    meta = dict(checkpoint.state or {})
    meta.setdefault("input_shape", None)
    meta.setdefault("dataset", None)
    return checkpoint.model, meta


def image_shape(meta: dict) -> tuple[int, int, int]:
    """(channels, height, width) of the model's input images; flat inputs are square images."""
    shape = meta.get("input_shape")
    if not shape:
        raise ValueError("the model file does not record its input shape")
    if len(shape) == 3:
        return tuple(shape)
    side = math.isqrt(shape[0])
    return (1, side, side)

__all__ = ["add_threads_option", "image_shape", "load_model_file", "save_png"]

"""``layerwise predict``: classify image files with a trained model."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..functional import softmax
from ._common import add_threads_option, image_shape, load_model_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="classify PNG/JPEG images with a model, printing the top-3 classes",
        description="Classify image files. Each image is converted to grayscale, resized to the "
        "model's input size, and inverted when its background is light (the training digits "
        "are light strokes on a dark background), then scaled like the training data. Prints "
        "the top-3 classes with their probabilities.",
    )
    p.add_argument("model", type=Path, help="a model file (model.safetensors)")
    p.add_argument("images", type=Path, nargs="+", metavar="IMAGE")
    p.add_argument("--no-invert", action="store_true", help="never invert light-background images")
    add_threads_option(p)
    p.set_defaults(func=run)


def load_image(path: Path, size: tuple[int, int], invert: str = "auto") -> tuple[np.ndarray, bool]:
    """Grayscale pixels in [0, 1] of shape ``size`` (height, width); True if inverted."""
    from PIL import Image, UnidentifiedImageError  # only when an image is read: keeps CLI start fast


    try:
        with Image.open(path) as img:
            gray = img.convert("L").resize((size[1], size[0]), Image.Resampling.LANCZOS)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"{path}: not an image Pillow can read ({exc})") from None
    except Image.DecompressionBombError as exc:  # a tiny file claiming billions of pixels
        raise InputError(f"{path}: refused, too many pixels ({exc})") from None
    pixels = np.asarray(gray, dtype=np.float64) / 255.0
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    inverted = invert == "auto" and border.mean() > 0.5
    return (1.0 - pixels if inverted else pixels), inverted


def run(args: argparse.Namespace) -> int:

    model, meta = load_model_file(args.model)
    channels, h, w = image_shape(meta)
    for path in args.images:
        pixels, inverted = load_image(path, (h, w), "never" if args.no_invert else "auto")
        x = np.repeat(pixels[None, None], channels, axis=1).astype(model.dtype)
        if len(meta["input_shape"]) == 1:
            x = x.reshape(1, -1)
        probs = softmax(model.predict(x))[0]
        top = np.argsort(probs)[::-1][:3]
        guesses = ", ".join(f"{c} ({probs[c]:.3f})" for c in top)
        print(f"{path}: {guesses}{'  [inverted]' if inverted else ''}")
    return 0

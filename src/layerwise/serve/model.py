"""The model ``layerwise serve`` shows: loaded from a model file given on the command line, or
the default digits model, trained at start from the bundled digits in a fraction of a second.

Model files are only ever opened from the command line (:func:`load_served`), never from a
path a browser sends; they are safetensors and JSON, so nothing is unpickled.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import class_names, load_dataset, load_digits, present_locally
from ..errors import InputError, LayerwiseError
from ..io import load_checkpoint
from ..models import TwoLayerNet
from ..optim import make_optimizer
from ..train import Trainer

__all__ = ["DEFAULT_RECIPE", "ServedModel", "default_model", "load_served"]

#: How the default model is trained at start: the book's two-layer net on the bundled digits.
#: ``layerwise train --hidden 50 --epochs 30`` on the digits trains the same net.
DEFAULT_RECIPE = {"hidden": 50, "optimizer": "adam", "lr": 0.01, "epochs": 30, "batch_size": 100, "seed": 0}


@dataclass
class ServedModel:
    """A model and what the web app needs to know about it."""

    model: Any
    #: Where it came from, as the page says it: a file path, or how the default was trained.
    source: str
    #: The data set it was trained on ("digits", "mnist", "fashion-mnist", a folder), or None.
    dataset: str | None
    #: One input sample's shape: (64,) for a flat MLP, (1, 28, 28) for a convnet.
    sample_shape: tuple[int, ...]
    labels: tuple[str, ...]
    #: For the default model, how it was trained (epochs, optimizer, lr, accuracy, seconds): the
    #: page says it in its own language.
    trained: dict[str, Any] | None = None
    _test_images: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _test_error: str | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the images the model takes; a flat input is a square image."""
        if len(self.sample_shape) == 3:
            return int(self.sample_shape[1]), int(self.sample_shape[2])
        side = math.isqrt(int(self.sample_shape[0]))
        return side, side

    @property
    def architecture(self) -> str:
        """"64-50-10" for an MLP, the layer names otherwise."""
        layers = list(self.model)
        sizes = [int(la.params["W"].shape[0]) for la in layers if type(la).__name__ == "Affine"]
        if sizes and all(type(la).__name__ in ("Affine", "Relu", "Sigmoid", "Tanh") for la in layers):
            return "-".join(str(s) for s in [*sizes, int(self.model.output_size)])
        return " → ".join(str(getattr(la, "name", type(la).__name__)) for la in layers)

    def test_images(self) -> tuple[np.ndarray, np.ndarray]:
        """The test split of the model's data set as (images (N, H, W) float in [0, 1],
        labels (N,)), loaded once, never downloaded: InputError says why when it is not here."""
        with self._lock:
            if self._test_images is None and self._test_error is None:
                self._load_test_images()
            if self._test_images is None:
                raise InputError(self._test_error or "no test images")
            return self._test_images

    def _load_test_images(self) -> None:
        name = self.dataset or "digits"
        height, width = self.image_size
        try:
            if name in ("mnist", "fashion-mnist") and not present_locally(name):
                raise InputError(f"the {name} files are not on this machine (serve never downloads)")
            _, (x, t) = load_dataset(name, flatten=False, dtype=np.float32, progress=False, download=False)
        except LayerwiseError as exc:
            self._test_error = f"no test images of {name!r} to step through: {exc}"
            return
        if x.shape[-2:] != (height, width):
            self._test_error = (f"the {name} test images are {x.shape[-2]}×{x.shape[-1]}, "
                                f"but the model takes {height}×{width}")
            return
        self._test_images = (np.ascontiguousarray(x.reshape(len(x), height, width)), np.asarray(t))


def _check_servable(model: Any, sample_shape: tuple[int, ...], where: str) -> None:
    if len(sample_shape) == 3 and sample_shape[0] != 1:
        raise InputError(f"{where}: the model takes {sample_shape[0]}-channel images; "
                         "serve draws single-channel (grey) images only")
    if len(sample_shape) == 1 and math.isqrt(sample_shape[0]) ** 2 != sample_shape[0]:
        raise InputError(f"{where}: the model takes {sample_shape[0]} inputs, not a square image")
    if len(sample_shape) not in (1, 3):
        raise InputError(f"{where}: the model's input shape {sample_shape} is not an image")
    if getattr(model, "loss_layer", None) is None:
        raise InputError(f"{where}: the model has no loss layer")


def load_served(path: Path) -> ServedModel:
    """A model file ``layerwise train`` wrote (an MLP or a convnet)."""
    checkpoint = load_checkpoint(path)
    meta = dict(checkpoint.state or {})
    model = checkpoint.model
    shape = meta.get("input_shape")
    if not shape:
        raise InputError(f"{path}: the model file does not record its input shape; "
                         "serve needs a model file written by `layerwise train`")
    sample_shape = tuple(int(d) for d in shape)
    _check_servable(model, sample_shape, str(path))
    dataset = meta.get("dataset")
    try:
        labels = class_names(dataset) if dataset else ()
    except InputError:  # a folder of IDX files: its classes have no names
        labels = ()
    if len(labels) != model.output_size:
        labels = tuple(str(k) for k in range(model.output_size))
    return ServedModel(model, str(path), dataset, sample_shape, labels)


def default_model() -> ServedModel:
    """The book's two-layer net (64-50-10) trained on the bundled 8×8 digits, seeded: the same
    net on every machine, trained in well under a second."""
    r = DEFAULT_RECIPE
    started = time.perf_counter()
    (x, t), (x_test, t_test) = load_digits(dtype=np.float32)
    model = TwoLayerNet(x.shape[1], r["hidden"], 10, seed=r["seed"], dtype=np.float32)
    trainer = Trainer(model, make_optimizer(r["optimizer"], lr=r["lr"]), x, t, x_test, t_test,
                      epochs=r["epochs"], batch_size=r["batch_size"], seed=r["seed"], log=None, progress=False)
    history = trainer.fit()
    accuracy = history.epochs[-1]["test_acc"]
    trained = {"epochs": r["epochs"], "optimizer": r["optimizer"], "lr": r["lr"], "accuracy": round(100 * accuracy, 1),
               "seconds": round(time.perf_counter() - started, 1)}
    source = (f"the default model: the book's two-layer net 64-50-10, trained at start on the bundled 8×8 digits "
              f"({trained['epochs']} epochs of {trained['optimizer']}, lr {trained['lr']}: {trained['accuracy']}% "
              f"test accuracy in {trained['seconds']} s)")
    return ServedModel(model, source, "digits", (x.shape[1],), class_names("digits"), trained)

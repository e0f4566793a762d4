"""The Train page's runs: one short training run at a time, in a background thread, with the
events the page follows live (losses, epoch rows, the first layer's weights).

A run is the same as ``layerwise train`` with the same settings: the same model builder
(``recipes.build_network``), data loader and :class:`~layerwise.train.Trainer`. Data sets are
the bundled digits and, when their files are on this machine, MNIST and Fashion-MNIST;
serve never downloads.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets import present_locally, steps_per_epoch
from ..errors import LayerwiseError
from ..io import save
from ..optim import make_optimizer
from ..recipes import ACTIVATIONS, OPTIMIZERS, build_network, default_lr, default_optimizer, load_run_data
from ..train import Trainer
from .payloads import RequestError, int_field

__all__ = ["Run", "Training", "first_layer_weights"]

MAX_EPOCHS = 100
DEFAULT_HIDDEN, DEFAULT_EPOCHS, DEFAULT_BATCH = 50, 20, 100  # `layerwise train`'s
MAX_HIDDEN = 1024
#: Losses are sent in groups at most this often (an MNIST epoch has 600 steps).
STEP_EVENT_SECONDS = 0.1
#: The first layer's weights are sent at most this often.
WEIGHTS_EVENT_SECONDS = 0.5
#: How many first-layer units (or filters) the weight grid shows.
WEIGHT_UNITS = 36


def first_layer_weights(model: Any, image_size: tuple[int, int] | None) -> dict | None:
    """The first layer's weights as small images: an Affine's first units (each column of W
    as a height × width image), or a convolution's first filters (channel 0)."""
    for layer in model:
        W = getattr(layer, "params", {}).get("W")
        if W is None:
            continue
        if W.ndim == 2 and image_size is not None and W.shape[0] == image_size[0] * image_size[1]:
            units = min(W.shape[1], WEIGHT_UNITS)
            tiles = W[:, :units].T.reshape(units, *image_size)
        elif W.ndim == 4:
            units = min(W.shape[0], WEIGHT_UNITS)
            tiles = W[:units, 0]
        else:
            return None
        return {"units": int(units), "height": int(tiles.shape[1]), "width": int(tiles.shape[2]),
                "values": tiles.astype(np.float64).reshape(-1).tolist()}
    return None


class Run:
    """One training run: its settings, status and the events sent so far."""

    def __init__(self, number: int, settings: dict) -> None:
        self.number, self.settings = number, settings
        self.status = "loading"  # then running, and done, stopped or failed
        self.error: str | None = None
        self.events: list[dict] = []
        #: (version, the latest grid of first-layer weights): one slot, replaced, not a list.
        self.weights: tuple[int, dict | None] = (0, None)
        self.trainer: Trainer | None = None
        self.model: Any = None
        self.meta: dict = {}
        self._stop = threading.Event()
        self._pending: list[float] = []
        self._first_pending = 0
        self._last_steps = self._last_weights = 0.0
        self.thread = threading.Thread(target=self._work, name=f"layerwise-train-{number}", daemon=True)

    @property
    def finished(self) -> bool:
        return self.status in ("done", "stopped", "failed")

    def _emit(self, kind: str, data: dict) -> None:
        self.events.append({"event": kind, "data": data})  # list.append is atomic; readers only index

    def _flush_steps(self) -> None:
        if self._pending:
            self._emit("steps", {"first": self._first_pending, "losses": self._pending})
            self._pending = []

    def _on_step(self, step: int, loss: float) -> None:
        if not self._pending:
            self._first_pending = step
        self._pending.append(float(loss))
        now = time.monotonic()
        if now - self._last_steps >= STEP_EVENT_SECONDS:
            self._flush_steps()
            self._last_steps = now
        if now - self._last_weights >= WEIGHTS_EVENT_SECONDS:
            self._send_weights()
            self._last_weights = now

    def _on_epoch(self, row: dict) -> None:
        self._flush_steps()
        self._emit("epoch", {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in row.items()})

    def _send_weights(self) -> None:
        grid = first_layer_weights(self.model, self.meta.get("image_size"))
        if grid is not None:
            self.weights = (self.weights[0] + 1, grid)  # one assignment: readers see old or new

    def _work(self) -> None:
        s = self.settings
        try:
            (x_train, t_train), (x_test, t_test) = load_run_data(s, progress=False)
            classes = int(max(t_train.max(), t_test.max())) + 1
            self.model = build_network(s, x_train.shape[1:], classes)
            side = math.isqrt(int(np.prod(x_train.shape[1:])))
            self.meta = {"dataset": s["dataset"], "input_shape": list(x_train.shape[1:]), "classes": classes,
                         "image_size": (side, side)}
            self.trainer = Trainer(self.model, make_optimizer(s["optimizer"], lr=s["lr"]), x_train, t_train,
                                   x_test, t_test, epochs=s["epochs"], batch_size=s["batch_size"], seed=s["seed"],
                                   log=None, progress=False, on_step=self._on_step, on_epoch=self._on_epoch)
            if self._stop.is_set():
                self.trainer.stop()
            self.status = "running"
            self._emit("started", {"run": self.number, "train_images": len(x_train), "test_images": len(x_test),
                                   "steps_per_epoch": steps_per_epoch(len(x_train), s["batch_size"]),
                                   **self.public_settings()})
            self._send_weights()
            self.trainer.fit()
            self._flush_steps()
            self._send_weights()
            test_acc = float(self.model.accuracy(x_test, t_test))
            self.status = "stopped" if self.trainer.stopped else "done"
            self._emit("finished", {"status": self.status, "test_acc": test_acc,
                                    "steps": len(self.trainer.history.step_loss), "epochs": self.trainer.epoch})
        except LayerwiseError as exc:  # a diverged run, a data file that fails its checksum, ...
            self._flush_steps()
            self.status, self.error = "failed", str(exc)
            self._emit("finished", {"status": "failed", "error": self.error})
        except Exception as exc:  # never leave the page waiting on a run that died
            self.status, self.error = "failed", f"{type(exc).__name__}: {exc}"
            self._emit("finished", {"status": "failed", "error": self.error})
            raise

    def stop(self) -> None:
        self._stop.set()
        if self.trainer is not None:
            self.trainer.stop()

    def public_settings(self) -> dict:
        keys = ("dataset", "hidden", "activation", "optimizer", "lr", "epochs", "batch_size", "seed")
        return {k: self.settings[k] for k in keys}

    def model_file(self) -> bytes:
        """The trained model as a layerwise model file (safetensors + JSON metadata), the same
        file ``layerwise train`` writes: ``layerwise serve`` and ``evaluate`` read it."""
        meta = {k: v for k, v in self.meta.items() if k != "image_size"}
        with tempfile.TemporaryDirectory() as folder:
            path = save(self.model, Path(folder) / "model.safetensors", state=meta)
            return path.read_bytes()


class Training:
    """The server's one training slot."""

    def __init__(self) -> None:
        self.run: Run | None = None
        self._count = 0
        self._lock = threading.Lock()

    @staticmethod
    def datasets() -> list[str]:
        """The bundled digits, and MNIST and Fashion-MNIST when their files are on this machine."""
        return ["digits", *(name for name in ("mnist", "fashion-mnist") if present_locally(name))]

    def options(self) -> dict:
        """What the Train page offers: data sets, activations, optimizers, each optimizer's
        learning rate per data set (as ``layerwise train`` chooses it) and the defaults."""
        datasets = self.datasets()
        return {"datasets": datasets, "activations": list(ACTIVATIONS), "optimizers": list(OPTIMIZERS),
                "default_lr": {d: {o: default_lr(o, d) for o in OPTIMIZERS} for d in datasets},
                "defaults": {"dataset": "digits", "hidden": [DEFAULT_HIDDEN], "activation": "relu",
                             "optimizer": default_optimizer("digits"), "lr": default_lr(default_optimizer("digits"),
                                                                                       "digits"),
                             "epochs": DEFAULT_EPOCHS, "batch_size": DEFAULT_BATCH},
                "max_epochs": MAX_EPOCHS}

    def settings(self, body: dict) -> dict:
        """The run settings in ``body`` (every field optional), each checked, with an error
        naming the field; the result is what ``layerwise train`` keeps in config.json."""
        datasets = self.datasets()
        dataset = body.get("dataset", "digits")
        if dataset not in datasets:
            raise RequestError(f"field 'dataset' must be one of {', '.join(datasets)} (on this machine), "
                               f"got {dataset!r}")
        hidden = body.get("hidden", [DEFAULT_HIDDEN])
        if isinstance(hidden, int) and not isinstance(hidden, bool):
            hidden = [hidden]
        if not isinstance(hidden, list) or not 1 <= len(hidden) <= 4 or not all(
                isinstance(h, int) and not isinstance(h, bool) and 1 <= h <= MAX_HIDDEN for h in hidden):
            raise RequestError(f"field 'hidden' must be 1 to 4 layer sizes from 1 to {MAX_HIDDEN}, got {hidden!r}")
        activation = body.get("activation", "relu")
        if activation not in ACTIVATIONS:
            raise RequestError(f"field 'activation' must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
        optimizer = body.get("optimizer", default_optimizer(dataset))
        if optimizer not in OPTIMIZERS:
            raise RequestError(f"field 'optimizer' must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        lr = body.get("lr", default_lr(optimizer, dataset))
        if not isinstance(lr, int | float) or isinstance(lr, bool) or not 0 < lr <= 10 or not math.isfinite(lr):
            raise RequestError(f"field 'lr' must be a number in (0, 10], got {lr!r}")
        single = len(hidden) == 1 and activation == "relu"
        return {
            "dataset": dataset, "model": "two-layer" if single else "mlp", "hidden": hidden,
            "activation": activation, "optimizer": optimizer, "lr": float(lr),
            "epochs": int_field(body, "epochs", 1, MAX_EPOCHS, DEFAULT_EPOCHS),
            "batch_size": int_field(body, "batch_size", 1, 1000, DEFAULT_BATCH),
            "seed": int_field(body, "seed", 0, 2**31 - 1, 0),
            "weight_decay": 0.0, "dropout": 0.0, "batchnorm": False, "dtype": "float32", "lr_schedule": "constant",
        }

    def start(self, body: dict) -> Run:
        settings = self.settings(body)
        with self._lock:
            if self.run is not None and not self.run.finished:
                raise RequestError(f"run {self.run.number} is still training ({self.run.status}); stop it first, "
                                   "or wait for it to finish: one run trains at a time", 409)
            self._count += 1
            self.run = Run(self._count, settings)
            self.run.thread.start()
            return self.run

    def stop(self) -> Run:
        with self._lock:
            run = self.run
        if run is None or run.finished:
            raise RequestError("no run is training", 409)
        run.stop()
        return run

    def shutdown(self) -> None:
        """Stop a run that is still training (the server is stopping) and wait for it."""
        run = self.run
        if run is not None and not run.finished:
            run.stop()
            run.thread.join()  # stop() ends the run after its current step

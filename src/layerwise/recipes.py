"""The networks and data a training run is built from, by the names ``layerwise train`` takes
(``--model``, ``--hidden``, ``--activation``, ``--optimizer``, ``--dataset``): one place, shared by
the command, the web app's Train page and the hyperparameter search."""

from __future__ import annotations

import numpy as np

from . import models
from .datasets import Split, load_dataset
from .errors import InputError
from .models import Sequential

__all__ = [
    "ACTIVATIONS", "DEFAULT_LR", "MODELS", "OPTIMIZERS", "build_network", "default_lr", "default_optimizer",
    "load_run_data",
]

MODELS = ("two-layer", "mlp", "convnet", "deep-convnet")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
ACTIVATIONS = ("relu", "sigmoid", "tanh")
#: Each optimizer's default learning rate (see :func:`default_lr` for the digits' exception).
DEFAULT_LR = {"sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adagrad": 0.01, "rmsprop": 0.001, "adam": 0.001}


def default_optimizer(dataset: str) -> str:
    """SGD, the book's recipe; Adam on the bundled digits, whose 1,442 training images give
    only 15 steps per epoch."""
    return "adam" if dataset == "digits" else "sgd"


def default_lr(optimizer: str, dataset: str) -> float:
    """``DEFAULT_LR``, except 0.01 for Adam on the bundled digits (few steps per epoch)."""
    return 0.01 if dataset == "digits" and optimizer == "adam" else DEFAULT_LR[optimizer]


def build_network(settings: dict, input_shape: tuple[int, ...], classes: int) -> Sequential:
    """The network the settings name, for inputs of ``input_shape`` (no batch axis)."""
    dtype = np.dtype(settings["dtype"])
    kind, hidden, seed = settings["model"], settings["hidden"], settings["seed"]
    if kind != "mlp" and (settings["dropout"] or settings["batchnorm"] or settings["weight_decay"]):
        raise InputError(f"--dropout, --batchnorm and --weight-decay need --model mlp (got --model {kind})")
    if kind == "two-layer":
        size = hidden[0] if hidden else 50
        if hidden and len(hidden) > 1:
            raise InputError(f"--model two-layer has one hidden layer; got --hidden {hidden} (use --model mlp)")
        return models.TwoLayerNet(int(np.prod(input_shape)), size, classes, seed=seed, dtype=dtype)
    if kind == "mlp":
        return models.MultiLayerNet(
            int(np.prod(input_shape)), hidden or [100, 100], classes, activation=settings["activation"],
            weight_init_std=settings["activation"], weight_decay_lambda=settings["weight_decay"],
            use_dropout=settings["dropout"] > 0, dropout_ration=settings["dropout"] or 0.5,
            use_batchnorm=settings["batchnorm"], seed=seed, dtype=dtype,
        )
    if kind == "convnet":
        size = input_shape[-1]
        conv = {"filter_num": 30, "filter_size": 5 if size >= 16 else 3, "pad": 0, "stride": 1}
        # He initialisation: the book's fixed 0.01 learns slowly for the first epochs.
        return models.SimpleConvNet(input_shape, conv, hidden[0] if hidden else 100, classes,
                                    weight_init_std="relu", seed=seed, dtype=dtype)
    if kind == "deep-convnet":
        return models.DeepConvNet(input_shape, conv_param_4={"pad": _deep_convnet_pad4(input_shape[-1])},
                                  output_size=classes, dropout_mode="inverted", final_dropout=False,
                                  seed=seed, dtype=dtype)
    raise InputError(f"unknown model {kind!r}; choose from {', '.join(MODELS)}")


def _deep_convnet_pad4(size: int) -> int:
    """Padding of DeepConvNet's fourth convolution that lets all three 2x2 poolings tile the
    image: the book's 2 for 28x28 (14 -> 16 -> 8 -> 4), 1 for the 8x8 digits (4 -> 4 -> 2 -> 1)."""
    for pad in (2, 1, 0):
        s = size // 2 + 2 * pad - 2  # after the first pooling and the 3x3 fourth convolution
        if size % 2 == 0 and s > 0 and s % 2 == 0 and (s // 2) % 2 == 0:
            return pad
    raise InputError(f"--model deep-convnet needs images whose sides halve three times; got {size}x{size}")


def load_run_data(settings: dict, progress: bool) -> tuple[Split, Split]:
    flatten = settings["model"] in ("two-layer", "mlp")
    return load_dataset(settings["dataset"], normalize=True, flatten=flatten, one_hot_label=False,
                        dtype=np.dtype(settings["dtype"]), progress=progress)

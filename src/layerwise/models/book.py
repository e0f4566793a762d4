"""The book's networks, built on ``Sequential``: TwoLayerNet (chapter 5), MultiLayerNet and
MultiLayerNetExtend (chapter 6), SimpleConvNet (chapter 7), DeepConvNet (chapter 8), and
``book_model``, the network a book weight file belongs to.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..checks import check_window
from ..errors import InputError, ShapeError
from ..init import generator, init_weight
from ..layers import (
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    Layer,
    Pooling,
    ReLU,
    Sigmoid,
    Tanh,
)
from .sequential import Sequential

__all__ = [
    "BOOK_ARCHS",
    "DeepConvNet",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "SimpleConvNet",
    "TwoLayerNet",
    "book_model",
]


class _BookNet(Sequential):
    """A Sequential remembering its constructor arguments, so a file can rebuild it.

    The book's nets are float64 unless ``dtype=`` says otherwise, as in the book (whose
    gradient checks print differences of ~1e-10 only in float64); ``layerwise train`` and the
    Trainer's users pass ``dtype=np.float32`` for speed. ``seed=None`` draws the weights from
    a generator seeded by NumPy's global state, so ``np.random.seed(...)`` makes them
    repeatable, as in the book.
    """

    _kwargs: dict
    #: The book's keys of ``layers`` (an OrderedDict in the book); None keeps the list, as
    #: the book's DeepConvNet has.
    _book_names: tuple[str, ...] | None = None

    @property
    def layers(self) -> OrderedDict[str, Layer] | list[Layer]:  # type: ignore[override]
        """The book's ``layers``: an OrderedDict of the net's own layer objects by the book's
        names (``'Affine1'``, ``'Relu1'``, ...). Its entries are the layers the net computes
        with; the net's structure is fixed when it is built."""
        if self._book_names is None:
            return self._layers
        # Made once per list of layers: a copy of the net with layers of its own (a batch
        # part's replica, models.batch_parts) names its own, not the original's.
        if getattr(self, "_named_from", None) is not self._layers:
            self._named = OrderedDict(zip(self._book_names, self._layers, strict=True))
            self._named_from = self._layers
        return self._named

    def config(self) -> dict:
        return {"class": type(self).__name__, "kwargs": self._kwargs}


def _numbered(names: Iterable[str]) -> tuple[str, ...]:
    """Number each name by its own count, as the book does: Affine1, Relu1, Affine2, ..."""
    counts: dict[str, int] = {}
    numbered = []
    for name in names:
        counts[name] = counts.get(name, 0) + 1
        numbered.append(f"{name}{counts[name]}")
    return tuple(numbered)


class TwoLayerNet(_BookNet):
    """The book's two-layer net: Affine -> ReLU -> Affine -> SoftmaxWithLoss.

    W1 ~ weight_init_std · N(0, 1) of shape (input_size, hidden_size), biases zero.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        output_size: int,
        weight_init_std: float = 0.01,
        *,
        seed: int | np.random.Generator | None = None,
        dtype: np.dtype | str = np.float64,
    ) -> None:
        rng = generator(seed)
        std = float(weight_init_std)
        W1 = (std * rng.standard_normal((input_size, hidden_size))).astype(dtype)
        W2 = (std * rng.standard_normal((hidden_size, output_size))).astype(dtype)
        super().__init__(
            [
                Affine(W1, np.zeros(hidden_size, dtype=dtype)),
                ReLU(),
                Affine(W2, np.zeros(output_size, dtype=dtype)),
            ]
        )
        self._book_names = ("Affine1", "Relu1", "Affine2")
        self._kwargs = {
            "input_size": input_size,
            "hidden_size": hidden_size,
            "output_size": output_size,
            "weight_init_std": std,
        }


_ACTIVATIONS = {"relu": ReLU, "sigmoid": Sigmoid, "tanh": Tanh}


class MultiLayerNet(_BookNet):
    """The book's fully connected net (MultiLayerNet / MultiLayerNetExtend):
    [Affine -> (BatchNorm) -> activation -> (Dropout)] × hidden layers -> Affine -> SoftmaxWithLoss,
    with weight decay ½ λ Σ ||W||² in the loss. ``layers`` keys are the book's: ``Affine1``,
    ``BatchNorm1``, ``Activation_function1``, ``Dropout1``, ..., ``Affine<n>``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size_list: Sequence[int],
        output_size: int,
        activation: str = "relu",
        weight_init_std: str | float = "relu",
        weight_decay_lambda: float = 0,
        use_dropout: bool = False,
        dropout_ration: float = 0.5,
        use_batchnorm: bool = False,
        *,
        dropout_mode: str = "inverted",
        seed: int | np.random.Generator | None = None,
        dtype: np.dtype | str = np.float64,
    ) -> None:
        if activation not in _ACTIVATIONS:
            raise InputError(
                f"MultiLayerNet: unknown activation {activation!r}; choose from {sorted(_ACTIVATIONS)}"
            )
        rng = generator(seed)
        # tanh is symmetric like sigmoid: Xavier's sqrt(1/n) keeps its activations in range.
        scheme = "xavier" if weight_init_std == "tanh" else weight_init_std
        sizes = [input_size, *hidden_size_list, output_size]
        layers: list[Layer] = []
        names: list[str] = []
        for i in range(len(sizes) - 1):
            W = init_weight((sizes[i], sizes[i + 1]), scheme, rng, dtype=dtype)
            layers.append(Affine(W, np.zeros(sizes[i + 1], dtype=dtype)))
            names.append("Affine")
            if i == len(sizes) - 2:
                break
            if use_batchnorm:
                gamma, beta = np.ones(sizes[i + 1], dtype=dtype), np.zeros(sizes[i + 1], dtype=dtype)
                layers.append(BatchNormalization(gamma, beta))
                names.append("BatchNorm")
            layers.append(_ACTIVATIONS[activation]())
            names.append("Activation_function")
            if use_dropout:
                layers.append(Dropout(dropout_ration, mode=dropout_mode, seed=int(rng.integers(2**63))))
                names.append("Dropout")
        super().__init__(layers, weight_decay_lambda=weight_decay_lambda)
        self._book_names = _numbered(names)
        self._kwargs = {
            "input_size": input_size,
            "hidden_size_list": list(hidden_size_list),
            "output_size": output_size,
            "activation": activation,
            "weight_init_std": weight_init_std,
            "weight_decay_lambda": float(weight_decay_lambda),
            "use_dropout": bool(use_dropout),
            "dropout_ration": float(dropout_ration),
            "use_batchnorm": bool(use_batchnorm),
            "dropout_mode": dropout_mode,
        }


class MultiLayerNetExtend(MultiLayerNet):
    """The book's chapter-6 net: ``MultiLayerNet`` with the book's defaults for its two
    training-only parts. Dropout scales at test time (``dropout_mode="book"``, so weights the
    book's net trained give the book's outputs), and ``loss(x, t)`` evaluates in test mode
    unless ``train_flg=True``, as the book's ``MultiLayerNetExtend.loss`` does.
    """

    def __init__(self, *args: Any, dropout_mode: str = "book", **kwargs: Any) -> None:
        super().__init__(*args, dropout_mode=dropout_mode, **kwargs)

    def loss(self, x: np.ndarray, t: np.ndarray, train_flg: bool = False) -> float:
        return super().loss(x, t, train_flg)


def _conv_output(size: int, filter_size: int, pad: int, stride: int, where: str) -> int:
    check_window(filter_size, filter_size, stride, pad, where)  # a stride of 0 (or False) named, not divided by
    return (size + 2 * pad - filter_size) // stride + 1


class SimpleConvNet(_BookNet):
    """The book's SimpleConvNet:
    Convolution -> ReLU -> Pooling(2×2, stride 2) -> Affine -> ReLU -> Affine -> SoftmaxWithLoss.
    Parameters W1/b1 (convolution), W2/b2, W3/b3 (affine); weights ~ weight_init_std · N(0, 1),
    or by a named scheme ("relu"/"he": sqrt(2/fan_in), "sigmoid"/"xavier": sqrt(1/fan_in)).
    """

    def __init__(
        self,
        input_dim: Sequence[int] = (1, 28, 28),
        conv_param: dict | None = None,
        hidden_size: int = 100,
        output_size: int = 10,
        weight_init_std: float | str = 0.01,
        *,
        seed: int | np.random.Generator | None = None,
        dtype: np.dtype | str = np.float64,
    ) -> None:
        conv_param = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1, **(conv_param or {})}
        channels, height, width = input_dim
        fn, fs = conv_param["filter_num"], conv_param["filter_size"]
        pad, stride = conv_param["pad"], conv_param["stride"]
        oh = _conv_output(height, fs, pad, stride, "SimpleConvNet conv_param")
        ow = _conv_output(width, fs, pad, stride, "SimpleConvNet conv_param")
        pooled = fn * (oh // 2) * (ow // 2)
        rng = generator(seed)

        def normal(*shape: int) -> np.ndarray:
            return init_weight(shape, weight_init_std, rng, dtype=dtype)

        super().__init__(
            [
                Convolution(normal(fn, channels, fs, fs), np.zeros(fn, dtype=dtype), stride, pad),
                ReLU(),
                Pooling(2, 2, stride=2),
                Affine(normal(pooled, hidden_size), np.zeros(hidden_size, dtype=dtype)),
                ReLU(),
                Affine(normal(hidden_size, output_size), np.zeros(output_size, dtype=dtype)),
            ]
        )
        self._book_names = ("Conv1", "Relu1", "Pool1", "Affine1", "Relu2", "Affine2")
        self._kwargs = {
            "input_dim": list(input_dim),
            "conv_param": conv_param,
            "hidden_size": hidden_size,
            "output_size": output_size,
            "weight_init_std": weight_init_std,
        }


class DeepConvNet(_BookNet):
    """The book's DeepConvNet (chapter 8), He-initialised:
    [conv-relu-conv-relu-pool] × 3 -> Affine -> ReLU -> Dropout -> Affine -> Dropout -> SoftmaxWithLoss.
    Parameters W1..W6 (3×3 convolutions), W7, W8 (affine). Dropout uses the book's scaling
    (× (1 - ratio) at test time) so the book's published weights give the book's accuracy.
    ``final_dropout=False`` leaves out the dropout on the logits, which the book's weights were
    trained with but which slows training from scratch (half the logits are zeroed each step).
    """

    def __init__(
        self,
        input_dim: Sequence[int] = (1, 28, 28),
        conv_param_1: dict | None = None,
        conv_param_2: dict | None = None,
        conv_param_3: dict | None = None,
        conv_param_4: dict | None = None,
        conv_param_5: dict | None = None,
        conv_param_6: dict | None = None,
        hidden_size: int = 50,
        output_size: int = 10,
        *,
        dropout_mode: str = "book",
        final_dropout: bool = True,
        seed: int | np.random.Generator | None = None,
        dtype: np.dtype | str = np.float64,
    ) -> None:
        defaults = [(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)]
        given = [conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6]
        conv_params = [
            {"filter_num": fn, "filter_size": 3, "pad": pad, "stride": 1, **(p or {})}
            for (fn, pad), p in zip(defaults, given, strict=True)
        ]
        rng = generator(seed)
        channels, height, width = input_dim
        layers: list[Layer] = []
        for i, p in enumerate(conv_params):
            height = _conv_output(height, p["filter_size"], p["pad"], p["stride"], f"DeepConvNet conv_param_{i + 1}")
            width = _conv_output(width, p["filter_size"], p["pad"], p["stride"], f"DeepConvNet conv_param_{i + 1}")
            fan_in = channels * p["filter_size"] ** 2
            W = rng.standard_normal((p["filter_num"], channels, p["filter_size"], p["filter_size"]))
            W = (np.sqrt(2.0 / fan_in) * W).astype(dtype)
            layers += [Convolution(W, np.zeros(p["filter_num"], dtype=dtype), p["stride"], p["pad"]), ReLU()]
            channels = p["filter_num"]
            if i % 2 == 1:
                layers.append(Pooling(2, 2, stride=2))
                height, width = height // 2, width // 2
        flat = channels * height * width
        W7 = (np.sqrt(2.0 / flat) * rng.standard_normal((flat, hidden_size))).astype(dtype)
        W8 = (np.sqrt(2.0 / hidden_size) * rng.standard_normal((hidden_size, output_size))).astype(dtype)
        seeds = rng.integers(2**63, size=2)
        layers += [
            Affine(W7, np.zeros(hidden_size, dtype=dtype)),
            ReLU(),
            Dropout(0.5, mode=dropout_mode, seed=int(seeds[0])),
            Affine(W8, np.zeros(output_size, dtype=dtype)),
        ]
        if final_dropout:
            layers.append(Dropout(0.5, mode=dropout_mode, seed=int(seeds[1])))
        super().__init__(layers)
        self._kwargs = {
            "input_dim": list(input_dim),
            **{f"conv_param_{i + 1}": p for i, p in enumerate(conv_params)},
            "hidden_size": hidden_size,
            "output_size": output_size,
            "dropout_mode": dropout_mode,
            "final_dropout": final_dropout,
        }


BOOK_ARCHS = ("two-layer", "sample-weight", "simple-convnet", "deep-convnet")


def book_model(arch: str, params: dict[str, np.ndarray]) -> Sequential:
    """The network a book weight file belongs to, holding that file's weights (and dtype).

    ``two-layer``: TwoLayerNet (ch. 5); ``sample-weight``: the 784-50-100-10 sigmoid MLP of
    ch. 3 (sample_weight.pkl); ``simple-convnet``: SimpleConvNet (params.pkl);
    ``deep-convnet``: DeepConvNet with the book's dropout scaling (deep_convnet_params.pkl).
    """
    if arch not in BOOK_ARCHS:
        raise InputError(f"unknown book architecture {arch!r}; choose from {', '.join(BOOK_ARCHS)}")
    dtype = next(iter(params.values())).dtype if params else np.float32
    shape = {k: v.shape for k, v in params.items()}
    try:
        if arch == "two-layer":
            model: Sequential = TwoLayerNet(shape["W1"][0], shape["W1"][1], shape["W2"][1], dtype=dtype)
        elif arch == "sample-weight":
            layers: list[Layer] = []
            for i in (1, 2, 3):
                W = np.zeros(shape[f"W{i}"], dtype=dtype)
                layers.append(Affine(W, np.zeros(W.shape[1], dtype=dtype)))
                if i < 3:
                    layers.append(Sigmoid())
            model = Sequential(layers)
        elif arch == "simple-convnet":
            fn, channels, fs, _ = shape["W1"]
            side = 28
            conv = {"filter_num": fn, "filter_size": fs, "pad": 0, "stride": 1}
            model = SimpleConvNet((channels, side, side), conv, shape["W2"][1], shape["W3"][1], dtype=dtype)
        else:
            model = DeepConvNet(hidden_size=shape["W7"][1], output_size=shape["W8"][1], dtype=dtype)
    except KeyError as exc:
        raise ShapeError(f"{arch}: the weight file has no tensor {exc.args[0]} (it has {sorted(params)})") from None
    model.load_state_dict(params)
    return model

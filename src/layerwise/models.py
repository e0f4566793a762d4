"""Networks: ``Sequential`` (a list of layers and a loss layer) and the book's nets built on it.

Parameters are named as in the book, counting layers that own a tensor of that name:
``W1, b1, W2, b2, ...`` over Affine and Convolution layers in order, ``gamma1, beta1, ...``
over BatchNormalization layers. ``model.params`` is a live view: ``model.params["W1"] = new``
replaces the array the layer computes with (the book's nets keep two references, so a
non-in-place update silently stops training).
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator, MutableMapping, Sequence
from typing import Any

import numpy as np

from .errors import InputError, LayerwiseError, ShapeError
from .functional import _ones, to_float_array
from .gradcheck import numerical_gradient
from .init import generator, init_weight
from .io import PathLike, load_book_params, save_book_params
from .layers import (
    Affine,
    BatchNormalization,
    Convolution,
    Dropout,
    Layer,
    Pooling,
    ReLU,
    Sigmoid,
    SoftmaxWithLoss,
    Tanh,
)
from .layers.base import Layer as _Layer

__all__ = [
    "DeepConvNet",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "Sequential",
    "SimpleConvNet",
    "TwoLayerNet",
    "build_model",
]


class _TensorView(MutableMapping):
    """A flat, book-named view over the per-layer dicts ``params``/``grads``/``buffers``."""

    def __init__(self, slots: dict[str, tuple[_Layer, str]], attr: str, writable: bool) -> None:
        self._slots, self._attr, self._writable = slots, attr, writable

    def __getitem__(self, name: str) -> np.ndarray:
        layer, key = self._slot(name)
        return getattr(layer, self._attr)[key]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        if not self._writable:
            raise TypeError(f"model.{self._attr} is read-only")
        layer, key = self._slot(name)
        old = getattr(layer, self._attr)[key]
        value = np.asarray(value)
        if value.shape != old.shape:
            raise ShapeError(f"{name}: new value has shape {value.shape}, expected {old.shape}")
        getattr(layer, self._attr)[key] = value

    def __delitem__(self, name: str) -> None:
        raise TypeError("model tensors cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        return iter(self._slots)

    def __len__(self) -> int:
        return len(self._slots)

    def _slot(self, name: str) -> tuple[_Layer, str]:
        try:
            return self._slots[name]
        except KeyError:
            raise KeyError(f"no tensor {name!r}; this model has {list(self._slots)}") from None

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: array{self[k].shape}" for k in self) + "}"


def _layer_types() -> dict[str, type[_Layer]]:
    """Every Layer subclass by class name, for rebuilding a model from its config."""
    from . import layers  # noqa: F401  (imports every layer module)

    found: dict[str, type[_Layer]] = {}
    stack = list(_Layer.__subclasses__())
    while stack:
        cls = stack.pop()
        found.setdefault(cls.__name__, cls)
        stack.extend(cls.__subclasses__())
    return found


def _quick_all_finite(x: np.ndarray) -> bool:
    """True proves every value of ``x`` finite; False means "look closer". A finite sum
    proves it without an array of isfinite flags, since NaN and inf propagate into it; only
    a non-finite sum, or an overflowing one, says False. For a small contiguous input (one
    image, say) the sum is a BLAS dot with a vector of ones: 0.9 us on 784 pixels where
    NumPy's sum takes 1.4 us, a twentieth of a whole 784-50-10 prediction."""
    if x.size <= 4096 and x.flags.c_contiguous:
        return math.isfinite(np.dot(x.reshape(-1), _ones(x.size, x.dtype)))
    return math.isfinite(np.add.reduce(x, axis=None))


class Sequential:
    """Layers applied in order, then a loss layer.

    predict(x) = layers[-1](... layers[0](x)); loss(x, t) = loss_layer(predict(x), t)
    + ½ λ Σ ||W||² (weight decay on the weight matrices, as the book does).
    gradient(x, t) runs forward and backward and returns the flat grads dict; backward stops
    at the first layer with parameters, whose input gradient nothing uses.

    ``model.layers`` is the list of layers (the book's nets give an OrderedDict by the book's
    names instead); ``for layer in model``, ``model[i]`` and ``len(model)`` work on any model.
    ``loss_layer`` is the book's ``lastLayer`` / ``last_layer``.
    """

    def __init__(
        self,
        layers: Iterable[Layer],
        loss: Layer | None = None,
        weight_decay_lambda: float = 0.0,
    ) -> None:
        self._layers: list[Layer] = list(layers)
        self.loss_layer: Layer = loss if loss is not None else SoftmaxWithLoss()
        self.weight_decay_lambda = float(weight_decay_lambda)
        self._chunk_cache: dict[tuple, int] = {}  # inference_batch_size by input shape
        if not self._layers:
            raise InputError("Sequential: needs at least one layer")
        self._index_tensors()

    def _index_tensors(self) -> None:
        counts: dict[str, int] = {}
        self._param_slots: dict[str, tuple[Layer, str]] = {}
        self._buffer_slots: dict[str, tuple[Layer, str]] = {}
        for layer in self._layers:
            for slots, keys in ((self._param_slots, layer.params), (self._buffer_slots, layer.buffers)):
                for key in keys:
                    counts[key] = counts.get(key, 0) + 1
                    slots[f"{key}{counts[key]}"] = (layer, key)
        # Nothing upstream of the first trainable layer needs an input gradient.
        self._first_trainable = next((i for i, la in enumerate(self._layers) if la.params), 0)
        first = self._layers[self._first_trainable]
        if hasattr(first, "needs_input_grad"):
            first.needs_input_grad = False

    # -- layers --------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The layers in the order forward runs them (the loss layer is ``loss_layer``)."""
        return self._layers

    def __iter__(self) -> Iterator[Layer]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, index: int) -> Layer:
        return self._layers[index]

    @property
    def lastLayer(self) -> Layer:
        return self.loss_layer

    @property
    def last_layer(self) -> Layer:  # the book's name in ch06-ch08
        return self.loss_layer

    # -- tensors -------------------------------------------------------------------------
    @property
    def params(self) -> _TensorView:
        return _TensorView(self._param_slots, "params", writable=True)

    @property
    def grads(self) -> _TensorView:
        return _TensorView(self._param_slots, "grads", writable=False)

    @property
    def buffers(self) -> _TensorView:
        return _TensorView(self._buffer_slots, "buffers", writable=True)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every tensor that defines the model: parameters and buffers, by book name."""
        return {**dict(self.params), **dict(self.buffers)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Copy ``state`` into the model's existing arrays (shapes must match exactly)."""
        view = {**self._param_slots, **self._buffer_slots}
        missing = [k for k in view if k not in state]
        unexpected = [k for k in state if k not in view]
        if missing or unexpected:
            raise ShapeError(
                f"{type(self).__name__}: state does not fit the model "
                f"(missing {missing or 'none'}, unexpected {unexpected or 'none'})"
            )
        for name, (layer, key) in self._param_slots.items():
            self._copy_into(name, layer.params, key, state[name])
        for name, (layer, key) in self._buffer_slots.items():
            self._copy_into(name, layer.buffers, key, state[name])

    @staticmethod
    def _copy_into(name: str, store: dict, key: str, value: np.ndarray) -> None:
        value = np.asarray(value)
        if value.shape != store[key].shape:
            raise ShapeError(f"{name}: file has shape {value.shape}, the model expects {store[key].shape}")
        # Copied into the existing array: anything holding it (an optimizer, a user's
        # reference in the book's style) sees the loaded values.
        np.copyto(store[key], value, casting="same_kind")

    @property
    def output_size(self) -> int:
        """Number of outputs (classes): the width of the last layer with parameters."""
        last = next(la for la in reversed(self._layers) if "W" in la.params)
        W = last.params["W"]
        return int(W.shape[0] if W.ndim == 4 else W.shape[1])  # Convolution W is (FN, C, FH, FW)

    @property
    def dtype(self) -> np.dtype:
        for _, (layer, key) in self._param_slots.items():
            return layer.params[key].dtype
        return np.dtype(np.float64)

    def astype(self, dtype: np.dtype | str) -> Sequential:
        """Convert every parameter and buffer to ``dtype`` in place; returns self."""
        for layer in self._layers:
            for store in (layer.params, layer.buffers):
                for key in store:
                    store[key] = store[key].astype(dtype)
            for key in layer.grads:
                layer.grads[key] = layer.grads[key].astype(dtype)
        return self

    # -- computation ---------------------------------------------------------------------
    def _prepare(self, x: object) -> np.ndarray:
        x = to_float_array(x, type(self).__name__)
        return x if x.dtype == self.dtype else x.astype(self.dtype)

    #: Evaluation-mode predict runs large batches in chunks whose largest temporary (a
    #: Convolution's im2col matrix, usually) stays near this many bytes, so it stays in cache.
    inference_chunk_bytes = 8 * 2**20

    def predict(self, x: np.ndarray, train_flg: bool = False) -> np.ndarray:
        """Scores (pre-softmax) for a batch; evaluation mode unless ``train_flg``.

        In evaluation mode a NaN or infinite input is refused (InputError naming the sample)
        rather than turned into NaN scores; training steps skip the check (the Trainer checks
        its whole data set once, up front).

        Evaluation mode also runs a large batch in chunks (``inference_batch_size``): the
        scores are the same, memory stays bounded (DeepConvNet's im2col on 10,000 images at
        once would be 4.3 GB) and the work stays in cache (DeepConvNet on the test set
        measured 2-3x faster in chunks of 18 than in batches of 500). The layers' caches then
        hold the last chunk only; backward follows a training-mode forward, as in gradient().
        """
        x = self._prepare(x)
        if not train_flg and not _quick_all_finite(x) and not np.isfinite(x).all():
            bad = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0]) if x.ndim else 0
            raise InputError(f"{type(self).__name__}.predict: input sample {bad} contains NaN or infinity")
        if not train_flg and x.ndim > 1 and len(x) > 1:
            chunk = self.inference_batch_size(x.shape[1:], x.dtype.itemsize)
            if len(x) > chunk:
                return self._predict_in_chunks(x, chunk)
        return self._forward(x, train_flg)

    def _forward(self, x: np.ndarray, train_flg: bool, layers: Sequence[Layer] | None = None) -> np.ndarray:
        for layer in self._layers if layers is None else layers:
            x = layer.forward(x, train=train_flg)
        return x

    def _predict_in_chunks(self, x: np.ndarray, chunk: int) -> np.ndarray:
        """Evaluation-mode scores of ``x``, at most ``chunk`` samples at a time. When BLAS may
        use several threads, ``x`` is cut into that many equal contiguous parts, each run on
        its own Python thread (with BLAS on one thread meanwhile): small products split
        across BLAS threads leave the copies around them (im2col, padding, ReLU, pooling) on
        one core, while whole chunks in parallel keep every core busy. Each thread runs
        shallow copies of the layers: the parameters are shared, the caches forward writes
        are its own."""
        from ._memory import keep_freed_memory
        from ._threads import owned_threads, run_in_threads

        keep_freed_memory()  # each chunk's arrays reuse the last chunk's pages (see _memory)

        def in_order() -> np.ndarray:
            return np.concatenate([self._forward(x[i : i + chunk], False) for i in range(0, len(x), chunk)])

        with owned_threads() as threads:
            workers = min(threads, -(-len(x) // chunk))
            if workers <= 1:
                return in_order()
            bounds = np.linspace(0, len(x), workers + 1).astype(int)  # equal parts: no thread waits long

            def run(part: int) -> np.ndarray:
                layers = [copy.copy(layer) for layer in self._layers]
                lo, hi = bounds[part], bounds[part + 1]
                return np.concatenate([self._forward(x[i : min(i + chunk, hi)], False, layers)
                                       for i in range(lo, hi, chunk)])

            parts = run_in_threads(run, range(workers))
            return in_order() if parts is None else np.concatenate(parts)

    def inference_batch_size(self, sample_shape: tuple[int, ...], itemsize: int = 4) -> int:
        """Samples per evaluation-mode chunk for inputs of ``sample_shape`` (one sample's shape):
        ``inference_chunk_bytes`` over the largest per-sample temporary of any layer."""
        key = (tuple(sample_shape), itemsize, self.inference_chunk_bytes)
        cache = self._chunk_cache
        if key not in cache:
            cache[key] = max(1, self.inference_chunk_bytes // (self.workspace_per_sample(sample_shape) * itemsize))
        return cache[key]

    def workspace_per_sample(self, sample_shape: tuple[int, ...]) -> int:
        """Values in the largest array any layer's forward makes, per sample of ``sample_shape``
        (1 when a layer refuses the shape: the forward will report it)."""
        shape, largest = (1, *sample_shape), 1
        try:
            for layer in self._layers:
                largest = max(largest, layer.workspace_size(shape))
                shape = layer.output_shape(shape)
        except LayerwiseError:
            return 1
        return largest

    def loss(self, x: np.ndarray, t: np.ndarray, train_flg: bool = True) -> float:
        """Loss of the batch (with weight decay), in training mode by default."""
        value = self.loss_layer.forward(self.predict(x, train_flg), t)
        if self.weight_decay_lambda:
            value += 0.5 * self.weight_decay_lambda * sum(
                float(np.sum(w * w)) for name, w in self.params.items() if name.startswith("W")
            )
        return value

    def gradient(self, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
        """Backpropagation: forward in training mode, then backward; returns the grads."""
        self.loss(x, t, train_flg=True)
        dout = self.loss_layer.backward(1.0)
        for layer in reversed(self._layers[self._first_trainable :]):
            dout = layer.backward(dout)
        if self.weight_decay_lambda:
            lam = self.weight_decay_lambda
            for name, (layer, key) in self._param_slots.items():
                if name.startswith("W"):
                    layer.grads[key] = layer.grads[key] + lam * layer.params[key]
        return {name: layer.grads[key] for name, (layer, key) in self._param_slots.items()}

    def numerical_gradient(self, x: np.ndarray, t: np.ndarray, h: float = 1e-4) -> dict[str, np.ndarray]:
        """Central-difference gradient of ``loss(x, t)`` for every parameter (slow; for checks).

        Always computed in float64, whatever the model's dtype: a float32 model is copied to
        float64 first (the model itself is not touched), since float32's 7 digits cannot
        resolve a difference quotient with h = 1e-4. The grads are float64 arrays.
        """
        model = self if self.dtype == np.float64 else copy.deepcopy(self).astype(np.float64)
        x = to_float_array(x, type(self).__name__).astype(np.float64, copy=False)
        return {name: numerical_gradient(lambda _: model.loss(x, t, train_flg=True), w, h)
                for name, w in model.params.items()}

    def accuracy(self, x: np.ndarray, t: np.ndarray, batch_size: int = 1000) -> float:
        """Fraction of correct predictions over every sample, the last partial batch included."""
        t = np.asarray(t)
        labels = t.argmax(axis=1) if t.ndim == 2 else t
        n = len(labels)
        if len(x) != n:
            raise ShapeError(f"accuracy: {len(x)} inputs but {n} labels")
        if n == 0:
            raise InputError("accuracy: empty dataset")
        # Labels that could never match a prediction would silently count as wrong.
        whole = labels.dtype.kind in "iu" or (labels.dtype.kind == "f" and np.all(labels == np.round(labels)))
        if labels.ndim != 1 or not whole:
            raise InputError(f"accuracy: labels must be class indices or one-hot, got shape {t.shape} "
                             f"of dtype {t.dtype}")
        classes = self.output_size if any("W" in la.params for la in self._layers) else None
        if classes is not None and (labels.min() < 0 or labels.max() >= classes):
            bad = labels.min() if labels.min() < 0 else labels.max()
            raise InputError(f"accuracy: label {bad} is out of range for {classes} classes")
        correct = 0
        for start in range(0, n, batch_size):
            scores = self.predict(x[start : start + batch_size])
            correct += int(np.sum(scores.argmax(axis=1) == labels[start : start + batch_size]))
        return correct / n

    # -- the book's weight files -------------------------------------------------------------
    def save_params(self, file_name: PathLike = "params.pkl") -> None:
        """Write the book's weight file: a pickle of {name: array} holding ``params`` (and any
        buffers, such as BatchNormalization's running statistics), written atomically."""
        save_book_params(self.state_dict(), file_name)

    def load_params(self, file_name: PathLike = "params.pkl") -> None:
        """Read a book weight file (``save_params``'s, or the book's own ``.pkl``) into the
        model, through the restricted unpickler (nothing in the file can run). Every
        parameter must be there with its shape; buffers the file lacks keep their values."""
        state = {**dict(self.buffers), **load_book_params(file_name)}
        try:
            self.load_state_dict(state)
        except ShapeError as exc:
            raise ShapeError(f"{file_name}: {exc}") from None

    # -- structure -----------------------------------------------------------------------
    def config(self) -> dict:
        """JSON-able architecture: enough for ``build_model`` to rebuild the same network."""
        return {
            "class": "Sequential",
            "layers": [{"type": la.name, "config": la.config()} for la in self._layers],
            "loss": self.loss_layer.name,
            "weight_decay_lambda": self.weight_decay_lambda,
        }

    def summary(self, input_shape: Sequence[int] | None = None) -> str:
        lines = [f"{type(self).__name__} ({self.dtype})"]
        shape = tuple(input_shape) if input_shape is not None else None
        for layer in self._layers:
            if shape is not None:
                shape = layer.output_shape(shape)
            n = sum(p.size for p in layer.params.values())
            lines.append(f"  {layer!r:<40} -> {shape if shape else ''}  params={n}")
        lines.append(f"  loss: {self.loss_layer.name}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


def build_model(config: dict, dtype: np.dtype | str = np.float32) -> Sequential:
    """Rebuild a model from ``model.config()``; its tensors are loaded separately."""
    cls_name = config.get("class")
    if cls_name == "Sequential":
        types = _layer_types()
        layers = []
        for spec in config["layers"]:
            cls = types.get(spec["type"])
            if cls is None:
                raise InputError(f"unknown layer type {spec['type']!r} in model config")
            layers.append(cls.from_config(spec.get("config", {}), dtype=dtype))
        loss_cls = types.get(config.get("loss", "SoftmaxWithLoss"))
        if loss_cls is None:
            raise InputError(f"unknown loss layer {config.get('loss')!r} in model config")
        return Sequential(layers, loss_cls(), config.get("weight_decay_lambda", 0.0))
    book_nets = {c.__name__: c for c in (TwoLayerNet, MultiLayerNet, SimpleConvNet, DeepConvNet)}
    book_nets["MultiLayerNetExtend"] = MultiLayerNetExtend
    if cls_name not in book_nets:
        raise InputError(f"unknown model class {cls_name!r}; known: Sequential, {', '.join(book_nets)}")
    return book_nets[cls_name](**config["kwargs"], dtype=dtype)


# -- the book's networks ------------------------------------------------------------------

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
        if getattr(self, "_named", None) is None:
            self._named = OrderedDict(zip(self._book_names, self._layers, strict=True))
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


def _conv_output(size: int, filter_size: int, pad: int, stride: int) -> int:
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
        oh = _conv_output(height, fs, pad, stride)
        ow = _conv_output(width, fs, pad, stride)
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
            fan_in = channels * p["filter_size"] ** 2
            W = rng.standard_normal((p["filter_num"], channels, p["filter_size"], p["filter_size"]))
            W = (np.sqrt(2.0 / fan_in) * W).astype(dtype)
            layers += [Convolution(W, np.zeros(p["filter_num"], dtype=dtype), p["stride"], p["pad"]), ReLU()]
            channels = p["filter_num"]
            height = _conv_output(height, p["filter_size"], p["pad"], p["stride"])
            width = _conv_output(width, p["filter_size"], p["pad"], p["stride"])
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

"""``Sequential``: layers applied in order, then a loss layer; the networks' common machinery.

Parameters are named as in the book, counting layers that own a tensor of that name:
``W1, b1, W2, b2, ...`` over Affine and Convolution layers in order, ``gamma1, beta1, ...``
over BatchNormalization layers. ``model.params`` is a live view: ``model.params["W1"] = new``
replaces the array the layer computes with (the book's nets keep two references, so a
non-in-place update silently stops training).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, MutableMapping, Sequence

import numpy as np

from ..checks import to_float_array
from ..errors import InputError, LayerwiseError, ShapeError
from ..gradcheck import numerical_gradient
from ..io import PathLike, load_book_params, save_book_params
from ..kernels.cache_sizes import inference_chunk_bytes
from ..kernels.inference import all_finite, forward_in_chunks
from ..layers import Layer, SoftmaxWithLoss
from .fusion import ConvReluPool, inference_forward, steps_from, training_steps

__all__ = ["Sequential"]


class _TensorView(MutableMapping):
    """A flat, book-named view over the per-layer dicts ``params``/``grads``/``buffers``."""

    def __init__(self, slots: dict[str, tuple[Layer, str]], attr: str, writable: bool) -> None:
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

    def _slot(self, name: str) -> tuple[Layer, str]:
        try:
            return self._slots[name]
        except KeyError:
            raise KeyError(f"no tensor {name!r}; this model has {list(self._slots)}") from None

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k!r}: array{self[k].shape}" for k in self) + "}"



class Sequential:
    """Layers applied in order, then a loss layer.

    predict(x) = layers[-1](... layers[0](x)); loss(x, t) = loss_layer(predict(x), t)
    + ½ λ Σ ||W||² (weight decay on the weight matrices, as the book does).
    gradient(x, t) runs forward and backward and returns the flat grads dict; backward stops
    at the first layer with parameters, whose input gradient nothing uses. In training, a
    Convolution, Relu, max Pooling run is computed as one step (``models.fusion``), which
    leaves the three layers' caches as they would.

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
        self._steps_run: list[Layer | ConvReluPool] = []  # the last training forward's steps
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

    #: Evaluation-mode predict runs large batches in chunks whose values kept in cache across
    #: a layer (``workspace_per_sample``) come to about this many bytes; None: decided from this
    #: machine's cache and the thread count (``kernels.cache_sizes.inference_chunk_bytes``).
    inference_chunk_bytes: int | None = None

    def predict(self, x: np.ndarray, train_flg: bool = False) -> np.ndarray:
        """Scores (pre-softmax) for a batch; evaluation mode unless ``train_flg``.

        In evaluation mode a NaN or infinite input is refused (InputError naming the sample)
        rather than turned into NaN scores; training steps skip the check (the Trainer checks
        its whole data set once, up front).

        Evaluation mode also runs a large batch in chunks (``inference_batch_size``): the
        scores are the same, memory stays bounded (DeepConvNet's first layer alone outputs
        0.5 GB for 10,000 images at once) and the work stays in cache (DeepConvNet on the
        test set measured 2-3x faster in chunks of 18 than in batches of 500, before its
        convolutions ran in chunks of their own; see ``kernels.conv.im2col_dot``). The layers' caches then
        hold the last chunk only; backward follows a training-mode forward, as in gradient().
        A Relu right after an Affine or a Convolution overwrites that layer's new output
        (``models.fusion.inference_forward``): the same scores, one array less to write.
        """
        x = self._prepare(x)
        if not train_flg and not all_finite(x):
            bad = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0]) if x.ndim else 0
            raise InputError(f"{type(self).__name__}.predict: input sample {bad} contains NaN or infinity")
        if not train_flg and x.ndim > 1 and len(x) > 1:
            chunk = self.inference_batch_size(x.shape[1:], x.dtype.itemsize)
            if len(x) > chunk:
                on_threads = self.inference_batch_size(x.shape[1:], x.dtype.itemsize, threads=2)  # any number > 1
                return self._predict_in_chunks(x, chunk, on_threads)
        return self._forward(x, train_flg)

    def _forward(self, x: np.ndarray, train_flg: bool, layers: Sequence[Layer] | None = None) -> np.ndarray:
        layers = self._layers if layers is None else layers
        if not train_flg:  # each layer's forward, a Relu after an Affine or Convolution in place (models.fusion)
            return inference_forward(layers, x)
        # A Convolution, Relu, Pooling run goes as one step (models.fusion) ...
        layers = self._steps_run = training_steps(layers)  # ... and backward takes the same steps
        for layer in layers:
            x = layer.forward(x, train=True)
        return x

    def _predict_in_chunks(self, x: np.ndarray, chunk: int, chunk_on_threads: int) -> np.ndarray:
        """Evaluation-mode scores of ``x``, ``chunk`` samples at a time on one thread,
        ``chunk_on_threads`` on each of several (kernels.inference)."""
        def forward(part: np.ndarray, layers: Sequence[Layer]) -> np.ndarray:
            return self._forward(part, False, layers)

        return forward_in_chunks(forward, self._layers, x, chunk, chunk_on_threads)

    def inference_batch_size(self, sample_shape: tuple[int, ...], itemsize: int = 4, threads: int = 1) -> int:
        """Samples per evaluation-mode chunk for inputs of ``sample_shape`` (one sample's shape)
        when predict runs on ``threads`` threads: ``inference_chunk_bytes`` (by default this
        machine's: ``kernels.tuning``) over the largest per-sample temporary of any layer."""
        budget = self.inference_chunk_bytes or inference_chunk_bytes(threads)
        key = (tuple(sample_shape), itemsize, budget)
        cache = self._chunk_cache
        if key not in cache:
            cache[key] = max(1, budget // (self.workspace_per_sample(sample_shape) * itemsize))
        return cache[key]

    def workspace_per_sample(self, sample_shape: tuple[int, ...]) -> int:
        """The most values any layer's forward keeps in cache per sample of ``sample_shape``
        (its ``workspace_size``; 1 when a layer refuses the shape: the forward will report it)."""
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
        for layer in reversed(steps_from(self._steps_run, self._first_trainable)):
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

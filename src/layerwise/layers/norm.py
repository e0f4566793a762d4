"""Regularisation and normalisation layers: Dropout and BatchNormalization."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import InputError, LayerwiseWarning, ShapeError
from ..init import generator
from .base import Layer

__all__ = ["BatchNormalization", "Dropout"]


class Dropout(Layer):
    """Zero each input with probability ``dropout_ratio`` = p during training.

    ``mask = (u >= p)`` with u ~ U[0, 1) drawn from the layer's own generator ``rng``
    (seeded by ``seed``), so a run is reproducible. With ``seed=None`` the generator's seed is
    drawn from NumPy's global state, so ``np.random.seed(...)`` makes it repeatable as in the book.

    mode="inverted" (default, what PyTorch and Keras do):
        train: out = x · mask / (1 - p),   backward: dx = dout · mask / (1 - p)
        eval:  out = x,                    backward: dx = dout
    mode="book" (the book's layer; DeepConvNet's published weights were trained with it):
        train: out = x · mask,             backward: dx = dout · mask
        eval:  out = x · (1 - p),          backward: dx = dout · (1 - p)

    Both give the same expected value at training and evaluation time; they differ by the
    constant (1 - p), so weights trained in one mode must be evaluated in the same mode.
    The mask is drawn in float64 whatever the input's dtype, so float32 and float64 runs with
    the same seed drop the same units. ``seed`` is an int (kept in ``config()``), None, or a
    ``np.random.Generator`` used as is (``config()`` then records None).
    """

    MODES = ("inverted", "book")

    def __init__(
        self,
        dropout_ratio: float = 0.5,
        mode: str = "inverted",
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        p = float(dropout_ratio)
        if not 0.0 <= p < 1.0:
            raise InputError(f"Dropout: dropout_ratio must be in [0, 1), got {dropout_ratio!r}")
        if mode not in self.MODES:
            raise InputError(f"Dropout: mode must be one of {self.MODES}, got {mode!r}")
        self.dropout_ratio = p
        self.mode = mode
        self.seed = None if isinstance(seed, np.random.Generator) else seed
        self.rng = generator(seed)
        self.mask: np.ndarray | None = None
        self._train: bool | None = None  # the mode of the last forward; None before any

    def _scale(self, train: bool) -> float:
        """The constant the kept values are multiplied by, as a Python float (keeps dtype)."""
        keep = 1.0 - self.dropout_ratio
        if self.mode == "inverted":
            return 1.0 / keep if train else 1.0
        return 1.0 if train else keep

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        x = self._input(x)
        self._train = bool(train)
        if not train:
            self.mask = None
            scale = self._scale(False)
            return x if scale == 1.0 else x * scale
        self.mask = self.rng.random(x.shape) >= self.dropout_ratio
        return self._apply(x)

    def _apply(self, a: np.ndarray) -> np.ndarray:
        out = a * self.mask  # bool mask: a's dtype is kept
        scale = self._scale(True)
        if scale != 1.0:
            out *= scale  # a fresh array, so in place is safe
        return out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._need(self._train)
        dout = np.asarray(dout)
        if not self._train:
            scale = self._scale(False)
            return dout if scale == 1.0 else dout * scale
        if dout.shape != self.mask.shape:
            raise ShapeError(f"Dropout: dout has shape {dout.shape}, expected {self.mask.shape}")
        return self._apply(dout)

    def config(self) -> dict:
        return {"dropout_ratio": self.dropout_ratio, "mode": self.mode, "seed": self.seed}


class BatchNormalization(Layer):
    """Batch normalisation (Ioffe & Szegedy 2015) with the book's names and signature.

    Statistics are taken per feature of a 2-D input (N, D) and per CHANNEL of an input
    (N, C, H, W) (over N, H and W; any (N, C, ...) works the same way), as every framework
    does. ``per_feature=True`` keeps the book's behaviour for images: flatten to
    (N, C·H·W) and normalise every pixel separately (gamma, beta of shape (C·H·W,)).

    forward (train), means over the normalised axes, m values per feature:
        μ = mean(x),  σ² = mean((x - μ)²),  σ = sqrt(σ² + eps),  x̂ = (x - μ) / σ,
        out = γ · x̂ + β
        running_mean ← momentum · running_mean + (1 - momentum) · μ   (likewise running_var)
    forward (eval): x̂ = (x - running_mean) / sqrt(running_var + eps), out = γ · x̂ + β.
    backward (train), the closed form of the book's step-by-step graph:
        dβ = Σ dout,  dγ = Σ dout · x̂,
        dx = (γ / σ) · (dout - dβ / m - x̂ · dγ / m)
    backward (eval): dx = dout · γ / sqrt(running_var + eps), dγ and dβ as above.

    Choices, documented because they differ from the book or from PyTorch:
    - running_var starts at 1, not 0 as in the book, where evaluating before any training
      step divides by sqrt(eps) and multiplies outputs by ~1000; running_mean starts at 0.
    - running_var accumulates the biased batch variance σ² (the book's choice, the one
      forward normalises with); PyTorch accumulates the unbiased m/(m-1) · σ².
    - momentum is the book's: weight of the OLD value. PyTorch's momentum is 1 - ours.
    - eps = 1e-6 by default: the book writes ``10e-7``, which is 1e-6 (PyTorch uses 1e-5).
    - training on a single value per feature runs as in the book (x̂ = 0, so out = β and
      dx = 0) but warns (``LayerwiseWarning``); PyTorch refuses it.

    Running statistics live in ``buffers`` ("running_mean", "running_var"), saved with the
    model but never trained; ``running_mean``/``running_var``/``gamma``/``beta``/``dgamma``/
    ``dbeta`` are the book's attribute names for them. Caches: ``xn`` (x̂) and ``std`` (σ).
    """

    def __init__(
        self,
        gamma: np.ndarray,
        beta: np.ndarray,
        momentum: float = 0.9,
        running_mean: np.ndarray | None = None,
        running_var: np.ndarray | None = None,
        eps: float = 1e-6,
        per_feature: bool = False,
    ) -> None:
        super().__init__()
        gamma, beta = np.asarray(gamma), np.asarray(beta)
        if gamma.ndim != 1 or beta.shape != gamma.shape:
            raise ShapeError(
                f"BatchNormalization: gamma and beta must be 1-D of the same length, "
                f"got gamma {gamma.shape} and beta {beta.shape}"
            )
        if not 0.0 <= float(momentum) <= 1.0:
            raise InputError(f"BatchNormalization: momentum must be in [0, 1], got {momentum!r}")
        if not float(eps) > 0.0:
            raise InputError(f"BatchNormalization: eps must be > 0, got {eps!r}")
        self.momentum = float(momentum)
        self.eps = float(eps)
        self.per_feature = bool(per_feature)
        self.params = {"gamma": gamma, "beta": beta}
        self.grads = {"gamma": np.zeros(gamma.shape, gamma.dtype), "beta": np.zeros(beta.shape, beta.dtype)}
        dtype = gamma.dtype if gamma.dtype.kind == "f" else np.float64
        starts = (("running_mean", running_mean, 0.0), ("running_var", running_var, 1.0))
        for key, given, start in starts:
            value = np.full(gamma.shape, start, dtype=dtype) if given is None else np.asarray(given)
            if value.shape != gamma.shape:
                raise ShapeError(
                    f"BatchNormalization: {key} has shape {value.shape}, expected {gamma.shape}"
                )
            self.buffers[key] = value
        self.input_shape: tuple[int, ...] | None = None
        self.xn: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self._train = False

    # The book's attribute names, as views onto params/grads/buffers.
    gamma = property(lambda s: s.params["gamma"], lambda s, v: s.params.__setitem__("gamma", v))
    beta = property(lambda s: s.params["beta"], lambda s, v: s.params.__setitem__("beta", v))
    dgamma = property(lambda s: s.grads["gamma"], lambda s, v: s.grads.__setitem__("gamma", v))
    dbeta = property(lambda s: s.grads["beta"], lambda s, v: s.grads.__setitem__("beta", v))
    running_mean = property(
        lambda s: s.buffers["running_mean"], lambda s, v: s.buffers.__setitem__("running_mean", v)
    )
    running_var = property(
        lambda s: s.buffers["running_var"], lambda s, v: s.buffers.__setitem__("running_var", v)
    )

    def _layout(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple, tuple]:
        """(shape to compute in, axes to normalise over, shape the parameters broadcast as)."""
        D = self.params["gamma"].shape[0]
        if len(shape) < 2:
            raise ShapeError(
                f"BatchNormalization: input must have a batch axis, (N, {D}, ...); got {shape}"
            )
        if len(shape) == 2 or self.per_feature:
            work = (shape[0], int(np.prod(shape[1:])))
            axes, bshape = (0,), (1, D)
            what = "features per sample"
        else:
            work = tuple(shape)
            axes = (0, *range(2, len(shape)))
            bshape = (1, D) + (1,) * (len(shape) - 2)
            what = "channels"
        if work[1] != D:
            raise ShapeError(
                f"BatchNormalization: input has {work[1]} {what} (x.shape={shape}) but gamma "
                f"has shape {self.params['gamma'].shape}"
            )
        return work, axes, bshape

    def forward(self, x: np.ndarray, train: bool = True) -> np.ndarray:
        x = self._input(x)
        work, axes, bshape = self._layout(x.shape)
        xr = x.reshape(work)
        gamma = self.params["gamma"].reshape(bshape)
        beta = self.params["beta"].reshape(bshape)
        if train:
            m = xr.size // work[1]
            if m < 2:
                warnings.warn(
                    f"BatchNormalization: training on one value per feature (x.shape={x.shape}) "
                    f"normalises every value to 0: the output is beta and the gradient reaching "
                    f"the layers below is zero. Train on batches of 2 or more.",
                    LayerwiseWarning,
                    stacklevel=2,
                )
            mu = xr.mean(axis=axes, keepdims=True)
            xn = xr - mu
            var = np.mean(np.square(xn), axis=axes, keepdims=True)
            std = np.sqrt(var + self.eps)
            xn /= std  # xn was a fresh array: in place saves one
            for key, batch in (("running_mean", mu), ("running_var", var)):
                old = self.buffers[key]
                new = self.momentum * old + (1 - self.momentum) * batch.ravel()
                # A new array, not an update in place: nobody else's copy changes under them.
                self.buffers[key] = new.astype(old.dtype, copy=False)
        else:
            std = np.sqrt(self.buffers["running_var"] + self.eps).reshape(bshape)
            xn = (xr - self.buffers["running_mean"].reshape(bshape)) / std
        out = xn * gamma
        out += beta
        self.input_shape, self.xn, self.std, self._train = x.shape, xn, std, bool(train)
        return out.reshape(x.shape)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        self._need(self.xn)
        dout = np.asarray(dout)
        if dout.shape != self.input_shape:
            raise ShapeError(
                f"BatchNormalization: dout has shape {dout.shape}, expected {self.input_shape}"
            )
        work, axes, bshape = self._layout(self.input_shape)
        d = dout.reshape(work)
        xn = self.xn
        dbeta = d.sum(axis=axes, keepdims=True)
        dgamma = np.sum(d * xn, axis=axes, keepdims=True)
        self.grads["beta"], self.grads["gamma"] = dbeta.ravel(), dgamma.ravel()
        scale = self.params["gamma"].reshape(bshape) / self.std
        if self._train:
            m = xn.size // work[1]
            dx = xn * (dgamma / m)  # the part of dout explained by the batch statistics
            dx += dbeta / m
            np.subtract(d, dx, out=dx)
            dx *= scale
        else:
            dx = d * scale
        return dx.reshape(self.input_shape)

    def config(self) -> dict:
        return {
            "num_features": int(self.params["gamma"].shape[0]),
            "momentum": self.momentum,
            "eps": self.eps,
            "per_feature": self.per_feature,
        }

    @classmethod
    def from_config(cls, config: dict, dtype: np.dtype | str = np.float32) -> BatchNormalization:
        config = dict(config)
        D = config.pop("num_features")
        zeros = [np.zeros(D, dtype=dtype) for _ in range(4)]  # the loaded tensors replace all four
        return cls(*zeros[:2], running_mean=zeros[2], running_var=zeros[3], **config)

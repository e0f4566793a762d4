"""PyTorch twins of layerwise models: same layers, same initial weights, same optimizer.

Eager mode, float32, the default ``torch.optim`` implementations, a plain training loop:
what a PyTorch user writes, not a tuned one.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from layerwise.layers import Affine, ReLU
from layerwise.layers.conv import Convolution, Pooling
from layerwise.layers.norm import Dropout
from layerwise.models import Sequential


class SameMaskDropout(nn.Module):
    """Inverted dropout whose masks are the ones a layerwise ``Dropout`` draws: its generator
    is a copy of the layer's, taken before either trains, and each training forward draws
    ``rng.random(x.shape) >= p`` as the layer does. Two twins that see the same batches then
    drop the same units, so what sets them apart is the arithmetic alone. (With ``nn.Dropout``
    and the book's zero biases a float64 check of DeepConvNet after 5 steps read 9e-3; with the
    same masks and zero biases 4e-3, the rest coming from the ReLU's kink: see
    ``worker._agreement``.) Layers that share one generator share its copy (``memo``, as
    ``copy.deepcopy`` keeps shared objects shared), so their draws interleave as theirs do.

    train: out = x · mask / (1 - p);   eval: out = x   (the layer's order of operations)."""

    def __init__(self, layer: Dropout, memo: dict | None = None) -> None:
        super().__init__()
        self.p = layer.dropout_ratio
        self.rng = copy.deepcopy(layer.rng, memo)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        mask = torch.from_numpy(self.rng.random(tuple(x.shape)) >= self.p)
        return x * mask * (1.0 / (1.0 - self.p))


def to_torch(model: Sequential, same_masks: bool = False) -> nn.Sequential:
    """An ``nn.Sequential`` computing what ``model.predict`` does, starting from its weights
    (in the model's dtype; the modules are made in float64 so the copy loses nothing).
    Dropout is ``nn.Dropout``, what a PyTorch user writes, or with ``same_masks`` a
    ``SameMaskDropout`` drawing the masks the model's own Dropout layers will draw.

    layerwise's Affine W is (in, out) and computes x·W; nn.Linear keeps (out, in) and computes
    x·Wᵀ, so the weight is copied transposed. Convolution W (FN, C, FH, FW) is Conv2d's layout.
    A Flatten goes before the first Linear that follows an image-shaped layer (layerwise's
    Affine flattens its input itself, in the same C-order).
    """
    modules: list[nn.Module] = []
    generators: dict = {}  # deepcopy's memo: one copy per generator, however many layers share it
    images = False
    for layer in model:
        if isinstance(layer, Affine):
            W, b = layer.params["W"], layer.params["b"]
            if images:
                modules.append(nn.Flatten())
                images = False
            linear = nn.Linear(*W.shape, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
                linear.bias.copy_(torch.from_numpy(b))
            modules.append(linear)
        elif isinstance(layer, Convolution):
            W, b = layer.params["W"], layer.params["b"]
            FN, C, FH, FW = W.shape
            conv = nn.Conv2d(C, FN, (FH, FW), stride=layer.stride, padding=layer.pad, dtype=torch.float64)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(W))
                conv.bias.copy_(torch.from_numpy(b))
            modules.append(conv)
            images = True
        elif isinstance(layer, Pooling):
            modules.append(nn.MaxPool2d((layer.pool_h, layer.pool_w), layer.stride, layer.pad))
        elif isinstance(layer, ReLU):
            modules.append(nn.ReLU())
        elif isinstance(layer, Dropout) and layer.mode == "inverted":
            # both the identity in eval mode, like ours
            modules.append(SameMaskDropout(layer, generators) if same_masks else nn.Dropout(layer.dropout_ratio))
        else:
            raise TypeError(f"no PyTorch twin for {layer!r}")
    return nn.Sequential(*modules).to(torch.from_numpy(np.zeros(0, model.dtype)).dtype)


def weight_difference(model: Sequential, tmodel: nn.Sequential) -> float:
    """max |w_layerwise - w_torch| over max |w|, across all weights and biases."""
    theirs = [m for m in tmodel if isinstance(m, (nn.Linear, nn.Conv2d))]
    ours = [la for la in model if isinstance(la, (Affine, Convolution))]
    diff = scale = 0.0
    for layer, module in zip(ours, theirs, strict=True):
        W = module.weight.detach().numpy()
        W = W.T if isinstance(layer, Affine) else W
        for a, b in ((layer.params["W"], W), (layer.params["b"], module.bias.detach().numpy())):
            diff = max(diff, float(np.max(np.abs(a - b))))
            scale = max(scale, float(np.max(np.abs(a))))
    return diff / scale


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    """torch.optim with layerwise's hyperparameters (Adam: betas (0.9, 0.999), eps 1e-8)."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    raise ValueError(f"no PyTorch optimizer for {name!r}")


class TorchRun:
    """A PyTorch model, its optimizer and the data as tensors (shared with the NumPy arrays)."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                 x: np.ndarray, t: np.ndarray, batch_size: int) -> None:
        self.model, self.optimizer, self.batch_size = model, optimizer, batch_size
        self.x = torch.from_numpy(x)
        self.t = torch.from_numpy(t.astype(np.int64))
        self.loss_fn = nn.CrossEntropyLoss()

    def epoch(self, order: np.ndarray) -> list[float]:
        """One epoch over the samples in ``order`` (the layerwise Trainer's permutation)."""
        self.model.train()
        order_t = torch.from_numpy(order.astype(np.int64))
        losses = []
        for start in range(0, len(order_t), self.batch_size):
            idx = order_t[start : start + self.batch_size]
            xb, tb = self.x[idx], self.t[idx]
            self.optimizer.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(xb), tb)
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())  # the Trainer records every step's loss too
        return losses


def predict(model: nn.Module, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Scores for every row of ``x``, in batches, in inference mode."""
    model.eval()
    xt = torch.from_numpy(x)
    with torch.inference_mode():
        return torch.cat([model(xt[s : s + batch_size]) for s in range(0, len(xt), batch_size)]).numpy()


def accuracy(model: nn.Module, x: np.ndarray, t: np.ndarray, batch_size: int = 1000) -> float:
    return float(np.mean(predict(model, x, batch_size).argmax(axis=1) == t))

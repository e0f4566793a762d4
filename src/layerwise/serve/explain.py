"""One image through the served model, with what the Draw page shows: the class probabilities,
each layer's activations, and the gradient of a class's score with respect to the input
pixels, computed by the layers' own ``backward`` (no numerical differences).

The explainer holds its own copy of the model's layers: a layer caches its forward pass for
its backward, so requests take turns on the copy (one image is ~0.1 ms for a 64-50-10 net),
and the served model itself is never touched.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

import numpy as np

from ..functional import softmax
from ..graph.stepper import layer_labels
from .model import ServedModel

__all__ = ["Explainer", "Explanation", "LayerActivation"]


@dataclass
class LayerActivation:
    """One layer's output for the image (batch axis dropped); ReLU's ``mask`` (x <= 0) too."""

    layer: str
    kind: str
    values: np.ndarray
    mask: np.ndarray | None = None


@dataclass
class Explanation:
    """What the Draw page shows about one image: probabilities, the explained class, its input
    gradient and every layer's activations."""

    probabilities: np.ndarray  # (classes,) float64
    chosen: int  # the class whose score was differentiated
    input_gradient: np.ndarray  # (height, width): d score[chosen] / d pixel
    activations: list[LayerActivation]


class Explainer:
    """Predicts one (height, width) image and backpropagates one class's score to its pixels."""

    def __init__(self, served: ServedModel) -> None:
        self.served = served
        self.layers = copy.deepcopy(list(served.model))
        for layer in self.layers:
            if hasattr(layer, "needs_input_grad"):
                layer.needs_input_grad = True  # a model's first layer skips dx; here dx is the point
        self.labels = layer_labels(self.layers)
        self.dtype = served.model.dtype
        self._lock = threading.Lock()

    def explain(self, image: np.ndarray, chosen: int | None = None) -> Explanation:
        """``image``: (height, width) floats in [0, 1], checked by the caller. ``chosen``: the
        class whose score's gradient is returned; the most probable class by default."""
        x = np.asarray(image, dtype=self.dtype).reshape(1, *self.served.sample_shape)
        with self._lock:
            activations = []
            h = x
            for label, layer in zip(self.labels, self.layers, strict=True):
                h = layer.forward(h, train=False)
                kind = type(layer).__name__
                mask = None
                if kind == "Relu":
                    # ReLU's mask (x <= 0). In evaluation mode the layer keeps x, not the mask
                    # (inference saves the pass), and out = max(x, 0) is 0 exactly where x <= 0.
                    mask = h[0] <= 0
                activations.append(LayerActivation(label, kind, h[0].copy(), mask))
            scores = h
            probabilities = softmax(scores.astype(np.float64))[0]
            k = int(np.argmax(probabilities)) if chosen is None else int(chosen)
            # d score_k / d scores is one-hot at k; each layer's backward carries it to the pixels.
            dout = np.zeros_like(scores)
            dout[0, k] = 1
            for layer in reversed(self.layers):
                dout = layer.backward(dout)
        gradient = np.asarray(dout, dtype=np.float64).reshape(self.served.image_size)
        return Explanation(probabilities, k, gradient, activations)

"""A training step's batch cut into parts, one per owned thread, each part through the whole
network on its own: the ``"split"`` thread plan (``kernels.tuning``).

Plain expression (checked in tests/models/test_batch_parts.py): ``gradient(model, x, t)`` is
``model.gradient(x, t)``, and sets ``model.loss_layer.loss`` to the batch's loss, as that
does. In parts, each part's gradient is that of its own mean loss, so the batch's is their
sum weighted by the parts' sizes, added in part order; equal to float rounding, and the
same from run to run (the parts depend on the batch size and the threads alone). Dropout
draws the very masks it draws for the whole batch: each part's generator starts where the
whole batch's rows before it leave off (``bit_generator.advance``).

Why: with the batch split per layer (``"owned"``), both threads meet after every pass and
product of every layer, and small layers split badly (DeepConvNet's third convolution made 3
chunks for 2 threads). A part that runs the whole network meets the other only at the end of
the step, and runs every layer on its own half of the images. Measured on the 2-core AMD VM
(SkylakeX kernels, DeepConvNet, batch 100): benchmarks/README.md, "The batch in parts".

Only networks whose layers treat each sample on its own can be cut (``splittable``): not
BatchNormalization (its statistics are the batch's), nor a layer class layerwise does not
know. After a step in parts the layers' caches (``x``, ``mask``, ...) hold the first part's
rows; the loss layer's ``loss`` is the whole batch's.
"""

from __future__ import annotations

import copy
import math
from types import EllipsisType

import numpy as np

from ..kernels.threads import batch_parts, in_parts
from ..layers import (
    Affine,
    AvgPooling,
    Convolution,
    Dropout,
    Flatten,
    Identity,
    Layer,
    LeakyReLU,
    MeanSquaredError,
    Pooling,
    Relu,
    Sigmoid,
    Softmax,
    SoftmaxWithLoss,
    Tanh,
)
from .sequential import Sequential

__all__ = ["gradient", "splittable"]

#: Layers whose output for a sample depends on that sample alone (losses: a mean over the
#: samples), so that a batch's gradient is the size-weighted sum of its parts'.
PER_SAMPLE = (Affine, AvgPooling, Convolution, Dropout, Flatten, Identity, LeakyReLU, Pooling, Relu, Sigmoid,
              Softmax, Tanh, SoftmaxWithLoss, MeanSquaredError)


#: Bit generators whose ``advance(k)`` skips exactly k draws of a Dropout mask (Philox's skips
#: blocks of four).
ADVANCEABLE = (np.random.PCG64, np.random.PCG64DXSM)


def splittable(model: object) -> bool:
    """Whether ``gradient`` can cut ``model``'s batch: a Sequential of distinct ``PER_SAMPLE``
    layers, each Dropout drawing from a generator of its own that can be advanced (NumPy's
    default PCG64 can), and no method of the step replaced on the model object itself (the
    parts' replicas would not run it)."""
    if not isinstance(model, Sequential):
        return False
    layers = [*model._layers, model.loss_layer]
    generators = [layer.rng for layer in layers if isinstance(layer, Dropout)]
    return (
        all(type(layer) in PER_SAMPLE for layer in layers)
        and len({id(layer) for layer in layers}) == len(layers)
        and all(isinstance(rng.bit_generator, ADVANCEABLE) for rng in generators)
        and len({id(rng) for rng in generators}) == len(generators)
        and not {"gradient", "loss", "predict", "_forward"} & set(vars(model))
    )


def gradient(model: Sequential, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """``model.gradient(x, t)``, with the batch in one part per owned thread while the
    ``"split"`` plan is on (``kernels.threads.split_batches``) and the model is
    ``splittable``. A 1-D ``x`` is not cut: it may be one sample, not a batch (its squared
    error is summed, not a mean over rows, so parts weighted by their sizes would halve it)."""
    parts = batch_parts()
    if parts <= 1 or x.ndim < 2 or len(x) < parts or not splittable(model):
        return model.gradient(x, t)
    return _gradient_in_parts(model, x, t)


def _gradient_in_parts(model: Sequential, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    n = len(x)
    dropout = _dropout_draws(model, x.shape[1:])
    start_states = {layer: copy.deepcopy(layer.rng.bit_generator) for layer in dropout}
    results: dict[int, tuple[dict[str, np.ndarray], float, int]] = {}

    def part(rows: slice | EllipsisType) -> None:
        if not isinstance(rows, slice):  # not cut after all: one call over the whole batch
            results[0] = (model.gradient(x, t), model.loss_layer.loss, n)
            return
        if rows.start == 0:  # the first part runs on the model itself: its caches are the model's
            net = model
        else:
            net = _replica(model, {layer: _advanced(start_states[layer], rows.start * draws)
                                   for layer, draws in dropout.items()})
        grads = net.gradient(x[rows], t[rows])
        results[rows.start] = (grads, net.loss_layer.loss, rows.stop - rows.start)

    in_parts(part, n)
    if len(results) == 1:
        return results[0][0]
    (first, *rest) = (results[start] for start in sorted(results))
    for layer, draws in dropout.items():  # past the whole batch's draws, as one call would be
        layer.rng.bit_generator.advance((n - first[2]) * draws)
    total = {name: g * (first[2] / n) for name, g in first[0].items()}
    for grads, _, size in rest:
        for name, g in grads.items():
            total[name] += g * (size / n)
    model.loss_layer.loss = sum(loss * (size / n) for _, loss, size in (first, *rest))
    for name, (layer, key) in model._param_slots.items():
        layer.grads[key] = total[name]
    return total


def _dropout_draws(model: Sequential, sample_shape: tuple[int, ...]) -> dict[Dropout, int]:
    """Each Dropout layer's random draws per sample (its input's size)."""
    draws, shape = {}, (1, *sample_shape)
    for layer in model._layers:
        if isinstance(layer, Dropout):
            draws[layer] = math.prod(shape[1:])
        shape = layer.output_shape(shape)
    return draws


def _advanced(bit_generator: np.random.BitGenerator, draws: int) -> np.random.Generator:
    twin = copy.deepcopy(bit_generator)
    twin.advance(draws)
    return np.random.Generator(twin)


def _replica(model: Sequential, rngs: dict[Dropout, np.random.Generator]) -> Sequential:
    """The model again (its class: the same ``loss`` and ``gradient``), its layers sharing the
    model's parameters (the same dicts: an optimizer's update reaches every replica) with
    caches and gradients of their own."""
    def twin(layer: Layer) -> Layer:
        other = copy.copy(layer)
        other.grads = dict(layer.grads)  # backward assigns each entry anew
        if layer in rngs:
            other.rng = rngs[layer]
        return other

    replica = copy.copy(model)
    replica._layers = [twin(layer) for layer in model._layers]
    replica.loss_layer = twin(model.loss_layer)
    replica._index_tensors()
    return replica

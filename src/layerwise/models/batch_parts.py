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

Under the ``"processes"`` plan (``kernels.processes``) the parts after the first run in worker
processes (``models.part_worker``), each on a copy of the network rebuilt from its config whose
parameters are the trainer's, copied into shared memory before every step: the same parts,
draws and sums as on threads, without the threads' shared interpreter lock. A network a worker
cannot rebuild exactly (``in_processes``: a class of the user's own) runs its parts on threads. If
a worker fails (it died, hung, or raised), a warning says so and the step computes that part
itself, as do the run's later steps: the numbers are the same either way.
"""

from __future__ import annotations

import copy
import itertools
import math
import warnings
from types import EllipsisType

import numpy as np

from ..kernels import kept_choices, processes
from ..kernels.threads import batch_parts, in_parts, paused_ownership
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
from .book import DeepConvNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet
from .sequential import Sequential

__all__ = ["gradient", "in_processes", "splittable"]

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


#: Network classes a worker process rebuilds exactly from ``config()`` (not a subclass of the
#: user's, whose methods the worker would not have).
REBUILDABLE = (Sequential, TwoLayerNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, DeepConvNet)


def in_processes(model: object) -> bool:
    """Whether ``gradient`` can send ``model``'s parts to worker processes: ``splittable``, of
    a class they rebuild (``REBUILDABLE``), on a platform that runs them."""
    return type(model) in REBUILDABLE and splittable(model) and processes.supported()


def gradient(model: Sequential, x: np.ndarray, t: np.ndarray) -> dict[str, np.ndarray]:
    """``model.gradient(x, t)``, with the batch in one part per owned thread while the
    ``"split"`` plan is on (``kernels.threads.split_batches``), or per process while the
    ``"processes"`` plan is (``kernels.processes.processes_plan``), and the model is
    ``splittable``. A 1-D ``x`` is not cut: it may be one sample, not a batch (its squared
    error is summed, not a mean over rows, so parts weighted by their sizes would halve it)."""
    in_workers, _ = processes.active()
    parts = in_workers if in_workers > 1 else batch_parts()
    if parts <= 1 or x.ndim < 2 or len(x) < parts or not splittable(model):
        return model.gradient(x, t)
    if in_workers > 1 and in_processes(model):
        return _gradient_in_processes(model, x, t, in_workers)
    if in_workers > 1:  # a network the workers cannot rebuild: the batch whole, on this thread
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
    total = {name: g * (first[2] / n) for name, g in first[0].items()}
    for grads, _, size in rest:
        for name, g in grads.items():
            total[name] += g * (size / n)
    return _finish(model, dropout, n, total, [(loss, size) for _, loss, size in (first, *rest)])


def _gradient_in_processes(model: Sequential, x: np.ndarray, t: np.ndarray, count: int) -> dict[str, np.ndarray]:
    """``_gradient_in_parts``'s parts, sums and draws, the parts after the first computed by
    the plan's worker processes (``kernels.processes``), started or set up here as needed."""
    n = len(x)
    bounds = [n * k // count for k in range(count + 1)]
    others = list(itertools.pairwise(bounds))[1:]  # worker index's rows: others[index]
    dropout = _dropout_draws(model, x.shape[1:])
    start_states = {layer: copy.deepcopy(layer.rng.bit_generator) for layer in dropout}
    pool = _pool_for(model, x, t, -(-n // count), count - 1)
    sent: list[int] = []

    def send_parts(choices: dict | None) -> processes.PartProcesses | None:
        try:
            views = pool.views
            for name, (layer, key) in model._param_slots.items():
                np.copyto(views[f"param {name}"], layer.params[key])
            for index, (lo, hi) in enumerate(others):
                np.copyto(views[f"x {index}"][: hi - lo], x[lo:hi])
                np.copyto(views[f"t {index}"][: hi - lo], t[lo:hi])
                states = [_advanced(start_states[layer], lo * draws).bit_generator.state
                          for layer, draws in dropout.items()]
                pool.send(index, ("step", (index, hi - lo, (hi - lo) / n, states, choices, np.geterr())))
                sent.append(index)
        except processes.WorkerLost as lost:
            return _lose(lost)
        return pool

    # The first step of a setup runs this process's part first, measuring what it measures
    # (tuning: a convolution's way, a product's blocks), and hands the workers those choices:
    # they measure nothing themselves (part_worker says why).
    first_of_setup = pool is not None and not pool.spec.get("stepped")
    if pool is not None and not first_of_setup:
        pool = send_parts(None)
    with paused_ownership():  # the other cores are the workers'
        first = (model.gradient(x[: bounds[1]], t[: bounds[1]]), model.loss_layer.loss, bounds[1])
    if first_of_setup:
        pool.spec["stepped"] = True
        pool = send_parts(kept_choices.choices_here())
    total = {name: g * (first[2] / n) for name, g in first[0].items()}
    losses = [(first[1], first[2])]
    for index, (lo, hi) in enumerate(others):
        if pool is not None and index in sent:
            try:
                losses.append((pool.receive(index), hi - lo))
                for name in total:
                    total[name] += pool.views[f"grad {index} {name}"]  # the worker's g · (hi - lo) / n
                continue
            except processes.WorkerLost as lost:
                pool = _lose(lost)
        net = _replica(model, {layer: _advanced(start_states[layer], lo * draws) for layer, draws in dropout.items()})
        for name, g in net.gradient(x[lo:hi], t[lo:hi]).items():
            total[name] += g * ((hi - lo) / n)
        losses.append((net.loss_layer.loss, hi - lo))
    return _finish(model, dropout, n, total, losses)


def _finish(
    model: Sequential, dropout: dict[Dropout, int], n: int, total: dict[str, np.ndarray],
    losses: list[tuple[float, int]],
) -> dict[str, np.ndarray]:
    """The whole batch's end of a step in parts: each Dropout's generator past the batch's
    draws (the first part drew its own on the model), the loss the parts' weighted sum
    (``losses``: (loss, rows) in part order), and ``total`` the model's gradients."""
    for layer, draws in dropout.items():  # past the whole batch's draws, as one call would be
        layer.rng.bit_generator.advance((n - losses[0][1]) * draws)
    model.loss_layer.loss = sum(loss * (size / n) for loss, size in losses)
    for name, (layer, key) in model._param_slots.items():
        layer.grads[key] = total[name]
    return total


def _pool_for(
    model: Sequential, x: np.ndarray, t: np.ndarray, rows: int, workers: int,
) -> processes.PartProcesses | None:
    """The plan's pool, started and set up for this network and batch shape if it is not yet;
    None when it cannot be (a warning says why: the step runs its parts here)."""
    _, pool = processes.active()
    config = model.config()
    layers = layer_configs(model)
    key = (config, layers, [(name, p.shape, p.dtype.str) for name, p in model.params.items()],
           x.shape[1:], x.dtype.str, t.shape[1:], t.dtype.str, id(model))
    if pool is not None and pool.spec is not None and pool.spec["key"] == key and pool.spec["rows"] >= rows:
        return pool
    arrays = {f"param {name}": (p.shape, p.dtype) for name, p in model.params.items()}
    for index in range(workers):
        arrays[f"x {index}"] = ((rows, *x.shape[1:]), x.dtype)
        arrays[f"t {index}"] = ((rows, *t.shape[1:]), t.dtype)
        arrays.update({f"grad {index} {name}": (p.shape, p.dtype) for name, p in model.params.items()})
    spec = {"key": key, "rows": rows, "config": config, "dtype": str(model.dtype),
            "layers": layers}
    try:
        if pool is None:
            pool = processes.start_pool(workers)
        pool.setup(spec, processes.Layout.of(arrays))
    except (OSError, processes.WorkerLost) as error:
        return _lose(error)
    return pool


def layer_configs(model: Sequential) -> list[tuple[str, dict]]:
    """Each layer's type and config as a worker must rebuild it (a Dropout's seed aside: the
    trainer sends its generator's state with every step)."""
    return [(type(layer).__name__, {k: v for k, v in layer.config().items() if k != "seed"})
            for layer in model._layers]


def _lose(error: BaseException) -> None:
    """Warn that the workers are gone and leave them: this step's and later steps' parts run here."""
    warnings.warn(f"{error}; training goes on with every part in this process (the same numbers, slower)",
                  RuntimeWarning, stacklevel=4)
    processes.forget_pool()
    return None


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

"""Mini-batches: every sample exactly once per epoch, from a seeded generator, resumable.

The book's training loop draws ``np.random.choice(train_size, batch_size)`` from the unseeded
global RNG: sampling *with* replacement, so within an "epoch" some samples are seen twice and
others never, and no run can be repeated. Here each epoch is one permutation
``rng.permutation(n)`` drawn from a ``np.random.Generator`` at the start of the epoch, cut into
consecutive batches; the last, partial batch is yielded unless ``drop_last``.

Resuming bit-exactly: the permutation depends only on the generator's state at the start of
the epoch. Save that state and the number of batches already taken (``BatchLoader.state_dict``,
or ``rng.bit_generator.state`` yourself with :func:`iterate_minibatches`); restoring it and
starting at batch ``k`` reproduces the remaining batches and leaves the generator exactly where
an uninterrupted epoch would have.

No copy of the dataset per epoch: each batch is gathered with ``np.take(..., out=buffer)`` into
two buffers allocated once and reused, so **a yielded batch is overwritten by the next one**.
Use the batch before asking for the next, or pass ``copy=True`` to get fresh arrays.
"""

from __future__ import annotations

import copy as _copy
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import InputError, ShapeError

Batch = tuple[np.ndarray, np.ndarray]


def steps_per_epoch(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Number of batches in one epoch of ``n`` samples: ceil(n / batch_size), or
    floor(n / batch_size) when the last partial batch is dropped."""
    _check_batch_size(batch_size)
    if n < 0:
        raise InputError(f"steps_per_epoch: n must be >= 0, got {n}")
    return n // batch_size if drop_last else -(-n // batch_size)


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise InputError(f"batch_size must be an integer, got {batch_size!r}")
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")


def _check_data(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, t = np.asarray(x), np.asarray(t)
    if x.ndim == 0 or t.ndim == 0:
        raise ShapeError(f"batches: x and t need a sample axis, got shapes {x.shape} and {t.shape}")
    if x.shape[0] != t.shape[0]:
        raise ShapeError(
            f"batches: x and t hold different numbers of samples: x {x.shape}, t {t.shape}"
        )
    return x, t


def _as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise InputError(f"rng must be a numpy.random.Generator, an int seed or None, got {rng!r}")


class _Buffers:
    """The two reused batch buffers (allocated on first use)."""

    def __init__(self, x: np.ndarray, t: np.ndarray, batch_size: int) -> None:
        size = min(batch_size, x.shape[0])
        self.x = np.empty((size, *x.shape[1:]), dtype=x.dtype)
        self.t = np.empty((size, *t.shape[1:]), dtype=t.dtype)


def _batches(
    x: np.ndarray,
    t: np.ndarray,
    order: np.ndarray | None,
    batch_size: int,
    start: int,
    steps: int,
    buffers: _Buffers | None,
) -> Iterator[tuple[int, Batch]]:
    """Batches ``start .. steps-1`` of one epoch, as (index, (xb, tb)).

    ``order`` is the epoch's permutation (None: file order). ``buffers`` None means copy."""
    n = x.shape[0]
    for k in range(start, steps):
        lo, hi = k * batch_size, min((k + 1) * batch_size, n)
        if buffers is None:
            if order is None:
                yield k, (x[lo:hi].copy(), t[lo:hi].copy())
            else:
                idx = order[lo:hi]
                yield k, (np.take(x, idx, axis=0), np.take(t, idx, axis=0))
            continue
        xb, tb = buffers.x[: hi - lo], buffers.t[: hi - lo]
        if order is None:
            np.copyto(xb, x[lo:hi])
            np.copyto(tb, t[lo:hi])
        else:
            idx = order[lo:hi]
            # mode="clip": with out= the default "raise" buffers the whole copy; the indices
            # come from a permutation, so they are always in range (measured 33 -> 21 ms/epoch).
            x.take(idx, axis=0, out=xb, mode="clip")  # the method: np.take's wrapper costs ~2 us a call
            t.take(idx, axis=0, out=tb, mode="clip")
        yield k, (xb, tb)


def iterate_minibatches(
    x: np.ndarray,
    t: np.ndarray,
    batch_size: int,
    *,
    rng: np.random.Generator | int | None = None,
    shuffle: bool = True,
    drop_last: bool = False,
    start_batch: int = 0,
    copy: bool = False,
) -> Iterator[Batch]:
    """One epoch of ``(x_batch, t_batch)``: each sample exactly once, in the order of a
    permutation drawn from ``rng`` (a Generator, an int seed, or None for fresh entropy)
    when the first batch is requested; file order when ``shuffle`` is false.

    ``start_batch=k`` skips the first ``k`` batches without gathering them; with ``rng`` in
    the state it had at the epoch's start, the batches are those an uninterrupted epoch
    would have given from batch ``k`` on. The permutation is always drawn in full, so ``rng``
    ends in the same state either way. Yielded arrays are reused buffers unless ``copy``.
    """
    x, t = _check_data(x, t)
    steps = steps_per_epoch(x.shape[0], batch_size, drop_last)
    if not 0 <= start_batch <= steps:
        raise InputError(f"start_batch must be in 0..{steps}, got {start_batch}")
    generator = _as_generator(rng) if shuffle else None
    return _iterate(x, t, batch_size, generator, start_batch, steps, copy)


def _iterate(
    x: np.ndarray,
    t: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None,
    start: int,
    steps: int,
    copy: bool,
) -> Iterator[Batch]:
    # A separate generator function so the argument checks above run at call time.
    order = rng.permutation(x.shape[0]) if rng is not None else None
    buffers = None if copy else _Buffers(x, t, batch_size)
    for _, batch in _batches(x, t, order, batch_size, start, steps, buffers):
        yield batch


class BatchLoader:
    """Iterable over mini-batches, one epoch per ``iter()``, with a resumable position.

    ``for x_batch, t_batch in loader:`` gives one epoch (each sample exactly once; the last
    partial batch too unless ``drop_last``); iterate again for the next epoch. ``len(loader)``
    is the number of batches per epoch. Batches are reused buffers unless ``copy=True``.

    ``state_dict()`` says where the *next* batch comes from: ``{"epoch", "batch",
    "rng_state"}``, where ``rng_state`` is the generator's state at the start of that epoch
    (plain ints and strings: JSON-able). ``load_state_dict(state)`` on a loader over the same
    data continues with exactly the batches the saved one would have produced. A loader
    whose iteration was abandoned mid-epoch also continues where it stopped on the next
    ``iter()``. Give the loader a generator of its own: one shared with, e.g., Dropout is
    advanced by that layer mid-epoch, which ``rng_state`` does not capture.
    """

    def __init__(
        self,
        x: np.ndarray,
        t: np.ndarray,
        batch_size: int,
        *,
        rng: np.random.Generator | int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        copy: bool = False,
    ) -> None:
        self.x, self.t = _check_data(x, t)
        _check_batch_size(batch_size)
        self.batch_size = int(batch_size)
        self.rng = _as_generator(rng)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.copy = copy
        self.epoch = 0  #: completed epochs
        self.batch = 0  #: batches already taken in the current epoch
        self._order: np.ndarray | None = None  # the current epoch's permutation, once drawn
        self._epoch_state: dict[str, Any] | None = None  # rng state at the epoch's start
        self._buffers: _Buffers | None = None

    def __len__(self) -> int:
        return steps_per_epoch(self.x.shape[0], self.batch_size, self.drop_last)

    def __iter__(self) -> Iterator[Batch]:
        steps = len(self)
        if steps == 0:
            self.epoch += 1
            return
        if self._epoch_state is None:  # a new epoch (or one restored by load_state_dict)
            self._epoch_state = _copy.deepcopy(self.rng.bit_generator.state)
            self._order = self.rng.permutation(self.x.shape[0]) if self.shuffle else None
        if not self.copy and self._buffers is None:
            self._buffers = _Buffers(self.x, self.t, self.batch_size)
        buffers = None if self.copy else self._buffers
        for k, batch in _batches(
            self.x, self.t, self._order, self.batch_size, self.batch, steps, buffers
        ):
            # Advance the position *before* handing the batch out, so a state_dict() taken
            # after using it points at the next one, and the end-of-epoch bookkeeping is done
            # even if the caller stops right after the last batch.
            if k + 1 == steps:
                self.epoch += 1
                self.batch = 0
                self._order = None
                self._epoch_state = None
            else:
                self.batch = k + 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """Where the next batch comes from (JSON-able): epoch, batch, rng_state."""
        state = self._epoch_state if self._epoch_state is not None else self.rng.bit_generator.state
        return {"epoch": self.epoch, "batch": self.batch, "rng_state": _copy.deepcopy(state)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict` of a loader over the same data and settings."""
        try:
            epoch, batch, rng_state = int(state["epoch"]), int(state["batch"]), state["rng_state"]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"BatchLoader.load_state_dict: malformed state ({exc!r})") from exc
        if not 0 <= batch < max(len(self), 1):
            raise InputError(
                f"BatchLoader.load_state_dict: batch {batch} out of range 0..{len(self) - 1}"
            )
        try:
            self.rng.bit_generator.state = _copy.deepcopy(rng_state)
        except (TypeError, ValueError, KeyError) as exc:
            raise InputError(
                f"BatchLoader.load_state_dict: rng_state does not fit this loader's "
                f"{type(self.rng.bit_generator).__name__} generator ({exc})"
            ) from exc
        self.epoch, self.batch = epoch, batch
        # Redraw the permutation from the restored state at the next iter().
        self._order = None
        self._epoch_state = None

"""The training loop: epochs of shuffled mini-batches, evaluation, history, checkpoints.

Determinism: one seeded generator shuffles the data; its state at the start of each epoch is
kept in every checkpoint, together with the model, the optimizer state and every layer's own
generator (Dropout), so a resumed run repeats the uninterrupted one bit for bit.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import json
import math
import operator
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .datasets import iterate_minibatches
from .errors import InputError, LayerwiseError, ShapeError, TrainingDiverged
from .io import atomic_write, save
from .kernels.blas_limits import CoreShare, run_threads, share_cores
from .kernels.kept_choices import cache_file
from .kernels.memory import keep_freed_memory
from .kernels.threads import SPLIT_MIN_ELEMENTS
from .kernels.tuning import PLANS, ThreadPlan, enter_plan, training_plan
from .models import Sequential
from .models.batch_parts import gradient, in_processes, splittable
from .optim import LR_SCHEDULES, lr_factor

__all__ = ["History", "Trainer", "check_dataset"]

CHECKPOINT_NAME = "checkpoint.safetensors"
MODEL_NAME = "model.safetensors"
#: A loss this many times the run's first loss (or 1, if larger) counts as divergence. The
#: loss is computed exactly (log-softmax), so a blown-up network gives huge finite losses
#: (1e4, 1e11, ...) long before it gives NaN, and would otherwise "train" at chance level.
DIVERGENCE_FACTOR = 1000.0


@dataclass
class History:
    """What training recorded: the loss of every step and a row per epoch."""

    step_loss: list[float] = field(default_factory=list)
    epochs: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> History:
        return cls(list(data.get("step_loss", [])), list(data.get("epochs", [])))

    def write(self, run_dir: Path) -> None:

        atomic_write(run_dir / "history.json", json.dumps(self.to_dict(), indent=1).encode())
        if self.epochs:
            lines = [",".join(self.epochs[0])]
            lines += [",".join(str(row[k]) for k in self.epochs[0]) for row in self.epochs]
            atomic_write(run_dir / "history.csv", ("\n".join(lines) + "\n").encode())


def check_dataset(x: np.ndarray, t: np.ndarray, classes: int | None, where: str) -> None:
    """Refuse data that would fail deep inside a step: wrong kinds, NaN/inf, bad labels."""
    if x.dtype.kind not in "fiu":
        raise InputError(f"{where}: images must be real numbers, got dtype {x.dtype}")
    if len(x) == 0:
        raise InputError(f"{where}: the dataset is empty")
    if len(x) != len(t):
        raise ShapeError(f"{where}: {len(x)} images but {len(t)} labels")
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0]
        raise InputError(f"{where}: image {bad} contains NaN or infinity")
    if t.ndim == 1:
        if t.dtype.kind not in "iu":
            raise InputError(f"{where}: labels must be integer class indices, got dtype {t.dtype}")
        if classes is not None and (t.min() < 0 or t.max() >= classes):
            bad = t.min() if t.min() < 0 else t.max()
            raise InputError(f"{where}: label {bad} is out of range for {classes} classes")
    elif t.ndim != 2 or (classes is not None and t.shape[1] != classes):
        raise ShapeError(f"{where}: labels of shape {t.shape}: expected ({len(x)},) or ({len(x)}, {classes})")
    elif t.dtype.kind not in "fiu" or (t.dtype.kind == "f" and not np.all(np.isfinite(t))):
        raise InputError(f"{where}: one-hot labels must be finite real numbers (dtype {t.dtype})")


class Trainer:
    """Fits a model with an optimizer: ``Trainer(model, optimizer, x, t, x_test, t_test).fit()``.

    Every epoch shuffles the training set without replacement (seeded), runs its mini-batches
    (the last one may be smaller), then evaluates accuracy on the test split and on a fixed
    sample of at most ``train_eval_samples`` training images (0: none). With ``run_dir`` a checkpoint is
    written atomically at the end of every epoch (and every ``checkpoint_every`` steps if set).

    It trains in the model's dtype: ``layerwise train`` builds float32 models (the fast
    default, ``--dtype float64`` to opt in), while the book's nets built from Python are
    float64 unless given ``dtype=np.float32``, as in the book. Batches are converted to the
    model's dtype as they are drawn.

    ``lr_schedule="cosine"`` anneals the optimizer's learning rate from the lr it has when the
    Trainer is made down towards 0 over all the run's steps (``optim.lr_factor``); before each
    step the Trainer sets ``optimizer.lr`` from the step number, so a resumed run continues on
    the same curve. Each epoch's row records the last step's ``lr``.
    """

    def __init__(
        self,
        model: Sequential,
        optimizer,
        x_train: np.ndarray,
        t_train: np.ndarray,
        x_test: np.ndarray | None = None,
        t_test: np.ndarray | None = None,
        *,
        epochs: int = 20,
        batch_size: int = 100,
        seed: int = 0,
        run_dir: str | Path | None = None,
        checkpoint_every: int = 0,
        train_eval_samples: int = 10_000,
        progress: bool | None = None,
        log: Callable[[str], None] | None = print,
        lr_schedule: str = "constant",
        on_step: Callable[[int, float], None] | None = None,
        on_epoch: Callable[[dict], None] | None = None,
    ) -> None:

        if int(epochs) != epochs or epochs < 1:
            raise InputError(f"epochs must be a positive whole number, got {epochs}")
        if int(batch_size) != batch_size or batch_size < 1:
            raise InputError(f"batch_size must be a positive whole number, got {batch_size}")
        if int(checkpoint_every) != checkpoint_every or checkpoint_every < 0:
            raise InputError(f"checkpoint_every must be a whole number >= 0, got {checkpoint_every}")
        if lr_schedule not in LR_SCHEDULES:
            raise InputError(f"unknown lr_schedule {lr_schedule!r}; choose from {', '.join(LR_SCHEDULES)}")
        if lr_schedule != "constant" and not hasattr(optimizer, "lr"):
            raise InputError(f"lr_schedule {lr_schedule!r} needs an optimizer with an lr attribute")
        if (x_test is None) != (t_test is None):
            raise InputError("give both x_test and t_test, or neither")
        self.model, self.optimizer = model, optimizer
        classes = model.output_size
        # Lists and other array-likes are accepted; everything below indexes NumPy arrays.
        x_train, t_train = np.asarray(x_train), np.asarray(t_train)
        check_dataset(x_train, t_train, classes, "training data")
        if x_test is not None:
            x_test, t_test = np.asarray(x_test), np.asarray(t_test)
            check_dataset(x_test, t_test, classes, "test data")
        # Batch normalisation cannot train on a batch of one; without this check the run
        # would fail at the end of its first epoch, after the epoch's work.
        last = len(x_train) % int(batch_size) or int(batch_size)
        if last == 1 and any(type(la).__name__ == "BatchNormalization" for la in model):
            raise InputError(
                f"batch_size {batch_size} leaves a last batch of 1 of the {len(x_train)} training images, "
                f"and BatchNormalization cannot train on one sample; use batch_size {int(batch_size) + 1}"
            )
        # One sample through the model (evaluation mode: no random draws, no running-statistics
        # update): images of the wrong shape fail now, not after an epoch of training.
        for x, where in ((x_train, "training data"), (x_test, "test data")):
            if x is not None:
                try:
                    model.predict(x[:1])
                except ShapeError as exc:
                    raise ShapeError(f"{where}: images of shape {x.shape[1:]} do not fit the model: {exc}") from None
        self.x_train, self.t_train = x_train, t_train
        self.x_test, self.t_test = x_test, t_test
        self.epochs, self.batch_size = int(epochs), int(batch_size)
        self.seed = seed
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)  # fails now, not at the first checkpoint
        self.checkpoint_every = int(checkpoint_every)
        self.lr_schedule = lr_schedule
        self.base_lr = getattr(optimizer, "lr", None)
        self.progress = sys.stderr.isatty() if progress is None else progress
        self.log = log or (lambda _msg: None)
        self.history = History()
        self.shuffle_rng = np.random.default_rng(seed)
        # Training accuracy on a fixed sample: cheap each epoch, comparable across epochs.
        try:
            self.train_eval_samples = operator.index(train_eval_samples)
        except TypeError:
            self.train_eval_samples = -1  # named below, as a negative count is
        if self.train_eval_samples < 0:
            raise InputError(
                f"train_eval_samples must be a whole number >= 0 (0: no training accuracy), got {train_eval_samples!r}"
            )
        n = len(x_train)
        sample = np.random.default_rng(seed + 1).permutation(n)[: min(n, self.train_eval_samples)]
        # None when the sample is the whole set (sorted, it is every index in order): the rows
        # themselves are scored, not a copy of them (a sweep scores all 48,000 training images
        # each epoch, and the copy was 150 MB of fresh memory per epoch).
        self._train_eval_idx = None if len(sample) == n else np.sort(sample)
        self.epoch = 0  # completed epochs
        self.step_in_epoch = 0  # completed steps of the current epoch
        self._epoch_rng_state = self.shuffle_rng.bit_generator.state
        self._core_share: CoreShare | None = None  # during fit(), when BLAS's threads are shared
        #: How fit() used its threads, and how that was decided (``kernels.tuning.ThreadPlan``);
        #: None before fit().
        self.thread_plan: ThreadPlan | None = None
        #: Steps run so far on each number of BLAS threads, for an MLP whose threads were left
        #: to layerwise: {2: 580, 1: 20} says 20 steps gave a core to another process.
        self.shared_thread_steps: collections.Counter[int] = collections.Counter()
        #: Called after every step with (steps done in the run, the step's loss), and after every
        #: epoch with its row: how a live view (``layerwise serve``'s Train page) follows a run.
        self.on_step, self.on_epoch = on_step, on_epoch
        self._stop = threading.Event()
        #: True when :meth:`stop` ended the run before its last epoch.
        self.stopped = False

    # -- state for checkpoints -------------------------------------------------------------
    def _layer_rngs(self) -> dict[str, np.random.Generator]:
        return {str(i): la.rng for i, la in enumerate(self.model) if hasattr(la, "rng")}

    def state(self) -> dict:
        return {
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "epoch_rng_state": self._epoch_rng_state,
            "layer_rng_states": {k: g.bit_generator.state for k, g in self._layer_rngs().items()},
            "history": self.history.to_dict(),
            "lr_schedule": self.lr_schedule,
            "base_lr": self.base_lr,
            # How the threads were used: a resumed run uses them the same way (the plan decides
            # which kernels compute the products), whatever the machine's cache of plans holds.
            "thread_plan": None if self.thread_plan is None else
            {"plan": self.thread_plan.plan, "threads": self.thread_plan.threads},
        }

    def load_state(self, state: dict) -> None:
        self.epoch, self.step_in_epoch = int(state["epoch"]), int(state["step_in_epoch"])
        self._epoch_rng_state = state["epoch_rng_state"]
        self.shuffle_rng.bit_generator.state = self._epoch_rng_state
        rngs = self._layer_rngs()
        for key, rng_state in state.get("layer_rng_states", {}).items():
            if key not in rngs:
                raise ShapeError(f"checkpoint has a random generator for layer {key}, the model has none")
            rngs[key].bit_generator.state = rng_state
        self.history = History.from_dict(state.get("history", {}))
        saved = state.get("lr_schedule", "constant")
        if saved != self.lr_schedule:
            raise InputError(f"the checkpoint was trained with lr_schedule {saved!r}, not {self.lr_schedule!r}")
        if state.get("base_lr") is not None:
            self.base_lr = float(state["base_lr"])
        plan = state.get("thread_plan")
        if isinstance(plan, dict) and plan.get("plan") in PLANS and isinstance(plan.get("threads"), int):
            self.thread_plan = ThreadPlan(plan["plan"], plan["threads"], "kept from the checkpoint")

    def save_checkpoint(self) -> Path | None:
        """Write the checkpoint atomically. Refuses (TrainingDiverged) when a parameter or an
        optimizer state is NaN/inf, so the checkpoint on disk is always the last good one."""
        if self.run_dir is None:
            return None

        arrays = [*self.model.state_dict().items(), *self.optimizer.state_dict()["arrays"].items()]
        bad = next((name for name, a in arrays if not np.all(np.isfinite(a))), None)
        if bad is not None:
            step = self.epoch * self._steps_per_epoch() + self.step_in_epoch
            raise TrainingDiverged(
                f"training diverged: {bad} is not finite after step {step} (epoch {self.epoch + 1}, "
                f"batch {self.step_in_epoch}){self._lr_hint()}.{self._kept()}"
            )

        return save(self.model, self.run_dir / CHECKPOINT_NAME, optimizer=self.optimizer, state=self.state())

    # -- the loop --------------------------------------------------------------------------
    def _batches(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """This epoch's batches from the current step on; the permutation is drawn from the
        generator as it stood at the epoch's start, so a resumed epoch sees the same order.
        Batches are gathered into reused buffers (no copy of the dataset, no new arrays)."""

        self.shuffle_rng.bit_generator.state = self._epoch_rng_state
        return iterate_minibatches(self.x_train, self.t_train, self.batch_size, rng=self.shuffle_rng,
                                   start_batch=self.step_in_epoch)

    def _steps_per_epoch(self) -> int:
        return math.ceil(len(self.x_train) / self.batch_size)

    def evaluate(self) -> dict:
        row = {}
        if self.train_eval_samples:
            idx = self._train_eval_idx
            x, t = (self.x_train, self.t_train) if idx is None else (self.x_train[idx], self.t_train[idx])
            row["train_acc"] = self.model.accuracy(x, t)
        if self.x_test is not None:
            row["test_acc"] = self.model.accuracy(self.x_test, self.t_test)
        return row

    def stop(self) -> None:
        """Ask a running :meth:`fit` (in another thread) to return after its current step."""
        self._stop.set()

    def fit(self) -> History:
        """Train until ``epochs`` are complete (continuing a resumed run); returns the history."""

        keep_freed_memory()  # the next step's arrays reuse this step's pages (see kernels.memory)
        steps = self._steps_per_epoch()
        with self._threads():
            self._fit_epochs(steps)
        return self.history

    def _threads(self) -> contextlib.ExitStack:
        """The run's threads (``kernels.blas_limits.run_threads``), used as ``thread_plan`` says:
        BLAS on all of them, BLAS on one, or layerwise owning them and splitting the passes
        and products itself (``owned_threads``). The plan is measured on this machine the
        first time a network of this shape trains with this many threads, and kept
        (``kernels.tuning.training_plan``). BLAS on all threads left to layerwise (not fixed by
        the user) gives cores back to other processes while they need them (``CoreShare``)."""

        stack = contextlib.ExitStack()
        threads, fixed = run_threads()
        self._plan_for(threads)
        if self.thread_plan.plan != "blas" or fixed or threads == 1:
            stack.enter_context(enter_plan(self.thread_plan.plan, threads))
        else:
            self._core_share = stack.enter_context(share_cores(threads))
            stack.callback(setattr, self, "_core_share", None)
        return stack

    def plan_threads(self) -> ThreadPlan:
        """How :meth:`fit` will use the run's threads (also ``thread_plan``): kept from an
        earlier measurement on this machine, else measured now (2-3 s, once per machine and
        network) unless the run is too short to be worth it (``kernels.tuning.training_plan``).
        ``fit`` calls it; call it first to have the measurement done before something else."""
        return self._plan_for(run_threads()[0])

    def _plan_for(self, threads: int) -> ThreadPlan:
        if self.thread_plan is None or self.thread_plan.threads != threads:
            work = 3 * (self.epochs - self.epoch) * len(self.x_train) * self._macs_per_sample()
            plans = tuple(p for p in PLANS if (p != "split" or splittable(self.model))
                          and (p != "processes" or in_processes(self.model)))
            self.thread_plan = training_plan(self._plan_key(), threads, self._plan_by_shape(), self._plan_probe, work,
                                             plans)
            if self.thread_plan.how == "measured":
                self.log(f"threads: {self.thread_plan.describe()}; kept for later runs in {cache_file()}")
            elif self.thread_plan.how == "measured, not kept":
                self.log(f"threads: {self.thread_plan.describe()}")
        if self.thread_plan.plan == "processes" and not in_processes(self.model):
            # As below; the parts then run on threads when the model can be cut at all.
            fallback = "split" if splittable(self.model) else "owned"
            how = f"{self.thread_plan.how}; this model cannot run in processes"
            self.thread_plan = ThreadPlan(fallback, threads, how)
        if self.thread_plan.plan == "split" and not splittable(self.model):
            # Kept for another network of the same description (a Dropout given a generator of
            # another kind, say), or in a checkpoint: this one runs its batch whole.
            self.thread_plan = ThreadPlan("owned", threads, f"{self.thread_plan.how}; this model cannot be split")
        return self.thread_plan

    def _macs_per_sample(self) -> int:
        """Multiply-adds of one sample's forward products (a weight W applied at every output
        position); a step costs about three times that per sample (forward, dW, dx)."""
        shape, total = (1, *self.x_train.shape[1:]), 0
        try:
            for layer in getattr(self.model, "_layers", ()):
                out = layer.output_shape(shape)
                weights = getattr(layer, "params", {}).get("W")
                if weights is not None:
                    total += weights.size * math.prod(out[2:])
                shape = out
        except LayerwiseError:
            total = 0
        return total or sum(v.size for v in self.model.params.values())

    def _plan_by_shape(self) -> str:
        """The plan by shape alone: a step whose activations are worth splitting (a convnet's)
        runs on owned threads (split passes measured no faster while OpenBLAS's idle threads
        spun on the other core), its batch in parts when ``batch_parts`` can cut it
        (SimpleConvNet's step on 2 threads: 6.5 ms against 11.4 with the passes split); an
        MLP's are too small to split (a handoff costs ~25 us)."""
        per_sample = getattr(self.model, "workspace_per_sample", lambda shape: 1)(self.x_train.shape[1:])
        if per_sample * min(self.batch_size, len(self.x_train)) < SPLIT_MIN_ELEMENTS:
            return "blas"
        return "split" if splittable(self.model) else "owned"

    def _plan_key(self) -> str:
        """What the step's speed depends on besides the machine: the layers as made, their
        parameters' shapes, the batch, the dtype and the optimizer."""
        layers = getattr(self.model, "_layers", None)
        # repr: each layer with what it was made with (a convolution's stride and pad, say)
        names = " ".join(map(repr, layers)) if layers is not None else type(self.model).__name__
        shapes = " ".join(f"{k}{tuple(v.shape)}" for k, v in self.model.params.items())
        batch = min(self.batch_size, len(self.x_train))
        dtype = getattr(self.model, "dtype", self.x_train.dtype)
        return (f"{names} | {shapes} | input {tuple(self.x_train.shape[1:])} | batch {batch} | "
                f"{np.dtype(dtype).name} | {type(self.optimizer).__name__}")

    def _plan_probe(self) -> Callable[[], None]:
        """One training step of copies of the model and optimizer on a random batch, gathered
        as the run gathers its own (the gather's memory traffic is part of a step): what the
        plans are timed on. The run's own model, optimizer and generators stay untouched."""
        model, optimizer = copy.deepcopy(self.model), copy.deepcopy(self.optimizer)
        batch = min(self.batch_size, len(self.x_train))
        rng = np.random.default_rng(0)
        x = np.empty((batch, *self.x_train.shape[1:]), self.x_train.dtype)
        t = np.empty((batch, *self.t_train.shape[1:]), self.t_train.dtype)

        def step() -> None:
            rows = rng.integers(0, len(self.x_train), batch)
            np.take(self.x_train, rows, axis=0, out=x)
            np.take(self.t_train, rows, axis=0, out=t)
            optimizer.update(model.params, gradient(model, x, t))

        return step

    def _fit_epochs(self, steps: int) -> None:
        from tqdm.auto import tqdm  # imported when training starts, not on `import layerwise` (CLI start)

        while self.epoch < self.epochs:
            started = time.perf_counter()
            losses = []
            # This epoch's losses so far (a resumed epoch has some from before the checkpoint):
            # the epoch's mean loss is then the same as in an uninterrupted run.
            epoch_losses = self.history.step_loss[len(self.history.step_loss) - self.step_in_epoch:]
            bar = tqdm(total=self._steps_per_epoch(), initial=self.step_in_epoch, disable=not self.progress,
                       desc=f"epoch {self.epoch + 1}/{self.epochs}", unit="batch", leave=False)
            for x, t in self._batches():
                if self._stop.is_set():
                    self.stopped = True
                    break
                if self.lr_schedule != "constant":
                    done = self.epoch * steps + self.step_in_epoch
                    self.optimizer.lr = self.base_lr * lr_factor(self.lr_schedule, done, self.epochs * steps)
                if self._core_share is not None:
                    self.shared_thread_steps[self._core_share.check()] += 1
                grads = gradient(self.model, x, t)  # model.gradient(x, t), in parts on the split plan
                loss = self.model.loss_layer.loss
                if not math.isfinite(loss) or loss > self._loss_limit(loss):
                    bar.close()
                    self._diverged(loss)
                self.optimizer.update(self.model.params, grads)
                losses.append(loss)
                self.history.step_loss.append(loss)
                self.step_in_epoch += 1
                bar.update(1)
                if len(losses) % 20 == 0:
                    bar.set_postfix(loss=f"{loss:.4f}")
                if self.on_step is not None:
                    self.on_step(len(self.history.step_loss), loss)
                # (The epoch's last step is saved below, once, as the epoch's end.)
                if self.checkpoint_every and self.step_in_epoch % self.checkpoint_every == 0 \
                        and self.step_in_epoch < steps:
                    self.save_checkpoint()
            bar.close()
            if self.stopped:
                return  # mid-epoch: the epoch has no row; its steps are in history.step_loss
            self.epoch += 1
            self.step_in_epoch = 0
            self._epoch_rng_state = self.shuffle_rng.bit_generator.state
            losses = epoch_losses + losses
            row = {"epoch": self.epoch, "train_loss": float(np.mean(losses)) if losses else float("nan"),
                   **self.evaluate(), "seconds": round(time.perf_counter() - started, 3)}
            if self.lr_schedule != "constant":
                row["lr"] = self.optimizer.lr
            self.history.epochs.append(row)
            self.log(self._format_row(row))
            self.save_checkpoint()
            if self.on_epoch is not None:
                self.on_epoch(row)

    def _loss_limit(self, loss: float) -> float:
        """DIVERGENCE_FACTOR times the run's first loss (kept in the history, so a resumed
        run uses the same limit); the first step itself is only checked for NaN/inf."""
        first = self.history.step_loss[0] if self.history.step_loss else loss
        return DIVERGENCE_FACTOR * max(first, 1.0)

    def _lr_hint(self) -> str:
        lr = getattr(self.optimizer, "lr", None)
        return f"; try a lower learning rate than {lr:g}" if lr is not None else "; try a lower learning rate"

    def _kept(self) -> str:
        if self.run_dir is None:
            return ""
        if (self.run_dir / CHECKPOINT_NAME).exists():
            return f" The last good checkpoint is kept in {self.run_dir / CHECKPOINT_NAME}."
        return " No checkpoint had been written yet."

    def _diverged(self, loss: float) -> None:
        step = self.epoch * self._steps_per_epoch() + self.step_in_epoch + 1
        why = ""
        if math.isfinite(loss):
            first = self.history.step_loss[0]
            why = f", more than {DIVERGENCE_FACTOR:g} times the first loss ({first:.4g})"
        raise TrainingDiverged(
            f"training diverged: the loss became {loss:.6g} at step {step} "
            f"(epoch {self.epoch + 1}, batch {self.step_in_epoch + 1}){why}{self._lr_hint()}.{self._kept()}",
            step=step, loss=float(loss),
        )

    def _format_row(self, row: dict) -> str:
        parts = [f"epoch {row['epoch']:>3}/{self.epochs}", f"loss {row['train_loss']:.4f}"]
        if "train_acc" in row:
            parts.append(f"train acc {row['train_acc']:.4f}")
        if "test_acc" in row:
            parts.append(f"test acc {row['test_acc']:.4f}")
        if "lr" in row:
            parts.append(f"lr {row['lr']:.3g}")
        parts.append(f"{row['seconds']:.2f}s")
        return "  ".join(parts)

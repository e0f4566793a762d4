"""What a sweep is: its run settings, the ranges it searches and how (random or grid), and the
trial configurations that follow from them, each a plain dict a worker can run.

The book's chapter 6 draws ``lr = 10 ** uniform(-6, -2)`` and ``weight_decay = 10 **
uniform(-8, -4)`` (``BOOK_LR``, ``BOOK_WEIGHT_DECAY``). A :class:`SweepSpec` is written to
``SWEEP_DIR/sweep.json``; rerunning with the same spec resumes, with another is refused
(:meth:`SweepSpec.differences` names what changed).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from ..errors import InputError
from ..recipes import ACTIVATIONS, MODELS, OPTIMIZERS

__all__ = ["BOOK_LR", "BOOK_WEIGHT_DECAY", "SweepSpec", "parse_range"]

#: The book's search ranges (chapter 6, hyperparameter_optimization.py), drawn log-uniformly.
BOOK_LR = (1e-6, 1e-2)
BOOK_WEIGHT_DECAY = (1e-8, 1e-4)


def parse_range(text: str, name: str) -> tuple[float, float]:
    """``"1e-6..1e-2"`` as (low, high): two positive finite numbers, low < high (a log scale
    has no 0, and a reversed range is a typo)."""
    parts = str(text).split("..")
    if len(parts) != 2:
        raise InputError(f"{name} {text!r}: expected LOW..HIGH, for example 1e-6..1e-2")
    try:
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise InputError(f"{name} {text!r}: LOW and HIGH must be numbers, for example 1e-6..1e-2") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0 or high <= 0:
        raise InputError(f"{name} {text!r}: both ends must be positive finite numbers (the scale is logarithmic)")
    if low >= high:
        raise InputError(f"{name} {text!r}: LOW must be below HIGH (reversed range?)")
    return low, high


@dataclass(frozen=True)
class SweepSpec:
    """A sweep's settings. ``dataset`` ... ``batch_size`` mean what they mean to ``layerwise
    train``; ``validation`` is the fraction of the training data held out to score trials
    (never the test set); ``weight_decay`` is None where the model has none (only ``mlp``)."""

    dataset: str = "digits"
    model: str = "mlp"
    hidden: tuple[int, ...] | None = None  # None: the model's default, as in `layerwise train`
    activation: str = "relu"
    optimizer: str = "sgd"
    epochs: int = 20
    batch_size: int = 100
    trials: int = 20
    lr: tuple[float, float] = BOOK_LR
    weight_decay: tuple[float, float] | None = BOOK_WEIGHT_DECAY
    grid: bool = False
    validation: float = 0.2
    seed: int = 0
    dtype: str = "float32"
    extra: dict = field(default_factory=dict)  # room for later settings; part of the identity

    def __post_init__(self) -> None:
        if not isinstance(self.trials, int) or isinstance(self.trials, bool) or self.trials < 1:
            raise InputError(f"--trials must be a whole number of at least 1, got {self.trials!r}")
        if self.model not in MODELS:
            raise InputError(f"--model {self.model!r}: choose from {', '.join(MODELS)}")
        if self.activation not in ACTIVATIONS:
            raise InputError(f"--activation {self.activation!r}: choose from {', '.join(ACTIVATIONS)}")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"--optimizer {self.optimizer!r}: choose from {', '.join(OPTIMIZERS)}")
        if not 0 < self.validation < 1:
            raise InputError(f"--validation must be a fraction in (0, 1), got {self.validation}")
        for name, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size)):
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a whole number of at least 1, got {value!r}")
        if self.weight_decay is not None and self.model != "mlp":
            raise InputError(f"--weight-decay needs --model mlp (MultiLayerNet has weight decay); "
                             f"--model {self.model} has none")
        if self.grid and self.weight_decay is not None and math.isqrt(self.trials) ** 2 != self.trials:
            raise InputError(f"--grid over lr and weight decay needs --trials a square number "
                             f"(4, 9, 16, 25, ...: that many points per axis squared); got {self.trials}")

    @property
    def points_per_axis(self) -> int:
        return math.isqrt(self.trials) if self.weight_decay is not None else self.trials

    def configs(self) -> list[dict]:
        """Every trial's configuration, in trial order: the same list for the same spec, on
        every machine (the draws come from one generator seeded with ``seed``)."""
        if self.grid:
            k = self.points_per_axis
            lrs = np.geomspace(*self.lr, k) if k > 1 else np.array([math.sqrt(self.lr[0] * self.lr[1])])
            if self.weight_decay is None:
                pairs = [(lr, None) for lr in lrs]
            else:
                wds = np.geomspace(*self.weight_decay, k) if k > 1 else \
                    np.array([math.sqrt(self.weight_decay[0] * self.weight_decay[1])])
                pairs = [(lr, wd) for lr in lrs for wd in wds]
        else:
            rng = np.random.default_rng(self.seed)
            # lr = 10 ** uniform(log10 low, log10 high), as the book draws it.
            lrs = 10 ** rng.uniform(math.log10(self.lr[0]), math.log10(self.lr[1]), self.trials)
            wds = (10 ** rng.uniform(math.log10(self.weight_decay[0]), math.log10(self.weight_decay[1]), self.trials)
                   if self.weight_decay is not None else [None] * self.trials)
            pairs = list(zip(lrs, wds, strict=True))
        # Clipped into the ranges: 10 ** log10(x) and geomspace can round an ulp past an end.
        return [self.trial_config(i, float(np.clip(lr, *self.lr)),
                                  None if wd is None else float(np.clip(wd, *self.weight_decay)))
                for i, (lr, wd) in enumerate(pairs)]

    def trial_config(self, trial: int, lr: float, weight_decay: float | None) -> dict:
        """What one trial needs, as plain values: a worker rebuilds everything from it."""
        return {
            "trial": trial, "seed": self.seed + 1 + trial, "split_seed": self.seed, "lr": lr,
            "weight_decay": weight_decay or 0.0, "dataset": self.dataset, "model": self.model,
            "hidden": list(self.hidden) if self.hidden else None, "activation": self.activation,
            "optimizer": self.optimizer, "epochs": self.epochs, "batch_size": self.batch_size,
            "validation": self.validation, "dtype": self.dtype,
        }

    # -- sweep.json -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        data = asdict(self)
        data["hidden"] = list(self.hidden) if self.hidden else None
        data["lr"] = list(self.lr)
        data["weight_decay"] = list(self.weight_decay) if self.weight_decay is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SweepSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"sweep.json: unknown setting(s) {', '.join(unknown)}")
        values = dict(data)
        for key in ("hidden", "lr", "weight_decay"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)

    def differences(self, other: SweepSpec) -> list[str]:
        """The settings where ``other`` differs, as "name: this -> other"."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: {mine[k]!r} -> {theirs[k]!r}" for k in mine if mine[k] != theirs[k]]

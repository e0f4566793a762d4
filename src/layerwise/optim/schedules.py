"""Learning-rate schedules: ``LR_SCHEDULES`` (the names the Trainer and ``layerwise train
--lr-schedule`` accept) and ``lr_factor``, the multiplier of the base learning rate at a step."""

from __future__ import annotations

import math

from ..errors import InputError

__all__ = ["LR_SCHEDULES", "lr_factor"]

#: Names the Trainer and ``layerwise train --lr-schedule`` accept.
LR_SCHEDULES = ("constant", "cosine")


def lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """Multiplier of the base learning rate for step ``step`` (0-based) of ``total_steps``.

    constant: 1.
    cosine:   ½·(1 + cos(π·step / total_steps)), from 1 at the first step down towards 0 at
              the last: ``torch.optim.lr_scheduler.CosineAnnealingLR(T_max=total_steps)``
              stepped once per batch. It is a closed form of the step number, so a resumed
              run needs no scheduler state to continue on the same curve.
    """
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / total_steps))
    raise InputError(f"unknown learning-rate schedule {schedule!r}; choose from {', '.join(LR_SCHEDULES)}")

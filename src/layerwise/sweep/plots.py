"""A sweep's two pictures, drawn from its results (so ``--report`` draws them again):

- ``best-trials.png``: the book's figure (chapter 6) of the best 20 trials, one panel each,
  validation accuracy per epoch solid and training accuracy dashed;
- ``lr-weight-decay.png``: every trial at its learning rate and weight decay, coloured by its
  validation accuracy (diverged trials crossed); without weight decay, accuracy against lr.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..io import save_png
from .run import best_trials
from .spec import SweepSpec

__all__ = ["draw_best_trials", "draw_lr_weight_decay"]


def _pyplot():
    import matplotlib  # ~0.3 s to import: only when a sweep is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # the backend chosen above, before pyplot loads

    return plt


def draw_best_trials(spec: SweepSpec, results: dict[int, dict], path: Path, n: int = 20) -> None:
    plt = _pyplot()
    best = [r for r in best_trials(results, n) if r.get("val_acc")]
    cols = 5
    rows = max(1, math.ceil(len(best) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.1 * rows), squeeze=False, sharey=True)
    for ax in axes.flat:
        ax.set_visible(False)
    for rank, (ax, r) in enumerate(zip(axes.flat, best, strict=False), 1):
        ax.set_visible(True)
        epochs = range(1, len(r["val_acc"]) + 1)
        ax.plot(epochs, r["val_acc"], "-", label="validation")
        ax.plot(epochs, r["train_acc"], "--", label="train")
        wd = f", wd {r['config']['weight_decay']:.1e}" if spec.weight_decay is not None else ""
        status = f"{r['final_val_acc']:.3f}" if r.get("status") == "done" else "diverged"
        ax.set_title(f"Best-{rank} ({status})\nlr {r['config']['lr']:.1e}{wd}", fontsize=8)
        ax.set_ylim(0, 1)
        ax.tick_params(labelsize=7)
    if best:
        axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"validation (solid) and train (dashed) accuracy per epoch: best {len(best)} of "
                 f"{len(results)} trials", fontsize=10)
    fig.tight_layout()
    save_png(fig, path)


def draw_lr_weight_decay(spec: SweepSpec, results: dict[int, dict], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    done = [r for r in results.values() if r.get("status") == "done"]
    diverged = [r for r in results.values() if r.get("status") != "done"]
    if spec.weight_decay is not None:
        points = ax.scatter([r["config"]["lr"] for r in done], [r["config"]["weight_decay"] for r in done],
                            c=[r["final_val_acc"] for r in done], cmap="viridis", vmin=0, vmax=1, s=40)
        ax.scatter([r["config"]["lr"] for r in diverged], [r["config"]["weight_decay"] for r in diverged],
                   marker="x", color="red", label="diverged")
        ax.set_yscale("log")
        ax.set_ylabel("weight decay")
        fig.colorbar(points, ax=ax, label="validation accuracy")
    else:
        ax.scatter([r["config"]["lr"] for r in done], [r["final_val_acc"] for r in done], s=40)
        ax.scatter([r["config"]["lr"] for r in diverged], [0] * len(diverged), marker="x", color="red",
                   label="diverged")
        ax.set_ylabel("validation accuracy")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    if diverged:
        ax.legend()
    ax.set_title(f"{len(results)} trials: {spec.model} on {spec.dataset}, {spec.epochs} epochs of {spec.optimizer}")
    fig.tight_layout()
    save_png(fig, path)

"""``layerwise evaluate``: accuracy, per-class accuracy, confusion matrix, misclassified images."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..datasets import load_dataset
from ..errors import InputError
from ._common import add_threads_option, image_shape, load_model_file, save_png


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="accuracy, per-class accuracy and confusion matrix of a model on a test set",
        description="Evaluate a model file on a dataset's test split: prints accuracy, per-class "
        "accuracy and the confusion matrix, and writes confusion.png and misclassified.png.",
    )
    p.add_argument("model", type=Path, help="a model file (model.safetensors from a run directory)")
    p.add_argument("--dataset", default=None,
                   help="digits, mnist, fashion-mnist or an IDX folder (default: the one it was trained on)")
    p.add_argument("--out", type=Path, default=None, help="folder for the PNGs (default: next to the model)")
    add_threads_option(p)
    p.set_defaults(func=run)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """counts[i, j] = how many images of class i were predicted as class j."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (labels, predicted), 1)
    return counts


def run(args: argparse.Namespace) -> int:
    import matplotlib  # ~0.3 s to import: only when this command runs

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # the backend chosen above, before pyplot loads


    model, meta = load_model_file(args.model)
    dataset = args.dataset or meta["dataset"]
    if dataset is None:
        raise InputError(f"{args.model} does not record its dataset; pass --dataset")
    flat = meta["input_shape"] is not None and len(meta["input_shape"]) == 1
    _, (x, t) = load_dataset(dataset, normalize=True, flatten=flat, one_hot_label=False, dtype=model.dtype,
                             progress=False)
    classes = model.output_size
    predicted = np.concatenate([model.predict(x[i : i + 1000]).argmax(axis=1) for i in range(0, len(x), 1000)])
    counts = confusion_matrix(t.astype(np.intp), predicted, classes)
    accuracy = float(np.trace(counts) / counts.sum())
    print(f"{args.model} on {dataset} ({len(x)} test images): accuracy {accuracy:.4f}")
    print("per-class accuracy:")
    for c in range(classes):
        total = counts[c].sum()
        print(f"  class {c}: {counts[c, c] / total:.4f} ({counts[c, c]}/{total})" if total else f"  class {c}: -")
    width = max(5, len(str(counts.max())) + 1)
    print("confusion matrix (rows: true class, columns: predicted):")
    print(" " * 6 + "".join(f"{c:>{width}}" for c in range(classes)))
    for c in range(classes):
        print(f"{c:>5} " + "".join(f"{v:>{width}}" for v in counts[c]))

    out = args.out or args.model.parent
    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 5))
    im = ax.imshow(counts, cmap="Blues")
    for i in range(classes):
        for j in range(classes):
            ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=7,
                    color="white" if counts[i, j] > counts.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=f"confusion matrix (accuracy {accuracy:.4f})",
           xticks=range(classes), yticks=range(classes))
    fig.colorbar(im)
    save_png(fig, out / "confusion.png")

    wrong = np.flatnonzero(predicted != t)[:36]
    _, h, w = image_shape(meta)
    cols = 6
    rows = max(1, int(np.ceil(len(wrong) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.5, rows * 1.7), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong, strict=False):
        ax.imshow(x[i].reshape(h, w), cmap="gray")
        ax.set_title(f"true {t[i]} / pred {predicted[i]}", fontsize=7)
    fig.suptitle(f"misclassified: {int((predicted != t).sum())} of {len(t)} (first {len(wrong)} shown)")
    save_png(fig, out / "misclassified.png")
    print(f"wrote {out / 'confusion.png'} and {out / 'misclassified.png'}")
    return 0

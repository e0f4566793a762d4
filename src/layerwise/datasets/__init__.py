"""Data sets and mini-batches.

- :func:`load_digits`: the bundled 8x8 digits (1,797 images; offline, no scikit-learn).
- :func:`load_mnist`, :func:`load_fashion_mnist`: the real IDX files, found locally or
  downloaded from mirrors, always checked against the published checksums.
- :func:`load_idx_dir`: any folder holding the four MNIST-style IDX files.
- :func:`load_dataset`: one of the above by name or path (what ``--dataset`` takes).
- :func:`read_idx` / :func:`write_idx`: the IDX format, read strictly.
- :class:`BatchLoader` / :func:`iterate_minibatches`: shuffled, resumable mini-batches.

Every loader returns the book's ``((x_train, t_train), (x_test, t_test))``.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import InputError
from .batches import BatchLoader, iterate_minibatches, steps_per_epoch
from .digits import load_digits
from .idx import idx_md5, read_idx, write_idx
from .mnist import (
    DATASETS,
    MIRRORS,
    Split,
    cache_dir,
    fetch_dataset,
    load_fashion_mnist,
    load_idx_dir,
    load_mnist,
    present_locally,
)

#: Names ``load_dataset`` accepts (besides a directory path).
DATASET_NAMES = ("digits", "mnist", "fashion-mnist")
_ALIASES = {"fashion_mnist": "fashion-mnist", "fashionmnist": "fashion-mnist"}


def class_names(name: str) -> tuple[str, ...]:
    """Human-readable class names of a named data set ("0".."9" for digits and MNIST)."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key == "digits":
        return tuple(str(d) for d in range(10))
    if key in DATASETS:
        return DATASETS[key].class_names
    raise InputError(f"unknown dataset {name!r}; choose one of {', '.join(DATASET_NAMES)}")


def load_dataset(
    name: str,
    *,
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    dtype: np.dtype | type = np.float32,
    progress: bool = True,
    download: bool = True,
) -> tuple[Split, Split]:
    """Load ``digits``, ``mnist``, ``fashion-mnist`` or a directory holding the four IDX files
    (``train-images-idx3-ubyte`` etc., raw or .gz). Raises InputError for anything else."""
    key = _ALIASES.get(name.lower(), name.lower())
    options = {"normalize": normalize, "flatten": flatten, "one_hot_label": one_hot_label}
    if key == "digits":
        return load_digits(**options, dtype=dtype)
    if key == "mnist":
        return load_mnist(**options, dtype=dtype, progress=progress, download=download)
    if key == "fashion-mnist":
        return load_fashion_mnist(**options, dtype=dtype, progress=progress, download=download)
    if os.path.isdir(name):
        return load_idx_dir(name, **options, dtype=dtype)
    raise InputError(
        f"unknown dataset {name!r}: choose one of {', '.join(DATASET_NAMES)}, "
        "or give a directory holding train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (raw or .gz)"
    )


__all__ = [
    "DATASETS",
    "DATASET_NAMES",
    "MIRRORS",
    "BatchLoader",
    "cache_dir",
    "class_names",
    "fetch_dataset",
    "idx_md5",
    "iterate_minibatches",
    "load_dataset",
    "load_digits",
    "load_fashion_mnist",
    "load_idx_dir",
    "load_mnist",
    "present_locally",
    "read_idx",
    "steps_per_epoch",
    "write_idx",
]

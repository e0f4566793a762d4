"""The bundled 8x8 handwritten digits: 1,797 images, works offline, no scikit-learn needed.

The data is the UCI "Optical Recognition of Handwritten Digits" test set (Alpaydin & Kaynak,
CC BY 4.0) in the copy scikit-learn distributes; see ``data/ATTRIBUTION.md``.

The train/test split is a fixed rule, not a random draw, so it is the same on every machine
and with every NumPy version: within each class, taking the images in file order, every
fifth one (positions 4, 9, 14, ... of that class) is a test image. That puts floor(n_c / 5)
images of each class c in the test set (355 of 1,797, 19.5-20 % of every class) and spreads
each class's test images over the whole file.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import zlib
from importlib import resources

import numpy as np

from ..errors import FormatError
from .mnist import Split, float_dtype, prepare_images, prepare_labels

_FILE = "digits.csv.gz"
_MD5 = "9b335364a7bfd63947c7480a5bd51f2d"  # of the .gz exactly as scikit-learn ships it
N_IMAGES = 1797
N_CLASSES = 10
#: Within each class, every TEST_EVERY-th image (in file order) is a test image.
TEST_EVERY = 5
#: Pixel values are counts of "on" pixels in 4x4 blocks: 0..16.
MAX_PIXEL = 16


@functools.lru_cache(maxsize=1)
def _raw() -> tuple[np.ndarray, np.ndarray]:
    """(images (1797, 8, 8) uint8, labels (1797,) uint8), read once, read-only."""
    source = resources.files(__package__).joinpath("data", _FILE)
    where = f"bundled {_FILE}"
    try:
        packed = source.read_bytes()
    except OSError as exc:
        raise FormatError(f"{where}: cannot read ({exc}); the installation is damaged") from exc
    if hashlib.md5(packed, usedforsecurity=False).hexdigest() != _MD5:
        raise FormatError(f"{where}: checksum mismatch; the installation is damaged")
    try:
        text = gzip.decompress(packed)
        table = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise FormatError(f"{where}: unreadable ({exc})") from exc
    if table.shape != (N_IMAGES, 65):
        raise FormatError(f"{where}: expected {N_IMAGES} rows of 65 values, got {table.shape}")
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > MAX_PIXEL or labels.min() < 0 or labels.max() > 9:
        raise FormatError(f"{where}: values out of range")
    images = pixels.astype(np.uint8).reshape(N_IMAGES, 8, 8)
    labels = labels.astype(np.uint8)
    images.flags.writeable = False  # shared by every call: callers get copies
    labels.flags.writeable = False
    return images, labels


def split_indices(labels: np.ndarray, test_every: int = TEST_EVERY) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices), both sorted: within each class, in order, every
    ``test_every``-th sample is a test sample (a deterministic, stratified split)."""
    is_test = np.zeros(labels.shape[0], dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        is_test[members[test_every - 1 :: test_every]] = True
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def load_digits(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    dtype: np.dtype | type = np.float32,
) -> tuple[Split, Split]:
    """The bundled 8x8 digits as ``((x_train, t_train), (x_test, t_test))``, like load_mnist.

    1,442 train and 355 test images (fixed stratified split, see the module doc). Images:
    ``dtype`` in [0, 1] (pixel / 16) when ``normalize``, else uint8 0..16; shape (N, 64) when
    ``flatten``, else (N, 1, 8, 8). Labels: uint8 class indices, or (N, 10) float64 one-hot
    (the book's dtype). Every call returns fresh arrays.
    """
    dtype = float_dtype(dtype)
    images, labels = _raw()
    train, test = split_indices(labels)

    def part(idx: np.ndarray) -> Split:
        # Fancy indexing copies, so the cached read-only arrays are never handed out.
        x = prepare_images(
            images[idx], normalize=normalize, flatten=flatten, scale=MAX_PIXEL, dtype=dtype
        )
        t = prepare_labels(labels[idx], n_classes=N_CLASSES, one_hot=one_hot_label)
        return x, t

    return part(train), part(test)

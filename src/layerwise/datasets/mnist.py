"""MNIST and Fashion-MNIST: the real IDX files, found locally or downloaded, always verified.

``load_mnist(normalize=True, flatten=True, one_hot_label=False)`` keeps the book's signature
and return value ``((x_train, t_train), (x_test, t_test))``.

Where the four files (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``; each ``.gz`` or raw) are looked for,
file by file, in this order:

1. ``$LAYERWISE_DATA/<name>/`` then ``$LAYERWISE_DATA/`` itself (``<name>`` is ``mnist`` or
   ``fashion-mnist``; several folders may be given, separated by ``os.pathsep``);
2. the user cache directory, ``platformdirs.user_cache_dir("layerwise")/<name>/``;
3. system folders: ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``).

(``data_dir=`` replaces this list with that one folder, which then also receives downloads.)
A file found nowhere is downloaded into the cache from the mirrors in :data:`MIRRORS` (or
``$LAYERWISE_MIRRORS``, or ``mirrors=``), tried in order.

Every file, found or downloaded, is checked against the published md5 of its *decompressed*
IDX data (mirrors and Debian re-compress the files, so .gz bytes differ while the content does
not). A local file that fails the check is handled by where it is:

- in a folder the user chose (``LAYERWISE_DATA``, ``data_dir``, a system folder): a
  :class:`~layerwise.errors.FormatError` naming the file and both checksums. Silently
  downloading instead would hide a broken or mislabelled file the user pointed us at, and
  we never delete a user's files;
- in layerwise's own cache: the file is deleted (with a warning) and downloaded again; the
  cache only ever receives verified files, so a bad one there is damage, not user data.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs

from ..errors import DownloadError, FormatError, InputError
from .download import download as _download
from .idx import read_idx

#: The four files of an MNIST-style data set, without the ``.gz`` suffix.
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

Split = tuple[np.ndarray, np.ndarray]
# A folder of unknown origin whose labels imply more classes than this is not class indices.
_MAX_INFERRED_CLASSES = 65536


@dataclass(frozen=True)
class IdxDataset:
    """What layerwise knows about a published IDX data set."""

    name: str  #: key in DATASETS, cache sub-folder and ``{dataset}`` in LAYERWISE_MIRRORS
    title: str  #: for messages
    md5: Mapping[str, str]  #: file name (no .gz) -> md5 of the decompressed IDX data
    n_classes: int = 10
    class_names: tuple[str, ...] = ()
    system_dirs: tuple[str, ...] = ()  #: folders a system package installs the files into
    #: Largest decompressed payload a header may claim (a guard against gzip bombs).
    max_bytes: int = 64 * 2**20


DATASETS: dict[str, IdxDataset] = {
    "mnist": IdxDataset(
        name="mnist",
        title="MNIST",
        md5={
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
        class_names=tuple(str(d) for d in range(10)),
    ),
    "fashion-mnist": IdxDataset(
        name="fashion-mnist",
        title="Fashion-MNIST",
        md5={
            "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        class_names=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
}

#: Mirrors tried in order; each serves ``<mirror>/<file>.gz``. Overridden by the
#: ``LAYERWISE_MIRRORS`` environment variable (URLs separated by spaces or commas; ``{dataset}``
#: in a URL is replaced by the data set's name) and by the ``mirrors=`` argument.
#: (yann.lecun.com, the original MNIST host, answers 403 to scripts.)
MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ],
}


def float_dtype(dtype: np.dtype | type | str) -> np.dtype:
    """``dtype`` as a NumPy floating dtype, or InputError."""
    try:
        result = np.dtype(dtype)
    except TypeError as exc:
        raise InputError(f"dtype: not a NumPy dtype: {dtype!r}") from exc
    if result.kind != "f":
        raise InputError(f"dtype must be a floating type (float32, float64), got {result}")
    return result


def cache_dir() -> Path:
    """layerwise's download cache (``platformdirs.user_cache_dir("layerwise")``)."""
    return Path(platformdirs.user_cache_dir("layerwise"))


def _spec(name: str) -> IdxDataset:
    try:
        return DATASETS[name]
    except KeyError:
        raise InputError(
            f"unknown IDX data set {name!r} (known: {', '.join(sorted(DATASETS))})"
        ) from None


def mirrors_for(name: str, mirrors: Sequence[str] | None = None) -> list[str]:
    """The mirror list for data set ``name``: ``mirrors`` if given, else
    ``$LAYERWISE_MIRRORS`` if set, else :data:`MIRRORS`."""
    if mirrors is not None:
        chosen = list(mirrors)
    elif os.environ.get("LAYERWISE_MIRRORS", "").strip():
        chosen = re.split(r"[\s,]+", os.environ["LAYERWISE_MIRRORS"].strip())
    else:
        chosen = list(MIRRORS.get(name, []))
    return [m.replace("{dataset}", name) for m in chosen]


def _search_dirs(spec: IdxDataset, data_dir: str | os.PathLike[str] | None) -> list[Path]:
    if data_dir is not None:
        return [Path(data_dir)]
    dirs: list[Path] = []
    for root in os.environ.get("LAYERWISE_DATA", "").split(os.pathsep):
        if root.strip():
            dirs += [Path(root) / spec.name, Path(root)]
    dirs.append(cache_dir() / spec.name)
    dirs += [Path(d) for d in spec.system_dirs]
    return dirs


def _whose(message: str, expected: str) -> str:
    """Name the published file whose md5 a checksum-mismatch message reports, if any
    (a Fashion-MNIST file where MNIST's should be is a likely mix-up)."""
    for other in DATASETS.values():
        for fname, digest in other.md5.items():
            if digest != expected and f"is {digest}" in message:
                return f" (it is {other.title}'s {fname})"
    return ""


def present_locally(name: str) -> bool:
    """Whether the four files of ``name`` ("mnist", "fashion-mnist") are on this machine
    (``LAYERWISE_DATA``, the cache, the system folders), so loading it needs no download.
    Only their presence is looked at here; loading verifies them."""
    dirs = _search_dirs(_spec(name), None)
    return all(any((d / f"{fname}.gz").is_file() or (d / fname).is_file() for d in dirs) for fname in FILES)


def _read_verified(path: Path, spec: IdxDataset, fname: str, name: str | None = None):
    return read_idx(path, md5=spec.md5[fname], max_bytes=spec.max_bytes, name=name)


def _bad_local_file(spec: IdxDataset, fname: str, exc: FormatError) -> FormatError:
    return FormatError(
        f"{exc}{_whose(str(exc), spec.md5[fname])}; this is not the published {spec.title} "
        "file. Delete or replace it (layerwise never deletes files outside its own cache), "
        "or point LAYERWISE_DATA elsewhere"
    )


def _find_local(
    spec: IdxDataset, fname: str, dirs: Sequence[Path], own_cache: Path | None
) -> tuple[Path, np.ndarray] | None:
    """The first verified copy of ``fname`` (.gz or raw) in ``dirs``, with its array."""
    for d in dirs:
        for candidate in (d / f"{fname}.gz", d / fname):
            if not candidate.is_file():
                continue
            try:
                return candidate, _read_verified(candidate, spec, fname)
            except FormatError as exc:
                if d != own_cache:
                    raise _bad_local_file(spec, fname, exc) from exc
                warnings.warn(
                    f"{exc}; removing it from the cache and downloading again",
                    RuntimeWarning,
                    stacklevel=5,
                )
                candidate.unlink(missing_ok=True)
    return None


def _obtain(
    spec: IdxDataset,
    *,
    data_dir: str | os.PathLike[str] | None,
    download: bool,
    progress: bool,
    mirrors: Sequence[str] | None,
) -> tuple[dict[str, np.ndarray], dict[str, Path]]:
    """Find or download, and verify, each of the four files. Returns (arrays, paths)."""
    dirs = _search_dirs(spec, data_dir)
    target = Path(data_dir) if data_dir is not None else cache_dir() / spec.name
    own_cache = target if data_dir is None else None  # the only folder we may clean up
    arrays: dict[str, np.ndarray] = {}
    paths: dict[str, Path] = {}
    for fname in FILES:
        found = _find_local(spec, fname, dirs, own_cache)
        if found is not None:
            paths[fname], arrays[fname] = found
            continue
        where = ", ".join(str(d) for d in dirs)
        if not download:
            raise DownloadError(
                f"{spec.title}: {fname}(.gz) not found in {where}, and download=False"
            )
        paths[fname], arrays[fname] = _download(
            f"{fname}.gz",
            mirrors_for(spec.name, mirrors),
            target,
            lambda tmp, url, fname=fname: _read_verified(tmp, spec, fname, name=url),
            progress=progress,
            hint=(
                f"Looked for {fname}(.gz) in: {where}. Put the files in one of those folders "
                "(or set LAYERWISE_DATA), or set LAYERWISE_MIRRORS to working mirrors."
            ),
        )
    return arrays, paths


def fetch_dataset(
    name: str,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
    mirrors: Sequence[str] | None = None,
) -> dict[str, Path]:
    """Make sure the four verified files of ``name`` ("mnist", "fashion-mnist") are on disk;
    return their paths (file name without .gz -> path)."""
    _, paths = _obtain(
        _spec(name), data_dir=data_dir, download=download, progress=progress, mirrors=mirrors
    )
    return paths


# ---------------------------------------------------------------------------------------------
# Turning IDX arrays into the book's (x, t) pairs; shared with digits.py and load_idx_dir.


def prepare_images(
    x: np.ndarray, *, normalize: bool, flatten: bool, scale: float, dtype: np.dtype | type
) -> np.ndarray:
    """(N, H, W) or (N, C, H, W) images -> (N, C*H*W) when ``flatten``, else (N, C, H, W).

    ``normalize`` divides by ``scale`` (the largest pixel value) in ``dtype``; otherwise the
    integer pixels are returned unchanged, as the book does."""
    if x.ndim == 3:
        x = x.reshape(x.shape[0], 1, *x.shape[1:])
    if flatten:
        x = x.reshape(x.shape[0], -1)
    if normalize:
        out = x.astype(dtype)  # a fresh array; the division happens in place in ``dtype``
        out /= scale
        return out
    return np.ascontiguousarray(x)


def prepare_labels(t: np.ndarray, *, n_classes: int, one_hot: bool) -> np.ndarray:
    """Class indices as read, or an (N, n_classes) one-hot matrix of float64, as the book's
    ``np.zeros((N, 10))`` makes it (the loss layers cast it to the scores' dtype)."""
    if not one_hot:
        return t
    out = np.zeros((t.shape[0], n_classes))
    out[np.arange(t.shape[0]), t] = 1
    return out


def _check_pair(
    images: np.ndarray, labels: np.ndarray, image_file: str, label_file: str, n_classes: int | None
) -> None:
    if images.ndim not in (3, 4):
        raise FormatError(
            f"{image_file}: expected images of shape (N, H, W) or (N, C, H, W), got {images.shape}"
        )
    if images.dtype != np.uint8:
        raise FormatError(f"{image_file}: expected uint8 pixels, got {images.dtype}")
    if labels.ndim != 1:
        raise FormatError(f"{label_file}: expected labels of shape (N,), got {labels.shape}")
    if labels.dtype.kind not in "iu":
        raise FormatError(f"{label_file}: expected integer labels, got {labels.dtype}")
    if images.shape[0] != labels.shape[0]:
        raise FormatError(
            f"{label_file} holds {labels.shape[0]} labels but {image_file} holds "
            f"{images.shape[0]} images"
        )
    if labels.size:
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or (n_classes is not None and hi >= n_classes):
            limit = f"0..{n_classes - 1}" if n_classes is not None else ">= 0"
            raise FormatError(f"{label_file}: labels must be in {limit}, found {lo}..{hi}")


def _assemble(
    arrays: Mapping[str, np.ndarray],
    names: Mapping[str, str],
    *,
    n_classes: int | None,
    normalize: bool,
    flatten: bool,
    one_hot_label: bool,
    dtype: np.dtype | type,
) -> tuple[Split, Split]:
    x_tr, t_tr, x_te, t_te = (arrays[f] for f in FILES)
    _check_pair(x_tr, t_tr, names[FILES[0]], names[FILES[1]], n_classes)
    _check_pair(x_te, t_te, names[FILES[2]], names[FILES[3]], n_classes)
    if x_tr.shape[1:] != x_te.shape[1:]:
        raise FormatError(
            f"{names[FILES[0]]} has images of shape {x_tr.shape[1:]} but {names[FILES[2]]} "
            f"has {x_te.shape[1:]}"
        )
    if n_classes is None:
        n_classes = int(max(t_tr.max(initial=0), t_te.max(initial=0))) + 1
        if one_hot_label and n_classes > _MAX_INFERRED_CLASSES:
            raise FormatError(
                f"{names[FILES[1]]}: largest label {n_classes - 1} would make one-hot rows of "
                f"{n_classes} classes; labels must be class indices 0..K-1"
            )
    dtype = float_dtype(dtype)

    def images(x: np.ndarray) -> np.ndarray:
        return prepare_images(x, normalize=normalize, flatten=flatten, scale=255.0, dtype=dtype)

    def labels(t: np.ndarray) -> np.ndarray:
        return prepare_labels(t, n_classes=n_classes, one_hot=one_hot_label)

    return (images(x_tr), labels(t_tr)), (images(x_te), labels(t_te))


def load_idx_dataset(
    name: str,
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    dtype: np.dtype | type = np.float32,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
    mirrors: Sequence[str] | None = None,
) -> tuple[Split, Split]:
    """Load a published IDX data set by name ("mnist", "fashion-mnist"); see the module doc."""
    spec = _spec(name)
    float_dtype(dtype)  # fail before a download, not after
    arrays, paths = _obtain(
        spec, data_dir=data_dir, download=download, progress=progress, mirrors=mirrors
    )
    return _assemble(
        arrays,
        {f: str(p) for f, p in paths.items()},
        n_classes=spec.n_classes,
        normalize=normalize,
        flatten=flatten,
        one_hot_label=one_hot_label,
        dtype=dtype,
    )


def load_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    dtype: np.dtype | type = np.float32,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
    mirrors: Sequence[str] | None = None,
) -> tuple[Split, Split]:
    """MNIST as the book's ``load_mnist``: ``((x_train, t_train), (x_test, t_test))``.

    Images: float ``dtype`` in [0, 1] when ``normalize`` (else uint8 0..255), shape
    (N, 784) when ``flatten`` (else (N, 1, 28, 28)). Labels: uint8 class indices, or an
    (N, 10) float64 one-hot matrix (the book's dtype) when ``one_hot_label``. 60,000 train, 10,000 test.
    Files are found locally or downloaded and always verified (see the module doc).
    """
    return load_idx_dataset(
        "mnist", normalize, flatten, one_hot_label, dtype=dtype, data_dir=data_dir,
        download=download, progress=progress, mirrors=mirrors,
    )


def load_fashion_mnist(
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    dtype: np.dtype | type = np.float32,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    progress: bool = True,
    mirrors: Sequence[str] | None = None,
) -> tuple[Split, Split]:
    """Fashion-MNIST (Zalando), same signature and shapes as :func:`load_mnist`; class names
    in ``DATASETS["fashion-mnist"].class_names``."""
    return load_idx_dataset(
        "fashion-mnist", normalize, flatten, one_hot_label, dtype=dtype, data_dir=data_dir,
        download=download, progress=progress, mirrors=mirrors,
    )


def find_idx_files(path: str | os.PathLike[str]) -> dict[str, Path]:
    """The four IDX files in folder ``path`` (``.gz`` preferred over raw when both exist)."""
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a directory")
    found: dict[str, Path] = {}
    for fname in FILES:
        for candidate in (folder / f"{fname}.gz", folder / fname):
            if candidate.is_file():
                found[fname] = candidate
                break
    missing = [f for f in FILES if f not in found]
    if missing:
        raise InputError(
            f"{folder}: missing IDX file(s) {', '.join(f + '[.gz]' for f in missing)} "
            f"(a data folder holds {', '.join(FILES)}, each raw or .gz)"
        )
    return found


def load_idx_dir(
    path: str | os.PathLike[str],
    normalize: bool = True,
    flatten: bool = True,
    one_hot_label: bool = False,
    *,
    dtype: np.dtype | type = np.float32,
    n_classes: int | None = None,
) -> tuple[Split, Split]:
    """Load any MNIST-style folder holding the four IDX files (checksums unknown: the files
    get strict IDX validation only). Images must be uint8 (N, H, W) or (N, C, H, W), labels
    integer (N,); ``n_classes`` defaults to the largest label + 1. Same return value as
    :func:`load_mnist`."""
    float_dtype(dtype)
    paths = find_idx_files(path)
    arrays = {f: read_idx(p) for f, p in paths.items()}
    return _assemble(
        arrays,
        {f: str(p) for f, p in paths.items()},
        n_classes=n_classes,
        normalize=normalize,
        flatten=flatten,
        one_hot_label=one_hot_label,
        dtype=dtype,
    )

"""layerwise's model files: safetensors tensors plus a JSON document, written atomically.

Model file format (``format_version`` 1) — one ``.safetensors`` file:

- tensors: the model's ``state_dict()`` under its book names (``W1``, ``b1``, ...,
  ``gamma1``, ``beta1``, ``running_mean1``, ...), and, when an optimizer is saved, its state
  arrays under ``optimizer/<slot>/<parameter>`` (``optimizer/m/W1``, ``optimizer/v/W1``).
- string metadata (safetensors' ``__metadata__``): one key, ``"layerwise"``, holding a JSON
  document ``{"format": "layerwise-model", "format_version": 1, "layerwise_version", "model":
  model.config(), "dtype", "optimizer": {"type", "hyper", "step"} | null, "state": ... | null}``.

``save`` writes one (through ``files.atomic_write``); ``load_checkpoint`` reads it back and
checks every part against the architecture, raising ``FormatError`` naming the file and the
problem. Nothing here pickles.
"""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._version import __version__
from ..errors import FormatError, InputError, LayerwiseError
from ..optim import Optimizer, optimizer_from_state_dict
from .files import PathLike, atomic_write

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "load",
    "load_checkpoint",
    "read_metadata",
    "save",
]

FORMAT = "layerwise-model"
#: The newest file format this version writes and reads.
FORMAT_VERSION = 1
METADATA_KEY = "layerwise"
OPTIMIZER_PREFIX = "optimizer/"


class Checkpoint(NamedTuple):
    """What ``load_checkpoint`` returns."""

    model: Any
    #: The optimizer rebuilt with its state (continues bit-exactly), or None if none was saved.
    optimizer: Optimizer | None
    #: The JSON-able training state passed to ``save(state=...)``, or None.
    state: Any
    #: The file's whole ``layerwise`` metadata document.
    metadata: dict


def _json_default(obj: object) -> Any:
    # NumPy scalars (np.float32 losses, np.int64 counters) are common in a training history.
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def save(model: Any, path: PathLike, *, optimizer: Optimizer | None = None, state: Any = None) -> Path:
    """Save ``model`` (architecture + tensors), optionally an optimizer's state and a JSON-able
    training ``state``, to one safetensors file at ``path``, atomically. Returns the path."""
    # Imported here: safetensors (a Rust extension) loads when a model file is used, not at every CLI start.
    from safetensors.numpy import save as st_save

    path = Path(path)
    model_tensors = model.state_dict()
    tensors: dict[str, np.ndarray] = {}
    for name, arr in model_tensors.items():
        if name.startswith(OPTIMIZER_PREFIX):
            raise InputError(f"model tensor {name!r} uses the reserved prefix {OPTIMIZER_PREFIX!r}")
        tensors[name] = np.ascontiguousarray(arr)
    opt_meta = None
    if optimizer is not None:
        opt_state = optimizer.state_dict()
        for key, arr in opt_state["arrays"].items():
            param = key.partition("/")[2]
            if param not in model_tensors or model_tensors[param].shape != arr.shape:
                raise InputError(
                    f"optimizer state {key!r} (shape {arr.shape}) belongs to no parameter of this model; "
                    "was the optimizer used with another model?"
                )
            tensors[OPTIMIZER_PREFIX + key] = np.ascontiguousarray(arr)
        opt_meta = {k: opt_state[k] for k in ("type", "hyper", "step")}
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "layerwise_version": __version__,
        "model": model.config(),
        "dtype": np.dtype(model.dtype).name,
        "optimizer": opt_meta,
        "state": state,
    }
    try:
        # allow_nan=False: NaN/Infinity are not JSON, and other readers would reject the file.
        text = json.dumps(doc, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot save {path}: model config or state is not JSON-serialisable ({exc})") from exc
    return atomic_write(path, st_save(tensors, metadata={METADATA_KEY: text}))


def _open_tensors(path: Path, with_tensors: bool) -> tuple[dict[str, str] | None, dict[str, np.ndarray]]:
    # Imported here: safetensors (a Rust extension) loads when a model file is used, not at every CLI start.
    from safetensors import SafetensorError, safe_open

    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory, expected a .safetensors model file")
    try:
        with safe_open(path, framework="numpy") as f:
            meta = f.metadata()
            tensors = {k: f.get_tensor(k) for k in f.keys()} if with_tensors else {}
    except SafetensorError as exc:
        raise FormatError(f"{path}: not a valid safetensors file (truncated or corrupt?): {exc}") from None
    except (TypeError, AttributeError, ValueError) as exc:
        # A valid file whose tensors NumPy has no dtype for (BF16, F8_E4M3 from PyTorch).
        raise FormatError(f"{path}: holds a tensor NumPy cannot represent ({exc}); layerwise model files "
                          "hold float32 or float64 tensors") from None
    return meta, tensors


def _parse_metadata(path: Path, meta: dict[str, str] | None) -> dict:
    if not meta or METADATA_KEY not in meta:
        raise FormatError(
            f"{path}: a safetensors file without layerwise metadata; it was not written by layerwise.save"
        )
    try:
        doc = json.loads(meta[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}: layerwise metadata is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise FormatError(f"{path}: metadata does not describe a layerwise model (format != {FORMAT!r})")
    version = doc.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FormatError(f"{path}: invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise FormatError(
            f"{path}: made by a newer layerwise (file format_version {version}, this layerwise reads "
            f"up to {FORMAT_VERSION}); upgrade layerwise to load it"
        )
    if not isinstance(doc.get("model"), dict):
        raise FormatError(f"{path}: metadata has no model config")
    dtype = None
    if isinstance(doc.get("dtype"), str):
        with suppress(TypeError):
            dtype = np.dtype(doc["dtype"])
    if dtype is None or dtype.kind != "f":
        raise FormatError(f"{path}: metadata dtype {doc.get('dtype')!r} is not a floating dtype")
    return doc


def read_metadata(path: PathLike) -> dict:
    """The validated ``layerwise`` metadata document of a model file, without loading tensors."""
    path = Path(path)
    meta, _ = _open_tensors(path, with_tensors=False)
    return _parse_metadata(path, meta)


def _check_tensor(path: Path, name: str, got: np.ndarray, want: np.ndarray, dtype: np.dtype) -> None:
    if got.shape != want.shape:
        raise FormatError(
            f"{path}: tensor {name!r} has shape {got.shape}, but the architecture needs {want.shape}"
        )
    if got.dtype != dtype:
        raise FormatError(f"{path}: tensor {name!r} is {got.dtype}, but the file says the model is {dtype}")


#: Parameters a config may ask for beyond those the file holds, so that a file missing a
#: tensor still has it named below; drawing them costs at most ~0.3 s. A config asking for
#: more is refused before its net is built (a few bytes of JSON can ask for gigabytes).
_MISSING_ALLOWANCE = 10_000_000


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Load a file written by ``save``: the model, the optimizer (or None), the training state
    and the metadata. Any inconsistency raises ``FormatError`` naming the file and the problem."""
    # Imported here, not at the top: layerwise.models imports this package (book weight files).
    from ..models import build_model

    path = Path(path)
    meta, tensors = _open_tensors(path, with_tensors=True)
    doc = _parse_metadata(path, meta)
    dtype = np.dtype(doc["dtype"])
    held = sum(int(v.size) for k, v in tensors.items() if not k.startswith(OPTIMIZER_PREFIX))
    try:
        model = build_model(doc["model"], dtype=dtype, max_parameters=held + _MISSING_ALLOWANCE)
    except (LayerwiseError, LookupError, TypeError, ValueError, AttributeError, OverflowError,
            MemoryError, RecursionError) as exc:
        # MemoryError: a few bytes of JSON can ask for a network of terabytes.
        raise FormatError(f"{path}: the model config cannot be rebuilt ({type(exc).__name__}: {exc})") from exc

    expected = model.state_dict()
    found = {k: v for k, v in tensors.items() if not k.startswith(OPTIMIZER_PREFIX)}
    missing = [k for k in expected if k not in found]
    if missing:
        raise FormatError(f"{path}: tensor(s) {', '.join(missing)} missing; the architecture needs {list(expected)}")
    unexpected = [k for k in found if k not in expected]
    if unexpected:
        raise FormatError(f"{path}: unexpected tensor(s) {', '.join(unexpected)} for this architecture")
    for name, want in expected.items():
        _check_tensor(path, name, found[name], want, dtype)
    model.load_state_dict(found)

    opt_arrays = {k[len(OPTIMIZER_PREFIX) :]: v for k, v in tensors.items() if k.startswith(OPTIMIZER_PREFIX)}
    opt_meta = doc.get("optimizer")
    optimizer = None
    if opt_meta is None:
        if opt_arrays:
            raise FormatError(f"{path}: optimizer tensors present but no optimizer metadata")
    else:
        if not isinstance(opt_meta, dict):
            raise FormatError(f"{path}: optimizer metadata is not an object")
        for key, arr in opt_arrays.items():
            param = key.partition("/")[2]
            if param not in expected:
                raise FormatError(f"{path}: optimizer tensor {key!r} belongs to no parameter of the model")
            _check_tensor(path, OPTIMIZER_PREFIX + key, arr, expected[param], dtype)
        try:
            optimizer = optimizer_from_state_dict({**opt_meta, "arrays": opt_arrays})
        except (LayerwiseError, LookupError, TypeError, ValueError, AttributeError) as exc:
            # e.g. "hyper": ["x"] makes dict() raise ValueError inside the optimizer.
            raise FormatError(f"{path}: invalid optimizer state ({exc})") from exc
    return Checkpoint(model, optimizer, doc.get("state"), doc)


def load(path: PathLike) -> Any:
    """Load the model saved at ``path`` by ``save`` (ignoring any optimizer and training state)."""
    return load_checkpoint(path).model

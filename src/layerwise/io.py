"""Files: atomic writes, layerwise model files (safetensors + JSON), and the book's pickles.

Model file format (``format_version`` 1) — one ``.safetensors`` file:

- tensors: the model's ``state_dict()`` under its book names (``W1``, ``b1``, ...,
  ``gamma1``, ``beta1``, ``running_mean1``, ...), and, when an optimizer is saved, its state
  arrays under ``optimizer/<slot>/<parameter>`` (``optimizer/m/W1``, ``optimizer/v/W1``).
- string metadata (safetensors' ``__metadata__``): one key, ``"layerwise"``, holding a JSON
  document ``{"format": "layerwise-model", "format_version": 1, "layerwise_version", "model":
  model.config(), "dtype", "optimizer": {"type", "hyper", "step"} | null, "state": ... | null}``.

Files are written atomically (temp file, fsync, rename, fsync of the directory), so a crash
or a full disk leaves the previous file intact. Nothing here ever pickles: the book's ``.pkl``
files are only *read*, with an unpickler that admits NumPy arrays and plain containers and
refuses any other global before it could run.
"""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import pickletools
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, NamedTuple

import numpy as np

from .errors import FormatError, InputError, LayerwiseError, UnsafePickleError
from .optim import Optimizer, optimizer_from_state_dict

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "atomic_write",
    "atomic_writer",
    "load",
    "load_book_params",
    "load_checkpoint",
    "read_metadata",
    "save",
    "save_book_params",
]

PathLike = str | os.PathLike

FORMAT = "layerwise-model"
#: The newest file format this version writes and reads.
FORMAT_VERSION = 1
METADATA_KEY = "layerwise"
OPTIMIZER_PREFIX = "optimizer/"


# -- atomic writes -----------------------------------------------------------------------

def _umask() -> int:
    # /proc avoids os.umask's set-and-restore, which races with other threads creating files.
    with suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable. Not every platform (Windows) or filesystem can fsync a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_writer(path: PathLike) -> Iterator[BinaryIO]:
    """Open a temp file next to ``path`` for binary writing; on a clean exit it replaces ``path``.

    The temp file is flushed and fsynced, renamed over ``path`` with ``os.replace`` (atomic on
    POSIX and Windows), and the directory is fsynced. If the block raises, the temp file is
    removed and whatever was at ``path`` before is untouched. The new file gets the old file's
    permissions, or the usual ones (0o666 & ~umask) when there was none — ``mkstemp`` alone
    would leave it private (0o600).
    """
    path = Path(path)
    directory = path.parent
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        with suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.filename is None and exc.errno is not None:
            # A failed write (ENOSPC, EIO) names no file; say which one could not be written.
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    _fsync_dir(directory)


def atomic_write(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see ``atomic_writer``); returns the path."""
    with atomic_writer(path) as f:
        f.write(data)
    return Path(path)


# -- the book's pickles ------------------------------------------------------------------

def _latin1_encode(obj: object, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it (bytes stored as latin-1 text), and nothing
    else: other codecs (zlib, base64, ...) are no business of a weight file."""
    if not isinstance(obj, str) or encoding.replace("-", "").replace("_", "").lower() != "latin1":
        raise UnsafePickleError(f"_codecs.encode with encoding {encoding!r} is not admitted")
    return obj.encode("latin-1", errors)


def _numeric_dtype(*args: Any) -> np.dtype:
    """``numpy.dtype(...)`` as a pickle calls it, for plain numbers only: an object dtype
    (whose arrays hold pointers) or a structured one is no weight file's business."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. NumPy's deprecation of dtype('f8', align=60)
        dtype = np.dtype(*args)
    if dtype.kind not in "biufc" or dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise FormatError(f"numpy.dtype{args!r} is not a plain numeric dtype")
    return dtype


def _admitted_globals() -> dict[tuple[str, str], Any]:
    """Every global a pickle of NumPy arrays in dicts needs, under each name NumPy has used.

    NumPy 2 renamed ``numpy.core`` to ``numpy._core``; pickles name either. The names are
    mapped straight to the objects, so nothing is imported by name (and NumPy 2 does not warn
    about the deprecated ``numpy.core``).
    """
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # NumPy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    table: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _numeric_dtype,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _latin1_encode,
    }
    for core in ("numpy.core", "numpy._core"):
        table[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct  # protocols 0-4
        table[(f"{core}.multiarray", "scalar")] = multiarray.scalar  # NumPy scalars
        table[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol 5
    return table


_DTYPE_STATE_TAIL = (None, None, None, -1, -1, 0)  # what NumPy pickles for every numeric dtype


class _RestrictedUnpickler(pickle._Unpickler):
    """An unpickler that can only build NumPy arrays, dtypes, scalars and plain containers.

    Code runs in a pickle only through globals (functions and classes it names, then calls);
    ``find_class`` is asked for each one before anything is called, and refuses every global
    not in the table — ``os.system``, ``builtins.eval``, ``numpy.load`` alike.

    The rest of a pickle's power is BUILD, which hands an object a state to ``__setstate__``.
    NumPy trusts those states: a dtype state whose last number (flags) is 25 instead of 0
    makes an int64 dtype claim to hold object pointers, and freeing an array of it
    decrements "reference counts" at addresses the file chose (found by tests/test_fuzz.py).
    So BUILD is admitted for dtypes and arrays only, with the exact states NumPy writes for
    plain numbers. This is the pure-Python unpickler (``pickle._Unpickler``), whose BUILD can
    be overridden; weight files hold few opcodes and big byte strings, so it is fast enough.
    """

    _admitted = _admitted_globals()
    dispatch: ClassVar[dict] = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, file: BinaryIO, source: PathLike) -> None:
        # latin1 reads Python 2 pickles of NumPy arrays (their str holds raw bytes).
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        found = self._admitted.get((module, name))
        if found is None:
            raise UnsafePickleError(
                f"{self._source}: the pickle asks for the global {module}.{name}, which is not a NumPy "
                "array, dtype or plain container; refused without calling it"
            )
        return found

    def load_build(self) -> None:
        inst, state = self.stack[-2], self.stack[-1]
        if isinstance(inst, np.dtype):
            # Types first: comparing an array with == would not give a bool.
            ok = (type(state) is tuple and len(state) == 8 and type(state[0]) is int and state[0] == 3
                  and type(state[1]) is str and state[1] in ("<", ">", "|", "=")
                  and all(a is b or (type(a) is int and a == b)
                          for a, b in zip(state[2:], _DTYPE_STATE_TAIL, strict=True)))
        elif type(inst) is np.ndarray:
            # (version,) shape, dtype, Fortran order, raw data; dtypes come from _numeric_dtype.
            parts = state[-4:] if type(state) is tuple and len(state) in (4, 5) else ()
            ok = (len(parts) == 4 and type(parts[0]) is tuple and all(type(d) is int for d in parts[0])
                  and isinstance(parts[1], np.dtype) and not parts[1].hasobject and parts[1].flags == 0
                  and type(parts[2]) in (bool, int) and type(parts[3]) in (bytes, bytearray, str))
        else:
            ok = False
        if not ok:
            raise FormatError(f"refused to set the state of a {type(inst).__name__} to {state!r:.200}: "
                              "not the state NumPy writes for a numeric array or dtype")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build


def _check_opcodes(path: Path, data: bytes) -> None:
    """Walk the pickle's opcodes with ``pickletools`` (which parses, never builds or calls)
    before the real unpickler sees them.

    CPython's C unpickler trusts numbers a hostile file controls: ``LONG_BINPUT 1216737112``
    (5 bytes) makes it grow its memo table to that index and zero it, ~19 GB and a minute
    of work; a ``BYTEARRAY8`` claiming 7e18 bytes ends in a MemoryError whose clean-up
    prints a SystemError. A genuine pickle numbers its memo from 0, one entry per PUT, so no
    index exceeds the file's length, and every length prefix fits in the file.
    """
    try:
        with warnings.catch_warnings():
            # An invalid escape in a protocol-0 string is a DeprecationWarning in codecs; the
            # file is judged here, not warned about.
            warnings.simplefilter("ignore", DeprecationWarning)
            for opcode, arg, _ in pickletools.genops(data):
                if opcode.name in ("PUT", "BINPUT", "LONG_BINPUT") and not (
                    isinstance(arg, int) and 0 <= arg <= len(data)
                ):
                    raise FormatError(f"{path}: the pickle stores memo entry {arg!r}, impossible in a file of "
                                      f"{len(data)} bytes (a corrupt or hostile pickle)")
    except FormatError:
        raise
    except Exception as exc:  # truncated argument, unknown opcode, bad text number, ...
        raise FormatError(f"{path}: not a readable pickle of NumPy arrays ({type(exc).__name__}: {exc})") from exc


def load_book_params(path: PathLike) -> dict[str, np.ndarray]:
    """Read a weight file of the book (``sample_weight.pkl``, ``params.pkl``,
    ``deep_convnet_params.pkl``) or any pickle of a dict name -> NumPy array, safely.

    Raises ``UnsafePickleError`` (naming the global) for a pickle that would run anything
    beyond building arrays, and ``FormatError`` (naming the file) for a truncated or
    non-pickle file or one that does not hold a dict of str -> numeric ndarray.
    """
    path = Path(path)
    data = path.read_bytes()
    if not data:
        raise FormatError(f"{path}: empty file, expected a pickle of NumPy arrays")
    _check_opcodes(path, data)
    stream = io.BytesIO(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # as in _check_opcodes
            obj = _RestrictedUnpickler(stream, path).load()
    except UnsafePickleError as exc:
        # Re-raised with the file named even when an admitted callable (_codecs.encode) refused.
        if str(path) in str(exc):
            raise
        raise UnsafePickleError(f"{path}: {exc}") from None
    except Exception as exc:
        # A malformed pickle fails in many ways (UnpicklingError, EOFError, ValueError from
        # NumPy's __setstate__, TypeError, ...); all mean the same thing to the caller.
        raise FormatError(f"{path}: not a readable pickle of NumPy arrays ({type(exc).__name__}: {exc})") from exc
    if stream.tell() != len(data):
        raise FormatError(f"{path}: {len(data) - stream.tell()} bytes of trailing data after the pickle")
    if not isinstance(obj, dict):
        raise FormatError(f"{path}: expected a dict of name -> array, found {type(obj).__name__}")
    if not obj:
        raise FormatError(f"{path}: the pickle holds an empty dict, no arrays")
    params: dict[str, np.ndarray] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise FormatError(f"{path}: expected string keys, found {key!r}")
        if type(value) is not np.ndarray or value.dtype.kind not in "biuf":
            what = f"array of dtype {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
            raise FormatError(f"{path}: {key!r} is a {what}, expected a numeric NumPy array")
        params[key] = value
    return params


def save_book_params(params: dict[str, np.ndarray], path: PathLike) -> Path:
    """Write a weight file in the book's format: a pickle of a dict name -> NumPy array
    (what the book's ``save_params`` writes and ``load_book_params`` reads), atomically.

    Only plain numeric arrays are written, so the file holds nothing but arrays; anything
    else is refused by name before a byte is written.
    """
    arrays: dict[str, np.ndarray] = {}
    for key, value in params.items():
        if not isinstance(key, str):
            raise InputError(f"save_book_params: names must be strings, got {key!r}")
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise InputError(f"save_book_params: {key!r} is an array of dtype {array.dtype}, expected numbers")
        arrays[key] = np.ascontiguousarray(array)
    return atomic_write(path, pickle.dumps(arrays, protocol=pickle.HIGHEST_PROTOCOL))


# -- layerwise model files ---------------------------------------------------------------

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
    from safetensors.numpy import save as st_save

    from . import __version__

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


def load_checkpoint(path: PathLike) -> Checkpoint:
    """Load a file written by ``save``: the model, the optimizer (or None), the training state
    and the metadata. Any inconsistency raises ``FormatError`` naming the file and the problem."""
    from .models import build_model

    path = Path(path)
    meta, tensors = _open_tensors(path, with_tensors=True)
    doc = _parse_metadata(path, meta)
    dtype = np.dtype(doc["dtype"])
    try:
        model = build_model(doc["model"], dtype=dtype)
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

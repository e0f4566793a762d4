"""The book's weight files: pickles of NumPy arrays, read with a restricted unpickler.

The book saves weights with ``pickle`` (``sample_weight.pkl``, ``params.pkl``,
``deep_convnet_params.pkl``). A pickle can run any code it names, so ``load_book_params``
reads one with an unpickler that admits only NumPy arrays, numeric dtypes, scalars and plain
containers, after walking its opcodes for impossible sizes; anything else is refused with a
clear error before it could run. ``save_book_params`` writes the same format (a dict of
name -> array), atomically. layerwise's own files never pickle (see ``model_file``).
"""

from __future__ import annotations

import collections
import io
import pickle
import pickletools
import warnings
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np

from ..errors import FormatError, InputError, UnsafePickleError
from .files import PathLike, atomic_write

try:
    from numpy._core import multiarray, numeric
except ImportError:  # NumPy 1.x
    from numpy.core import multiarray, numeric  # type: ignore[no-redef]

__all__ = ["load_book_params", "save_book_params"]


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

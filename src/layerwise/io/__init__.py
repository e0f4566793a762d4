"""Files, each concern in its own module:

- ``files``: atomic writes (temp file, fsync, rename, fsync of the directory).
- ``model_file``: layerwise's model files, safetensors tensors plus JSON metadata
  (``save``, ``load``, ``load_checkpoint``, ``read_metadata``); the format is described there.
- ``book_pickle``: the book's ``.pkl`` weight files, read with a restricted unpickler
  (``load_book_params``) and written as the book writes them (``save_book_params``).
"""

from .book_pickle import load_book_params, save_book_params
from .files import PathLike, atomic_write, atomic_writer, save_png
from .model_file import FORMAT, FORMAT_VERSION, Checkpoint, load, load_checkpoint, read_metadata, save

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "Checkpoint",
    "PathLike",
    "atomic_write",
    "atomic_writer",
    "load",
    "load_book_params",
    "load_checkpoint",
    "read_metadata",
    "save",
    "save_book_params",
    "save_png",
]

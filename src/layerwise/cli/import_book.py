"""``layerwise import-book``: the book's pickled weights into a layerwise model file."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..io import load_book_params, save
from ..models import book_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import-book",
        help="convert one of the book's .pkl weight files into a model file",
        description="Read a weight file published with 'Deep Learning from Scratch' through a "
        "restricted unpickler (only NumPy arrays and plain containers; nothing executes) and "
        "save it as a layerwise model (safetensors + JSON metadata).",
    )
    p.add_argument("pkl", type=Path, help="sample_weight.pkl, params.pkl, deep_convnet_params.pkl, ...")
    p.add_argument("--arch", required=True,
                   choices=("two-layer", "sample-weight", "simple-convnet", "deep-convnet"))
    p.add_argument("-o", "--output", type=Path, required=True, help="model file to write (.safetensors)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None,
                   help="convert the weights (default: keep the file's dtype)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:

    model = book_model(args.arch, load_book_params(args.pkl))
    if args.dtype:
        model.astype(np.dtype(args.dtype))
    input_shape = [784] if args.arch in ("two-layer", "sample-weight") else [1, 28, 28]
    classes = model.output_size
    save(model, args.output, state={"dataset": "mnist", "input_shape": input_shape, "classes": classes,
                                    "source": str(args.pkl.name)})
    print(f"wrote {args.output}: {type(model).__name__} ({args.arch}), {model.dtype}, "
          f"tensors {', '.join(model.params)}")
    return 0

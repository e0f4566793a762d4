"""``layerwise graph``: draw the book's computational graphs, or a model file's layers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from ..datasets import load_dataset
from ..errors import InputError
from ..graph import EXAMPLES, Drawing, ModelGraph, example, model_graph
from ..graph.captions import LANGUAGES
from ..io import load_checkpoint
from ..layers import MeanSquaredError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "graph",
        help="draw a computational graph with forward values and gradients (DOT/SVG/PNG)",
        description="Draw one of the book's computational graphs (apple, apple-orange, sigmoid) "
        "with each edge's forward value above it and its gradient below it, or a model file as "
        "its layers with tensor shapes (and, with --batch, the loss and each parameter's "
        "gradient norm after one forward/backward). Without -o the DOT text goes to stdout; "
        "SVG and PNG need Graphviz's `dot` (apt-get install graphviz).",
    )
    p.add_argument("what", metavar="apple|apple-orange|sigmoid|MODEL_FILE",
                   help="a ready-made graph, or a saved model file")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="picture to write; the format comes from the extension: .dot, .svg, .png, .pdf")
    p.add_argument("--x", type=float, default=None, help="the sigmoid graph's input (default 1.0)")
    p.add_argument("--dpi", type=float, default=96, help="resolution of a PNG (default 96)")
    p.add_argument("--lang", choices=LANGUAGES, default="en",
                   help="language of the book's graphs: the title, captions and labels in the words of "
                   "the book's English, Korean or Japanese edition (default en; ko and ja are drawn in "
                   "Noto Sans CJK: apt-get install fonts-noto-cjk). Model files are drawn in English")
    p.add_argument("--batch", type=int, default=0, metavar="N",
                   help="model files: run one forward/backward on N test images and show the "
                   "loss and each parameter's gradient norm")
    p.add_argument("--dataset", default=None,
                   help="model files: where the --batch images come from: digits, mnist, "
                   "fashion-mnist, an IDX folder, or 'random' (inputs in [0, 1), random labels); "
                   "default: the data set the file was trained on, else random")
    p.add_argument("--seed", type=int, default=0, help="seed of random --batch inputs (default 0)")
    p.add_argument("--input-shape", default=None, metavar="D[,H,W]",
                   help="model files: shape of one input sample, e.g. 784 or 1,28,28 (default: "
                   "from the model's constructor arguments or its first Affine layer)")
    p.set_defaults(func=run)


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise InputError(f"--input-shape: expected positive integers like 784 or 1,28,28, got {text!r}")
    return shape


def _model_drawing(args: argparse.Namespace) -> ModelGraph:
    checkpoint = load_checkpoint(args.what)
    model = checkpoint.model
    # `layerwise train` records the data set and the sample shape in the file's training
    # state; a convolutional Sequential could not tell its input shape otherwise.
    state = checkpoint.state if isinstance(checkpoint.state, dict) else {}
    if args.input_shape:
        input_shape = _parse_shape(args.input_shape)
    else:
        recorded = state.get("input_shape")
        input_shape = tuple(int(d) for d in recorded) if recorded else None
    if args.batch <= 0:
        if args.dataset:
            raise InputError("--dataset needs --batch N")
        return model_graph(model, input_shape=input_shape)
    # Shapes first (no data): they say how big a sample is and how many classes there are.
    plan = model_graph(model, input_shape=input_shape)
    if plan.sample_shape is None:
        raise InputError(f"{args.what}: cannot tell the input shape of this model; pass --input-shape")
    if plan.output_shape is None:
        raise InputError(f"{args.what}: cannot tell the output shape of this model")
    dtype = getattr(model, "dtype", np.float32)
    dataset = args.dataset or state.get("dataset") or "random"
    if dataset == "random":
        rng = np.random.default_rng(args.seed)
        x = rng.random((args.batch, *plan.sample_shape)).astype(dtype)
        if isinstance(getattr(model, "loss_layer", None), MeanSquaredError):
            t = rng.random((args.batch, *plan.output_shape[1:])).astype(dtype)  # regression targets
        else:
            t = rng.integers(0, plan.output_shape[-1], size=args.batch)  # class labels
        data = f"random inputs, seed {args.seed}"
    else:
        flat = len(plan.sample_shape) == 1
        _, (x, t) = load_dataset(dataset, normalize=True, flatten=flat, one_hot_label=False,
                                 dtype=dtype, progress=False)
        if tuple(x.shape[1:]) != plan.sample_shape:
            raise InputError(f"{dataset} images have shape {tuple(x.shape[1:])}, but the model "
                             f"takes {plan.sample_shape}")
        x, t = x[: args.batch], t[: args.batch]
        data = f"{dataset} test images"
    return model_graph(model, x, t, data=data)


def run(args: argparse.Namespace) -> int:
    drawing: Drawing
    if args.what in EXAMPLES:
        if args.x is not None and args.what != "sigmoid":
            raise InputError("--x applies to the sigmoid graph only")
        if args.batch or args.input_shape or args.dataset:
            raise InputError("--batch, --dataset and --input-shape apply to model files only")
        drawing = example(args.what, x=1.0 if args.x is None else args.x, lang=args.lang)
    elif Path(args.what).is_file():
        if args.x is not None:
            raise InputError("--x applies to the sigmoid graph only")
        if args.lang != "en":
            raise InputError(f"--lang {args.lang}: only the book's graphs ({', '.join(EXAMPLES)}) are "
                             "drawn in other languages; a model file's graph is drawn in English")
        drawing = _model_drawing(args)
    else:
        raise InputError(
            f"{args.what!r} is neither a ready-made graph ({', '.join(EXAMPLES)}) "
            "nor a model file"
        )

    if args.output is None:
        sys.stdout.write(drawing.to_dot())
        return 0
    path = drawing.save(args.output, dpi=args.dpi)
    print(f"wrote {path}")
    return 0

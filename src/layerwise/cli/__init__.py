"""The ``layerwise`` command. Each sub-command lives in its own module with a ``register``
function that adds its parser; this module only assembles them."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..cpu import get_num_threads, set_num_threads
from ..errors import LayerwiseError

# Sub-command modules, in the order ``--help`` lists them.
COMMANDS = ("train", "sweep", "evaluate", "predict", "serve", "import_book", "graph", "gradcheck")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layerwise",
        description="Neural networks built layer by layer in NumPy.",
    )
    parser.add_argument("--version", action="version", version=f"layerwise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            continue  # a command not written yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    # What was typed, for commands that must tell a given option from its default
    # (`train --resume` accepts only --epochs).
    args.argv = argv
    try:
        if getattr(args, "threads", None) is not None:
            set_num_threads(args.threads)
        elif hasattr(args, "threads"):
            get_num_threads()  # a bad LAYERWISE_THREADS is named now, not after loading the data
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below
        return status
    except LayerwiseError as exc:
        print(f"layerwise {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # `layerwise evaluate ... | head`: the reader left; stop quietly, like other Unix tools.
        # stdout is pointed at devnull so the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        # A missing file, a full disk, a read-only folder: the system's own words (they name
        # the file), without a traceback. The atomic writers have left earlier files intact.
        print(f"layerwise {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"layerwise {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

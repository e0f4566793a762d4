"""``layerwise gradcheck``: every layer type's gradients against central differences."""

from __future__ import annotations

import argparse

from ..gradcheck.cases import standard_cases
from ..gradcheck.checks import TOLERANCE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gradcheck",
        help="check every layer's backward pass against numerical gradients",
        description="Compare each layer type's analytic gradients with central differences "
        "in float64 and print a table (layer, tensor, max relative error, pass/fail).",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for the random inputs (default 0)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = []
    for case in standard_cases():
        for tensor, err in case.run(seed=args.seed).items():
            rows.append((case.label, tensor, err, err < TOLERANCE))
    width = max(len(r[0]) for r in rows)
    print(f"{'layer':<{width}}  {'tensor':<13}  max rel. error  result")
    for label, tensor, err, ok in rows:
        print(f"{label:<{width}}  {tensor:<13}  {err:14.2e}  {'pass' if ok else 'FAIL'}")
    failed = sum(not r[3] for r in rows)
    print(
        f"{len(rows) - failed} passed, {failed} failed "
        f"(float64, central differences, tolerance {TOLERANCE:g})"
    )
    return 1 if failed else 0

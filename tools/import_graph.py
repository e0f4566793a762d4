"""Draw layerwise's package layers from the code: which module imports which.

    python tools/import_graph.py            # writes docs/img/architecture.dot and .svg
    python tools/import_graph.py --check    # exit 1 if the committed files are out of date

Nodes are layerwise's top-level modules and packages (``layers``, ``kernels``, ``models``, ...);
an edge A -> B means some module in A imports from B at module level (imports inside functions,
which keep the CLI's start fast or an optional dependency optional, are drawn dashed). The
SVG is rendered by Graphviz's ``dot``.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "layerwise"
OUT = REPO / "docs" / "img" / "architecture"

#: Rows of the picture, from the user's side down to the foundations.
RANKS = [
    ["cli", "book"],
    ["train", "graph", "datasets"],
    ["models", "io", "gradcheck"],
    ["optim", "layers", "nodes", "init"],
    ["kernels", "functional"],
    ["checks"],
]


def unit_of(module: str) -> str | None:
    """``layerwise.layers.conv`` -> ``layers``; None outside layerwise or for the package itself."""
    parts = module.split(".")
    if parts[0] != "layerwise" or len(parts) < 2 or parts[1].startswith("__") or parts[1] in ("_version", "errors"):
        return None  # every unit imports errors: its arrows would only hide the others
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, at module level?) for every import of a layerwise module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names] if not node.module else [target]
            found += [(name, id(node) in top_level) for name in names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top_level) for alias in node.names]
    return found


def edges() -> dict[tuple[str, str], bool]:
    """(from unit, to unit) -> True if any such import is at module level."""
    result: dict[tuple[str, str], bool] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = unit_of(module_name(path))
        if source is None:
            continue
        for target, top in imports(path):
            dest = unit_of(target)
            if dest is None or dest == source:
                continue
            result[(source, dest)] = result.get((source, dest), False) or top
    return result


def to_dot() -> str:
    found = edges()
    units = sorted({u for pair in found for u in pair})
    lines = [
        "digraph layerwise {",
        '  rankdir=TB; node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="Helvetica"];',
        '  edge [color="#666666", arrowsize=0.6];',
    ]
    ranked = set()
    for row in RANKS:
        present = [u for u in row if u in units]
        ranked.update(present)
        if present:
            lines.append("  { rank=same; " + " ".join(f'"{u}";' for u in present) + " }")
    for unit in units:
        if unit not in ranked:
            lines.append(f'  "{unit}";')
    for (a, b), top in sorted(found.items()):
        style = "" if top else ' [style=dashed, constraint=false, color="#aaaaaa"]'
        lines.append(f'  "{a}" -> "{b}"{style};')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed picture is out of date")
    args = parser.parse_args()
    dot = to_dot()
    dot_path = OUT.with_suffix(".dot")
    if args.check:
        current = dot_path.read_text(encoding="utf-8") if dot_path.exists() else ""
        if current != dot:
            print(f"{dot_path} is out of date: run python tools/import_graph.py", file=sys.stderr)
            return 1
        return 0
    dot_path.parent.mkdir(parents=True, exist_ok=True)
    dot_path.write_text(dot, encoding="utf-8")
    svg = subprocess.run(["dot", "-Tsvg"], input=dot.encode(), capture_output=True, check=True).stdout
    OUT.with_suffix(".svg").write_bytes(svg)
    print(f"wrote {dot_path} and {OUT.with_suffix('.svg')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""layerwise.io, layerwise.optim and layerwise.gradcheck, each split by concern into modules:
every name they had is still importable from the package, each name has one home module, and
no module-level import cycle runs through them (so import order does not matter)."""

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import layerwise

# Every public name each package had as one module, plus names other modules import from it.
PUBLIC = {
    "layerwise.io": {
        "files": ["PathLike", "atomic_write", "atomic_writer", "save_png"],
        "book_pickle": ["load_book_params", "save_book_params"],
        "model_file": ["FORMAT", "FORMAT_VERSION", "Checkpoint", "load", "load_checkpoint", "read_metadata", "save"],
    },
    "layerwise.optim": {
        "base": ["Optimizer"],
        "rules": ["SGD", "AdaGrad", "Adam", "Momentum", "Nesterov", "RMSprop",
                  "OPTIMIZERS", "make_optimizer", "optimizer_from_state_dict"],
        "schedules": ["LR_SCHEDULES", "lr_factor"],
    },
    "layerwise.gradcheck": {
        "numerical": ["numerical_gradient"],
        "checks": ["TOLERANCE", "GradCheckCase", "away_from_zero", "check_gradients", "check_layer",
                   "check_model", "relative_error"],
        "cases": ["conv_cases", "norm_cases", "standard_cases"],
    },
}

SRC = Path(layerwise.__file__).parent


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_every_public_name_is_importable_from_the_package_and_lives_in_one_module(package):
    pkg = importlib.import_module(package)
    names = [name for module_names in PUBLIC[package].values() for name in module_names]
    assert sorted(pkg.__all__) == sorted(names)
    for module, module_names in PUBLIC[package].items():
        mod = importlib.import_module(f"{package}.{module}")
        assert mod.__doc__ and mod.__doc__.strip(), f"{package}.{module} says what it holds"
        for name in module_names:
            assert getattr(pkg, name) is getattr(mod, name), (package, name)
            assert name in mod.__all__, (module, name)
    # the package's own namespace holds its public names and its modules, nothing else public
    public = {n for n in vars(pkg) if not n.startswith("_")}
    assert public == set(names) | set(PUBLIC[package]), public - set(names) - set(PUBLIC[package])


def test_the_layers_no_longer_hold_gradcheck_tables():
    from layerwise.layers import conv, norm

    assert not hasattr(conv, "gradcheck_cases") and not hasattr(norm, "gradcheck_cases")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    path = SRC.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _top_level_imports(path: Path) -> set[str]:
    """The layerwise modules a module imports when it is imported (not inside functions, not
    under TYPE_CHECKING)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level \
                else node.module
            submodules = {f"{base}.{alias.name}" for alias in node.names if _is_module(f"{base}.{alias.name}")}
            found |= submodules
            if len(submodules) < len(node.names):  # names defined by the module ``base`` itself
                found.add(base)
    return {m for m in found if m == "layerwise" or m.startswith("layerwise.")}


def test_no_module_level_import_cycle_anywhere():
    graph = {_module_name(p): _top_level_imports(p) for p in SRC.rglob("*.py")}
    watched = [m for m in graph if m != "layerwise"]  # the package itself only re-exports
    assert len(watched) > 60

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), list(graph.get(start, ()))
        while todo:
            m = todo.pop()
            if m == goal:
                return True
            if m not in seen and m != "layerwise":
                seen.add(m)
                todo.extend(graph.get(m, ()))
        return False

    cycles = [m for m in watched if reaches(m, m)]
    assert cycles == []


def test_the_architecture_picture_is_drawn_from_the_current_code():
    # docs/architecture.md shows docs/img/architecture.svg; tools/import_graph.py redraws it.
    tool = SRC.parents[1] / "tools" / "import_graph.py"
    result = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_imports_inside_functions_say_why():
    """An import inside a function is kept only to keep the CLI's start fast or an optional
    dependency optional (or, once, to break the io <-> models cycle), and says so in a comment."""
    silent = []
    for path in SRC.rglob("*.py"):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom):
                        here = lines[inner.lineno - 1] + (lines[inner.lineno - 2] if inner.lineno > 1 else "")
                        if "#" not in here:
                            silent.append(f"{path.relative_to(SRC)}:{inner.lineno}")
    assert silent == []


@pytest.mark.parametrize("module", [
    "layerwise.io.files", "layerwise.io.book_pickle", "layerwise.io.model_file",
    "layerwise.optim.base", "layerwise.optim.rules", "layerwise.optim.schedules",
    "layerwise.gradcheck.numerical", "layerwise.gradcheck.checks", "layerwise.gradcheck.cases",
    "layerwise.kernels.updates", "layerwise.models", "layerwise.cli.gradcheck",
])
def test_any_module_can_be_imported_first(module):
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, capture_output=True, timeout=120)

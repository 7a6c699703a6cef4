"""The package's import graph: no module imports a module that imports it back, and stages only
import the stages below them (the same layers import-linter checks from pyproject.toml)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "claims"
LAYERS = ["cli", "training", "predictor", "models", "corpus", "util"]  # each may import those after it


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every project module `path` imports, at module level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                # `from claims.corpus import schema` imports the submodule, not the package
                found.add(sub if sub in known else node.module)
    return {m for m in found if m in known}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(path, known) - {name} for name, path in mods.items()}


def test_no_import_cycle():
    edges = {m: {d for d in deps if not m.startswith(d + ".") and not d.startswith(m + ".")}
             for m, deps in graph().items()}  # a package's __init__ is not an import of its children
    try:
        tuple(graphlib.TopologicalSorter(edges).static_order())
    except graphlib.CycleError as e:
        pytest.fail(f"import cycle: {' -> '.join(e.args[1])}")


def test_stages_import_only_lower_stages():
    def layer(mod: str) -> int | None:
        parts = mod.split(".")
        return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None

    wrong = [f"{m} imports {d}" for m, deps in graph().items() for d in deps
             if layer(m) is not None and layer(d) is not None and layer(d) < layer(m)]
    assert not wrong, "\n".join(wrong)


def test_cycle_check_can_fail(tmp_path):
    """The checker sees function-level imports too: a planted cycle is found."""
    pkg = tmp_path / "claims"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("def f():\n    from claims.a import y\n")
    (pkg / "a" / "y.py").write_text("from claims.a.x import f\n")
    known = {"claims.a.x", "claims.a.y"}
    assert imports_of(pkg / "a" / "x.py", known) == {"claims.a.y"}
    assert imports_of(pkg / "a" / "y.py", known) == {"claims.a.x"}
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter({"claims.a.x": {"claims.a.y"}, "claims.a.y": {"claims.a.x"}}).static_order())

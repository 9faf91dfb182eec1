"""The code a rule's outputs depend on: every hmfs module its command imports, found by reading the source (no import).

A rule lists these files as inputs, so changing the table code re-runs the tables and nothing else
(Snakemake compares checksums). They are derived from the import statements, never kept by hand.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the hmfs package folder
PACKAGE = PACKAGE_ROOT.name


def module_file(module: str, root: Path = PACKAGE_ROOT) -> Path | None:
    """`hmfs.report.tables` -> <root>/report/tables.py (or the package's __init__.py); None if no such file."""
    parts = module.split(".")[1:]
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """The hmfs modules one file imports, anywhere in it (lazy imports inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == PACKAGE:
            found.add(node.module)
            # `from hmfs.report import stats`: stats is a module when its file exists
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def code_files(*modules: str, root: Path = PACKAGE_ROOT) -> list[str]:
    """The source files of `modules` and of every hmfs module they import, transitively, sorted."""
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = module_file(module, root)
        if path is None:
            if module in modules:
                raise ValueError(f"no source file for module {module!r} below {root}")
            continue  # a name imported from a module, not a module
        seen[module] = path
        parent = module.rpartition(".")[0]
        todo += [*imported_modules(path), *([parent] if parent and "." in parent else [])]
    return sorted(str(path) for path in set(seen.values()))

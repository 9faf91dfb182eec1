"""The package's layers, checked from the source: commands stay apart, no import cycle, a torch-free pipeline, short modules."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from hmfs.pipeline.code import PACKAGE_ROOT, imported_modules, module_file

MAX_LINES = 300
REASON = "over 300 lines:"  # a longer module says why at its top, in its docstring


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _edges() -> dict[str, set[str]]:
    """module -> the hmfs modules it imports (a name imported from a module counts as that module)."""
    modules = _modules()
    return {name: {m for m in imported_modules(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_command_imports_another_command_or_the_dispatcher():
    bad = {name: sorted(m for m in targets if m.startswith("hmfs.commands.") or m == "hmfs.cli")
           for name, targets in _edges().items() if name.startswith("hmfs.commands.")}
    assert not {k: v for k, v in bad.items() if v}


def test_the_library_never_imports_a_command_or_the_dispatcher():
    bad = {name: sorted(m for m in targets if m.startswith("hmfs.commands") or m == "hmfs.cli")
           for name, targets in _edges().items()
           if not name.startswith("hmfs.commands") and name not in ("hmfs.cli", "hmfs.__main__")}
    assert not {k: v for k, v in bad.items() if v}


def test_no_import_cycle():
    edges = _edges()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, "\n".join(" -> ".join(cycle) for cycle in cycles)


def test_modules_are_short_or_say_why():
    long = []
    for name, path in _modules().items():
        lines = len(path.read_text().splitlines())
        docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
        if lines > MAX_LINES and REASON not in docstring.lower():
            long.append(f"{name}: {lines} lines")
    assert not long, f"modules over {MAX_LINES} lines without '{REASON} <why>' in their docstring: {long}"


def test_every_module_opens_with_a_docstring():
    missing = [name for name, path in _modules().items() if not ast.get_docstring(ast.parse(path.read_text()))]
    assert not missing


def test_the_pipeline_layer_imports_no_torch():
    """What the Snakefile imports must load on a head node without torch, quickly."""
    pipeline = [name for name in _modules() if name.startswith("hmfs.pipeline") or name == "hmfs.names"]
    code = f"import sys; import {', '.join(pipeline)}; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE_ROOT.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_module_file_finds_modules_and_packages():
    assert module_file("hmfs.pipeline.grid").name == "grid.py"
    assert module_file("hmfs.model").name == "__init__.py"
    assert module_file("hmfs.pipeline.grid.Run") is None

"""Dependencies point down only: the engine imports torch, numpy and the standard library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import fdebench

PACKAGE = Path(fdebench.__file__).parent
ENGINE_ALLOWED = {"torch", "numpy"} | set(sys.stdlib_module_names)


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.module or "", node.level


def test_engine_imports_only_torch_numpy_and_itself():
    engine = PACKAGE / "engine"
    files = sorted(engine.rglob("*.py"))
    assert files
    for path in files:
        depth = len(path.relative_to(engine).parts) - 1  # how far below engine/
        for module, level in _imports(path):
            if level:  # relative: must not climb out of engine/
                assert level - 1 <= depth, f"{path.name} imports {'.' * level}{module}"
            else:
                assert module.split(".")[0] in ENGINE_ALLOWED, f"{path.name} imports {module}"

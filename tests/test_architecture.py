"""Dependencies point down only (see STYLE.md): each layer imports what it may, nothing else."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import fdebench

PACKAGE = Path(fdebench.__file__).parent
STDLIB = set(sys.stdlib_module_names)

#: layer -> (third-party modules it may import, fdebench layers it may import)
RULES = {
    "engine": ({"torch", "numpy"}, set()),
    "measure": ({"torch", "psutil", "pynvml"}, set()),
    "tasks": ({"torch", "numpy", "torchvision", "sklearn", "torch_geometric", "torchdiffeq"},
              {"engine"}),
    "results": ({"pandas", "numpy"}, set()),
    "report": ({"pandas", "numpy", "matplotlib", "tabulate"}, {"results"}),
    "compare": ({"pandas", "numpy", "tabulate"}, {"results"}),
    "runner": ({"torch", "yaml", "tqdm", "ray"}, {"engine", "tasks", "measure", "results"}),
}


def _imports(path: Path):
    """Absolute names of everything ``path`` imports (relative imports resolved)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = parts[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                yield ".".join([*base, node.module] if node.module else base)
            else:
                yield node.module


@pytest.mark.parametrize("layer", sorted(RULES))
def test_layer_imports(layer):
    third_party, layers = RULES[layer]
    files = sorted((PACKAGE / layer).rglob("*.py"))
    assert files
    for path in files:
        for name in _imports(path):
            top, *rest = name.split(".")
            if top == "fdebench":
                target = rest[0] if rest else ""
                # errors: a leaf module of exception classes that every layer may raise
                assert target in layers | {layer, "", "errors"}, f"{path.name} imports {name}"
            else:
                assert top in STDLIB | third_party, f"{path.name} imports {name}"


def test_results_report_and_compare_load_without_torch():
    code = ("import sys, fdebench.results, fdebench.report, fdebench.compare; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)

"""What a gradient mode sees of a solve: the schemes satisfy ``SolveView`` (and, with a step
interface, ``Steps``); ``SolveView.solver`` builds an auxiliary solve of the same method on a
grid of its own; the modes depend on these protocols, not on the schemes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import fdebench.engine as engine
from fdebench.engine import METHODS
from fdebench.engine.adjoints.base import reversed_grid
from fdebench.engine.grid import make_grid
from fdebench.engine.mode import GradientMode, Solver, SolveView, Steps
from fdebench.engine.schemes import Field

ENGINE = Path(engine.__file__).parent
GRID = make_grid(torch.linspace(0.0, 1.0, 9, dtype=torch.float64), None)
SCHEMES = sorted({(name, cls) for name, m in METHODS.items()
                  for cls in (m.fractional, m.classical, m.compressed) if cls is not None},
                 key=lambda pair: (pair[0], pair[1].__name__))


def _scheme(cls, y0=None):
    y0 = torch.ones(3, dtype=torch.float64) if y0 is None else y0
    return cls(Field(lambda t, y: -y, y0), y0, GRID, 0.5, GradientMode([]))


@pytest.mark.parametrize(("method", "cls"), SCHEMES,
                         ids=[f"{m}-{cls.__name__}" for m, cls in SCHEMES])
def test_every_scheme_is_a_solve_view_and_builds_a_solver(method, cls):
    scheme = _scheme(cls)
    assert isinstance(scheme, SolveView)
    assert isinstance(scheme, Steps) == hasattr(cls, "advance")
    y0 = torch.zeros(3, dtype=torch.float64)
    aux = scheme.solver(lambda t, y: y + 1, y0, reversed_grid(GRID), GradientMode([]),
                        host_times=True)
    assert isinstance(aux, Solver) and type(aux) is cls
    assert (aux.alpha, aux.history) == (scheme.alpha, scheme.history)
    assert aux.times.dtype == torch.float64 and aux.times.device.type == "cpu"
    assert torch.equal(aux.times, reversed_grid(GRID).times(torch.float64, torch.device("cpu")))
    assert aux.solve().shape == (1, 3)


def test_the_solver_keeps_the_method_options():
    scheme = METHODS["euler"].compressed(
        Field(lambda t, y: -y, torch.ones(2)), torch.ones(2), GRID, 0.5, GradientMode([]),
        tol=1e-6)
    aux = scheme.solver(lambda t, y: -y, torch.ones(2), GRID, GradientMode([]))
    assert aux.tol == 1e-6
    assert aux.times.dtype == torch.float32  # the state's, without host_times


def _imports(path: Path) -> set[str]:
    """The engine modules ``path`` imports, TYPE_CHECKING imports included (relative,
    e.g. ``..schemes.base`` from ``adjoints/``, resolved to ``schemes.base``)."""
    parts = path.relative_to(ENGINE).with_suffix("").parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(parts[: len(parts) - node.level + 1])
            found.add(".".join([*base, *(node.module or "").split(".")]).strip("."))
    return found


@pytest.mark.parametrize("module", ["mode.py", "gradients.py", "adjoints/base.py",
                                    "adjoints/backsolve.py", "adjoints/continuous.py",
                                    "adjoints/paper.py"])
def test_the_modes_depend_on_the_view_not_on_the_schemes(module):
    imported = _imports(ENGINE / module)
    assert not [name for name in imported if name.startswith("schemes")], imported

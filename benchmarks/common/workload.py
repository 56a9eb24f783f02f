"""One benchmark workload: a forward solve plus the backward pass of ``ys[-1].square().mean()``.

``outputs="all"`` asks for every grid time (``t = linspace(0, 1, N + 1)``, as the benchmarks do),
so the returned ``ys`` and its cotangent are each ``(N + 1) x |y|``.  ``outputs="final"`` asks for
``t = [0, 1]`` on the same grid of ``N`` steps, which isolates the solver's own memory.

The field is wrapped in a counter, so each pass also records its field evaluations in the
forward solve and in the backward pass (:attr:`Workload.nfe`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field

import torch
from torch import nn

from fdebench.engine import fdeint, textbook_fdeint
from fdebench.measure import now

from .fields import make_field

__all__ = ["OUTPUTS", "SOLVERS", "T_END", "Workload", "make_workload"]

T_END = 1.0
OUTPUTS = ("all", "final")
SOLVERS = ("fdebench", "torchdiffeq", "textbook")


class _Counted(nn.Module):
    """``field`` with a count of its evaluations."""

    def __init__(self, field: nn.Module) -> None:
        super().__init__()
        self.field = field
        self.calls = 0

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.field(t, y)


@dataclass
class Workload:
    """A ready-to-run forward+backward pass; :meth:`run` is what a benchmark round times."""

    field: nn.Module
    y0: torch.Tensor
    solve: Callable[[], torch.Tensor]
    #: field evaluations of the last pass: ``{"nfe_forward": ..., "nfe_backward": ...}``
    nfe: dict[str, int] = dataclass_field(default_factory=dict)

    @property
    def state_bytes(self) -> int:
        """``|y|``: the bytes of one state."""
        return self.y0.numel() * self.y0.element_size()

    def run(self) -> None:
        """One forward+backward pass (gradients accumulate into the parameters' ``.grad``)."""
        counter = self.field
        start = counter.calls
        ys = self.solve()
        middle = counter.calls
        ys[-1].square().mean().backward()
        now(self.y0.device)  # the queued work finished (fdebench.measure's timing recipe)
        self.nfe = {"nfe_forward": middle - start, "nfe_backward": counter.calls - middle}

    def zero_grad(self) -> None:
        """Zero the parameter gradients in place (keeps their memory allocated)."""
        for p in self.field.parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            else:
                p.grad.zero_()

    def gradient(self) -> torch.Tensor:
        """The parameter gradient of one fresh pass, flattened."""
        for p in self.field.parameters():
            p.grad = None
        self.run()
        return torch.cat([p.grad.reshape(-1) for p in self.field.parameters()])


def make_workload(
    field: str,
    method: str,
    gradient: str,
    steps: int,
    alpha: float,
    device: str | torch.device,
    *,
    solver: str = "fdebench",
    outputs: str = "all",
    dtype: torch.dtype = torch.float32,
    history: str = "auto",
) -> Workload:
    """Build the field ``field`` on ``device`` and a closure running one forward+backward pass.

    ``solver="torchdiffeq"`` integrates the same field with ``torchdiffeq.odeint`` (``alpha``
    must be 1, ``gradient`` must be ``"direct"``; ``method`` is passed through);
    ``solver="textbook"`` with :func:`fdebench.engine.textbook_fdeint` (the research-code
    direct implementation; ``gradient`` must be ``"direct"``).  ``dtype``
    casts the field and the initial state (float64 for gradient comparisons).  ``history`` is
    passed to ``fdeint`` (``"auto"``, ``"fast"`` or ``"stepwise"``).
    """
    if outputs not in OUTPUTS:
        raise ValueError(f"outputs must be one of {OUTPUTS}, got {outputs!r}")
    device = torch.device(device)
    module, y0 = make_field(field, device)
    module, y0 = _Counted(module.to(dtype)), y0.to(dtype)
    grid = torch.linspace(0.0, T_END, steps + 1, device=device, dtype=dtype)
    t = grid if outputs == "all" else grid[[0, -1]]
    step_size = None if outputs == "all" else T_END / steps

    if solver == "fdebench":

        def solve() -> torch.Tensor:
            return fdeint(
                module, y0, t, alpha=alpha, method=method, step_size=step_size, gradient=gradient,
                history=history,
            )

    elif solver == "torchdiffeq":
        if alpha != 1 or gradient != "direct":
            raise ValueError("torchdiffeq solves alpha == 1 with direct gradients only")
        from torchdiffeq import odeint

        options = None if outputs == "all" else {"grid_constructor": lambda f, y, tt: grid}

        def solve() -> torch.Tensor:
            return odeint(module, y0, t, method=method, options=options)

    elif solver == "textbook":
        if gradient != "direct":
            raise ValueError("the textbook solver has direct gradients only")

        def solve() -> torch.Tensor:
            return textbook_fdeint(module, y0, t, alpha=alpha, method=method,
                                   step_size=step_size)

    else:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")

    return Workload(module, y0, solve)

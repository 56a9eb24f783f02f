"""What the approximate adjoints share: the mode flags, the stored trajectory, the reversed grid."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..grid import Grid
from ..mode import GradientMode

if TYPE_CHECKING:
    from ..mode import SolveView

__all__ = ["OwnBackwardMode", "TrajectoryMode", "output_positions", "reversed_grid"]


class OwnBackwardMode(GradientMode):
    """A mode that runs its own backward pass; not the exact derivative of the scheme."""

    exact = False
    owns_backward = True
    needs_inputs = False  # the scheme keeps no per-step inputs for this mode

    @classmethod
    def check_order(cls) -> str | None:
        return ("gives no derivative with respect to alpha (an approximate adjoint of the "
                "continuous problem)")

    @classmethod
    def check_history(cls, history: str) -> str | None:
        if history == "soe":
            return ("approximates the continuous adjoint from the stored trajectory, "
                    "(N + 1) |y|, which the compressed history exists to avoid")
        return None


class TrajectoryMode(OwnBackwardMode):
    """Keeps the whole forward trajectory ``y_0 .. y_N``: one ``(N + 1) x |y|`` buffer."""

    def start(self, view: SolveView) -> None:
        self.states = view.buffer()

    def keep(self, j: int, y: torch.Tensor) -> None:
        self.states[j] = y


def reversed_grid(grid: Grid) -> Grid:
    """The grid ``tau_k = k h``, ``k = 0..N``, of reversed time ``tau = t_N - t`` (output: the
    last value, ``tau = t_N - t_0``)."""
    n = grid.n_steps
    return Grid(t0=0.0, h=grid.h, n_steps=n, out_index=(n,), out_weight=(0.0,),
                out_times=(n * grid.h,))


def output_positions(grid: Grid) -> torch.Tensor:
    """Where the output times lie on the grid, in steps: ``(T_i - t_0) / h`` (float64, exact
    integers for the times on the grid)."""
    return torch.tensor([j + w for j, w in zip(grid.out_index, grid.out_weight, strict=True)],
                        dtype=torch.float64)

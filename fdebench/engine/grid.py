"""The uniform time grid of a solve and where the requested output times sit on it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Grid", "make_grid"]


@dataclass(frozen=True)
class Grid:
    """Uniform grid ``t_j = t0 + j h``, ``j = 0..n_steps``, and the requested output times.

    Output ``k`` is ``(1 - w_k) y_{j_k} + w_k y_{j_k + 1}`` with ``j_k = out_index[k]`` and
    ``w_k = out_weight[k]`` in ``[0, 1)``: the linear interpolation of the two grid values
    around ``out_times[k]`` (``w_k = 0`` when the time lies on the grid).
    """

    t0: float
    h: float
    n_steps: int
    out_index: tuple[int, ...]
    out_weight: tuple[float, ...]
    out_times: tuple[float, ...]

    def times(self, dtype: torch.dtype, device: torch.device, offset: float = 0.0) -> torch.Tensor:
        """The grid times (plus ``offset``) as a tensor; computed in float64, then cast."""
        j = torch.arange(self.n_steps + 1, dtype=torch.float64)
        return (self.t0 + offset + self.h * j).to(dtype=dtype, device=device)

    def stencils(self) -> dict[int, list[tuple[int, float]]]:
        """Grid index ``j`` -> the ``(output row, weight)`` pairs that grid value enters."""
        out: dict[int, list[tuple[int, float]]] = {}
        for k, (j, w) in enumerate(zip(self.out_index, self.out_weight, strict=True)):
            out.setdefault(j, []).append((k, 1.0 - w))
            if w:
                out.setdefault(j + 1, []).append((k, w))
        return out


def make_grid(t: torch.Tensor, step_size: float | None) -> Grid:
    """Validate the output times ``t`` and build the internal uniform grid.

    Without ``step_size`` the spacing of ``t`` is the step and must be uniform.  With it, the
    grid ``t[0] + j * step_size`` runs to the first grid time at or after ``t[-1]``, and an
    output time between two grid times is the linear interpolation of their values (as
    torchdiffeq's fixed-grid solvers do).  A time within 1e-5 steps plus float32 rounding of the
    largest time counts as on the grid, so times computed in float32 and cast to float64 are
    not interpolated.
    """
    if not isinstance(t, torch.Tensor) or t.ndim != 1 or t.numel() < 1:
        raise ValueError(f"t must be a 1-D tensor of output times, got {_describe(t)}")
    if not (t.is_floating_point() and torch.isfinite(t).all()):
        raise ValueError("t must hold finite floating-point times")
    times = t.detach().to("cpu", torch.float64)
    if times.numel() > 1 and not bool((times[1:] > times[:-1]).all()):
        raise ValueError(f"t must be strictly increasing, got {t.tolist()}")
    t0, span = float(times[0]), float(times[-1] - times[0])
    if step_size is None:
        if times.numel() < 2:
            raise ValueError("t has a single time: give at least two times or a step_size")
        h = span / (times.numel() - 1)
    else:
        h = float(step_size)
        if not (h > 0 and math.isfinite(h)):
            raise ValueError(f"step_size must be a positive number, got {step_size}")
    steps = ((times - t0) / h).tolist()
    tol = 1e-5 + 8 * torch.finfo(torch.float32).eps * max(abs(t0), abs(float(times[-1]))) / h
    index, weight = [], []
    for s in steps:
        j = round(s)
        if abs(s - j) > tol:
            if step_size is None:
                raise ValueError(
                    f"t is not uniformly spaced (time {t0 + s * h:g} is off the grid of step "
                    f"{h:g}); pass step_size= to solve on a uniform grid (times between grid "
                    "points are then interpolated linearly)"
                )
            j = math.floor(s)
        index.append(j)
        weight.append(s - j if abs(s - j) > tol else 0.0)
    n_steps = index[-1] + (1 if weight[-1] else 0)
    return Grid(t0=t0, h=h, n_steps=n_steps, out_index=tuple(index), out_weight=tuple(weight),
                out_times=tuple(times.tolist()))


def _describe(t: object) -> str:
    if isinstance(t, torch.Tensor):
        return f"a tensor of shape {tuple(t.shape)}"
    return type(t).__name__

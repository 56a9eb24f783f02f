"""The uniform time grid of a solve and where the requested output times sit on it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Grid", "make_grid"]


@dataclass(frozen=True)
class Grid:
    """Uniform grid ``t_j = t0 + j h``, ``j = 0..n_steps``; ``out_index[k]`` is the grid index
    of the k-th requested output time."""

    t0: float
    h: float
    n_steps: int
    out_index: tuple[int, ...]

    def times(self, dtype: torch.dtype, device: torch.device, offset: float = 0.0) -> torch.Tensor:
        """The grid times (plus ``offset``) as a tensor; computed in float64, then cast."""
        j = torch.arange(self.n_steps + 1, dtype=torch.float64)
        return (self.t0 + offset + self.h * j).to(dtype=dtype, device=device)


def make_grid(t: torch.Tensor, step_size: float | None) -> Grid:
    """Validate the output times ``t`` and build the internal uniform grid.

    Without ``step_size`` the spacing of ``t`` is the step and must be uniform.  Every output
    time must lie on the grid, within 1e-5 steps plus float32 rounding of the largest time (times
    computed in float32 and cast to float64 still count as on the grid); otherwise a
    ``ValueError`` names the first offending time.
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
        if not h > 0:
            raise ValueError(f"step_size must be positive, got {step_size}")
    steps = (times - t0) / h
    index = torch.round(steps)
    tol = 1e-5 + 8 * torch.finfo(torch.float32).eps * max(abs(t0), abs(float(times[-1]))) / h
    off = (steps - index).abs() > tol
    if bool(off.any()):
        bad = float(times[off.nonzero()[0, 0]])
        if step_size is None:
            raise ValueError(
                f"t is not uniformly spaced (time {bad:g} is off the grid of step {h:g}); "
                "pass step_size= to solve on a uniform grid with these times on it"
            )
        raise ValueError(f"output time {bad:g} is not on the grid t0 + j * {h:g} (t0 = {t0:g})")
    out = tuple(int(i) for i in index.tolist())
    return Grid(t0=t0, h=h, n_steps=out[-1], out_index=out)


def _describe(t: object) -> str:
    if isinstance(t, torch.Tensor):
        return f"a tensor of shape {tuple(t.shape)}"
    return type(t).__name__

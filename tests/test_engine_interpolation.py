"""Output times off the step grid: linear interpolation of the two neighbouring grid values,
exact gradients in every mode."""

from __future__ import annotations

import pytest
import torch
from conftest import TimeMLP

from fdebench.engine import fdeint

CASES = [("euler", 0.5), ("abm", 0.7), ("l1", 0.4), ("gl", 0.9), ("euler", 1.0), ("rk4", 1.0)]
IDS = [f"{m}-alpha{a}" for m, a in CASES]
H = 0.1
#: output times: on the grid (0, 0.3), between grid points, and a last one past a grid point
T_OFF = torch.tensor([0.0, 0.13, 0.3, 0.47, 0.71], dtype=torch.float64)


def _solve(method, alpha, t, gradient="direct", y0=None, field=None):
    field = field or TimeMLP()
    if y0 is None:
        y0 = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    return fdeint(field, y0, t, alpha=alpha, method=method, step_size=H, gradient=gradient)


@pytest.mark.parametrize(("method", "alpha"), CASES, ids=IDS)
def test_off_grid_values_interpolate_the_grid_solution(method, alpha):
    grid_t = torch.arange(0, 9, dtype=torch.float64) * H  # 0 .. 0.8 covers every output time
    on_grid = _solve(method, alpha, grid_t)
    off = _solve(method, alpha, T_OFF)
    for k, time in enumerate(T_OFF.tolist()):
        j = int(time / H + 1e-9)
        w = time / H - j
        expected = on_grid[j] if w < 1e-9 else (1 - w) * on_grid[j] + w * on_grid[j + 1]
        torch.testing.assert_close(off[k], expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("gradient", ["adjoint", "checkpoint"])
@pytest.mark.parametrize(("method", "alpha"), CASES, ids=IDS)
def test_off_grid_gradients_are_exact_in_every_mode(method, alpha, gradient):
    def grads(mode):
        field = TimeMLP()
        y0 = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        y0.requires_grad_(True)
        ys = _solve(method, alpha, T_OFF, mode, y0, field)
        weights = torch.linspace(-1, 1, ys.numel(), dtype=ys.dtype).view_as(ys)
        loss = (weights * ys).sum() + ys.square().sum()
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, [y0,
                                                                           *field.parameters()])])

    direct, other = grads("direct"), grads(gradient)
    assert ((other - direct).norm() / direct.norm()).item() < 1e-12


def test_off_grid_gradient_matches_finite_differences():
    """d y(0.47) / d y0 for D^a y = -y against a central difference of the interpolated value."""
    def value(y0):
        return fdeint(lambda t, y: -y, y0, T_OFF, alpha=0.6, step_size=H)[3].sum()

    y0 = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(value(y0), y0)
    eps = 1e-6
    fd = (value(y0.detach() + eps) - value(y0.detach() - eps)) / (2 * eps)
    assert abs(grad.item() - fd.item()) < 1e-8


def test_the_grid_ends_at_the_first_grid_time_past_the_last_output():
    calls = []

    def field(t, y):
        calls.append(float(t))
        return -y

    fdeint(field, torch.ones(1, dtype=torch.float64), torch.tensor([0.0, 0.25]), alpha=0.5,
           step_size=0.1)
    # grid 0, 0.1, 0.2, 0.3: the fractional Euler scheme evaluates f at t_0 .. t_2
    assert calls == pytest.approx([0.0, 0.1, 0.2])

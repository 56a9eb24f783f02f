"""The engines behind FDEBlock (fdebench, torchdiffeq): what each refuses, what each counts."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import TimeMLP

from fdebench.tasks import ENGINES, FDEBlock, incompatible

pytestmark = pytest.mark.usefixtures("one_thread")


def block(field, engine: str, method: str, gradient: str, *, step: float = 0.05,
          t: torch.Tensor | None = None, **kw) -> FDEBlock:
    t = torch.linspace(0, 1, 5, dtype=torch.float64) if t is None else t
    return FDEBlock(field, t, alpha=1.0, method=method, step_size=step, gradient=gradient,
                    engine=engine, **kw)


def solve_and_grad(b: FDEBlock, y0: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    ys = b(y0)
    grads = torch.autograd.grad(ys.square().sum(), list(b.field.parameters()))
    return ys.detach(), list(grads)


@pytest.mark.parametrize("gradient", ["direct", "backsolve"])
def test_torchdiffeq_euler_is_fdebench_euler(gradient):
    """At alpha = 1 both engines' forward Euler is the same scheme, and the backsolve adjoint
    (Chen et al. 2018) is the same algorithm: outputs and gradients agree to rounding."""
    y0 = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours = solve_and_grad(block(TimeMLP(), "fdebench", "euler", gradient), y0)
    theirs = solve_and_grad(block(TimeMLP(), "torchdiffeq", "euler", gradient), y0)
    assert torch.allclose(ours[0], theirs[0], rtol=0, atol=1e-13)
    for a, b in zip(ours[1], theirs[1], strict=True):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-13)


class Growth(torch.nn.Module):
    """``dy/dt = theta y``: ``y(T) = y0 exp(theta T)``, ``dy(T)/dtheta = T y(T)``."""

    def __init__(self, theta: float) -> None:
        super().__init__()
        self.theta = torch.nn.Parameter(torch.tensor(theta, dtype=torch.float64))

    def forward(self, t, y):
        return self.theta * y


@pytest.mark.parametrize("gradient", ["direct", "backsolve"])
@pytest.mark.parametrize("method", ["dopri5", "bosh3", "rk4"])
def test_torchdiffeq_gradients_against_the_exact_one(method, gradient):
    """Adaptive methods at rtol 1e-9 and rk4 at h = 0.01: the theta-gradient of y(1) within
    1e-6 of the closed form ``T y0 exp(theta T)``."""
    theta, y0 = -0.7, torch.tensor([1.3], dtype=torch.float64)
    b = block(Growth(theta), "torchdiffeq", method, gradient, step=0.01,
              t=torch.tensor([0.0, 1.0], dtype=torch.float64), rtol=1e-9, atol=1e-12)
    (g,) = torch.autograd.grad(b(y0)[-1].sum(), [b.field.theta])
    exact = 1.3 * math.exp(theta)
    assert abs(g.item() - exact) / exact < 1e-6


def test_nfe_is_counted_in_both_passes():
    """Fixed grid: rk4 takes 4 evaluations per step; an adaptive backsolve evaluates the field in
    its backward pass (counted), a direct adaptive solve does not (autograd replays the graph)."""
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    y0 = torch.randn(2, 3, dtype=torch.float64)
    rk4 = block(TimeMLP(), "torchdiffeq", "rk4", "direct", step=0.05, t=t)
    solve_and_grad(rk4, y0)
    assert rk4.nfe == 4 * 20
    counts = {}
    for gradient in ("direct", "backsolve"):
        b = block(TimeMLP(), "torchdiffeq", "dopri5", gradient, t=t)
        b(y0)
        forward = b.nfe
        solve_and_grad(b, y0)  # a second solve plus its backward pass
        counts[gradient] = (forward, b.nfe - 2 * forward)
    assert counts["direct"][0] > 6 and counts["direct"][1] == 0
    assert counts["backsolve"][1] > counts["backsolve"][0]


@pytest.mark.parametrize(
    ("engine", "method", "gradient", "alpha", "keys", "reason"),
    [
        ("torchdiffeq", "abm", "direct", 1.0, ("method", "engine"),
         "method 'abm' is not a method of engine 'torchdiffeq'; its methods: adaptive_heun"),
        ("fdebench", "dopri5", "direct", 1.0, ("method", "engine"),
         "method 'dopri5' is not a method of engine 'fdebench'; its methods: abm, euler, gl, l1, "
         "rk4"),
        ("torchdiffeq", "euler", "direct", 0.5, ("engine", "alpha"),
         "engine 'torchdiffeq' solves classical ODEs only (alpha == 1), got alpha=0.5"),
        ("torchdiffeq", "rk4", "adjoint", 1.0, ("gradient", "engine"),
         "engine 'torchdiffeq' has no gradient 'adjoint'; its gradients: backsolve, direct"),
        ("torchdiffeq", "dopri5", "paper", 1.0, ("gradient", "engine"), "its gradients"),
        ("fdebench", "rk4", "direct", 0.5, ("method", "alpha"),
         "method 'rk4' solves classical ODEs only (alpha == 1), got alpha=0.5; for alpha < 1 "
         "use one of: abm, euler, gl, l1"),
        ("fdebench", "euler", "backsolve", 0.5, ("gradient", "method", "alpha"),
         "use one of: adjoint, checkpoint, continuous, direct, paper"),
    ],
    ids=["tde-abm", "fde-dopri5", "tde-alpha", "tde-adjoint", "tde-paper", "rk4-alpha",
         "backsolve-alpha"],
)
def test_what_each_engine_refuses(engine, method, gradient, alpha, keys, reason):
    problem = incompatible({"engine": engine, "method": method, "gradient": gradient,
                            "alpha": alpha})
    assert problem is not None and problem.keys == keys
    assert reason in problem.reason


@pytest.mark.parametrize(
    ("engine", "method", "gradient", "alpha"),
    [("torchdiffeq", "dopri5", "backsolve", 1.0), ("torchdiffeq", "euler", "direct", 1.0),
     ("fdebench", "euler", "backsolve", 1.0), ("fdebench", "abm", "paper", 0.3),
     ("fdebench", "rk4", "continuous", 1.0)],
)
def test_what_each_engine_runs(engine, method, gradient, alpha):
    assert incompatible({"engine": engine, "method": method, "gradient": gradient,
                         "alpha": alpha}) is None


def test_reference_methods():
    assert ENGINES["fdebench"].reference_method("abm") == "abm"
    assert ENGINES["torchdiffeq"].reference_method("euler") == "euler"
    assert {ENGINES["torchdiffeq"].reference_method(m) for m in ("rk4", "dopri5", "midpoint")} \
        == {"rk4"}

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
    torch.manual_seed(0)  # unseeded, the adaptive step counts tied (38 and 38) about once in 20
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


REFUSED = [
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
    ("fdebench", "euler", "revolve", 0.5, ("gradient", "history", "alpha"),
     "gradient 'revolve' needs history 'soe'"),
]
#: the same with a history: (engine, method, gradient, alpha, history, keys, reason)
REFUSED_HISTORIES = [
    ("fdebench", "abm", "adjoint", 0.5, "soe", ("gradient", "history", "alpha"),
     "with history 'soe' for method 'abm' at alpha=0.5 use one of: checkpoint, direct, revolve"),
    ("fdebench", "l1", "paper", 0.5, "soe", ("gradient", "history", "alpha"),
     "use one of: checkpoint, direct, revolve"),
    ("fdebench", "gl", "direct", 0.5, "soe", ("history", "method", "alpha"),
     "with history 'soe' use one of: abm, euler, l1"),
    ("torchdiffeq", "euler", "direct", 1.0, "fast", ("history", "engine"),
     "engine 'torchdiffeq' has no history 'fast'; its histories: auto (for 'fast' use engine "
     "'fdebench')"),
    ("textbook", "euler", "direct", 0.5, "soe", ("history", "engine"),
     "engine 'textbook' has no history 'soe'"),
]


@pytest.mark.parametrize(
    ("engine", "method", "gradient", "alpha", "history", "keys", "reason"),
    [(e, m, g, a, "auto", k, r) for e, m, g, a, k, r in REFUSED] + REFUSED_HISTORIES,
    ids=["tde-abm", "fde-dopri5", "tde-alpha", "tde-adjoint", "tde-paper", "rk4-alpha",
         "backsolve-alpha", "revolve-auto", "adjoint-soe", "paper-soe", "gl-soe",
         "tde-history", "textbook-history"],
)
def test_what_each_engine_refuses(engine, method, gradient, alpha, history, keys, reason):
    problem = incompatible({"engine": engine, "method": method, "gradient": gradient,
                            "alpha": alpha, "history": history})
    assert problem is not None and problem.keys == keys
    assert reason in problem.reason


@pytest.mark.parametrize(
    ("engine", "method", "gradient", "alpha", "history"),
    [("torchdiffeq", "dopri5", "backsolve", 1.0, "auto"),
     ("torchdiffeq", "euler", "direct", 1.0, "auto"),
     ("fdebench", "euler", "backsolve", 1.0, "auto"), ("fdebench", "abm", "paper", 0.3, "auto"),
     ("fdebench", "rk4", "continuous", 1.0, "auto"), ("fdebench", "euler", "revolve", 0.5, "soe"),
     ("fdebench", "l1", "checkpoint", 0.5, "soe"), ("fdebench", "abm", "direct", 0.7, "soe"),
     ("fdebench", "gl", "revolve", 1.0, "auto"),  # alpha = 1: no history, revolve runs
     ("fdebench", "gl", "adjoint", 1.0, "soe"), ("fdebench", "euler", "adjoint", 0.5, "stepwise")],
)
def test_what_each_engine_runs(engine, method, gradient, alpha, history):
    assert incompatible({"engine": engine, "method": method, "gradient": gradient,
                         "alpha": alpha, "history": history}) is None


def test_a_learnt_order_refuses_history_soe():
    problem = incompatible({"engine": "fdebench", "method": "euler", "gradient": "direct",
                            "alpha": 0.5, "learn_alpha": True, "history": "soe"})
    assert problem.keys == ("history", "learn_alpha") and "fitted per order" in problem.reason


def test_the_block_passes_history_and_soe_tol_and_counts_the_state():
    """``FDEBlock(history="soe", soe_tol=...)`` is ``fdeint`` with the same options (revolve is
    the compressed scheme's exact adjoint: equal to direct through it), and the block records
    the bytes of the state it solved."""
    from fdebench.engine import fdeint

    torch.manual_seed(0)
    y0 = torch.randn(4, 3, dtype=torch.float64)
    t = torch.tensor([0.0, 1.0], dtype=torch.float64)
    field = TimeMLP()
    got = {}
    for gradient in ("direct", "revolve"):
        b = FDEBlock(field, t, alpha=0.5, method="euler", step_size=0.05, gradient=gradient,
                     history="soe", soe_tol=1e-6)
        got[gradient] = solve_and_grad(b, y0)
        assert b.state_bytes == 4 * 3 * 8
    ys = fdeint(field, y0, t, alpha=0.5, step_size=0.05, history="soe", soe_tol=1e-6)
    exact = fdeint(field, y0, t, alpha=0.5, step_size=0.05)
    assert torch.equal(got["revolve"][0], ys.detach()) and torch.equal(got["direct"][0], ys)
    assert 0 < (ys - exact).abs().max() < 1e-6 * exact.abs().max()  # an approximation
    for a, b in zip(got["revolve"][1], got["direct"][1], strict=True):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-14)


def test_reference_methods():
    assert ENGINES["fdebench"].reference_method("abm") == "abm"
    assert ENGINES["torchdiffeq"].reference_method("euler") == "euler"
    assert {ENGINES["torchdiffeq"].reference_method(m) for m in ("rk4", "dopri5", "midpoint")} \
        == {"rk4"}

"""The compressed history (``history="soe"``) and its exact adjoint with checkpoints (``revolve``).

* the sum of exponentials itself: relative error at most ``tol`` on ``[h, T]``, positive
  weights and rates, and few modes;
* the compressed schemes against an independent textbook form (``tests/reference.py``: the
  exact scheme's lag sums with the SOE's step integrals, ``O(N^2)``, autograd everywhere):
  solutions and the gradients of ``direct``, ``checkpoint`` and ``revolve`` to 1e-12;
* their distance to the exact (uncompressed) scheme: within ``soe_tol`` relative to the
  solution, and within the a-priori bound of a perturbed Volterra sum (euler);
* finite differences, the gradient's convergence to the exact scheme's as ``soe_tol`` falls,
  float32, the memory below the trajectory floor, and the refusals.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import TimeMLP
from reference import reference_soe_solve

from fdebench.engine import fdeint, mittag_leffler
from fdebench.engine.soe import sum_of_exponentials
from fdebench.engine.weights import product_rectangle_weights
from fdebench.measure import AllocatorPeak

METHODS = ["euler", "abm", "l1"]
EXACT_MODES = ["direct", "checkpoint", "revolve"]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


# ---- the sum of exponentials ------------------------------------------------------------------
@pytest.mark.parametrize("tol", [1e-4, 1e-8, 1e-12])
@pytest.mark.parametrize("span", [10, 1000, 10_000])
@pytest.mark.parametrize("order", [0.1, 0.3, 0.5, 0.9])
def test_soe_relative_error_on_h_to_t(order, span, tol):
    """On 20,000 log-spaced points of ``[h, T]`` (not the 800 it was checked on)."""
    h = 0.37 / span
    soe = sum_of_exponentials(order, h, span * h, tol)
    assert (soe.weights > 0).all() and (soe.rates > 0).all()
    t = torch.logspace(math.log10(h), math.log10(span * h), 20_000, dtype=torch.float64)
    exact = t.pow(order - 1) / math.gamma(order)
    assert ((soe(t) / exact - 1).abs().max().item()) <= tol
    # the trapezoidal nodes per e-fold of lambda, (log(1/tol) + 3) / pi^2, over the e-folds
    # from ~1/T to ~30/h, plus the slow part's Gauss rule: ~ 30 modes at 1e-8 and 10^4 steps
    assert len(soe) <= (math.log(span) + 2) * (math.log(1 / tol) + 3) / math.pi**2 + 12


def test_soe_is_built_once_per_order_span_and_tolerance():
    a = sum_of_exponentials(0.5, 0.01, 1.0, 1e-8)
    b = sum_of_exponentials(0.5, 0.02, 2.0, 1e-8)  # the same span T / h: the same modes, scaled
    assert torch.equal(a.rates, 2 * b.rates)
    assert len(sum_of_exponentials(0.5, 0.01, 1.0, 1e-6)) < len(a)


# ---- the compressed schemes: exact adjoints of their own arithmetic ---------------------------
def _grads(method, alpha, gradient, tol, solver=None, checkpoints=None, n=20, h=0.1):
    field = TimeMLP()
    y0 = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y0.requires_grad_(True)
    if solver is None:
        t = torch.linspace(0, n * h, n + 1, dtype=torch.float64)
        ys = fdeint(field, y0, t, alpha=alpha, method=method, gradient=gradient,
                    history="soe", soe_tol=tol, revolve_checkpoints=checkpoints)
    else:
        ys = solver(field, y0, alpha, h, n, method, tol)
    weights = torch.linspace(-1, 1, ys.numel(), dtype=ys.dtype).view_as(ys)
    loss = (weights * ys).sum() + 0.5 * ys.square().sum()
    grads = torch.autograd.grad(loss, [y0, *field.parameters()])
    return ys.detach(), torch.cat([g.reshape(-1) for g in grads])


@pytest.mark.parametrize("gradient", EXACT_MODES)
@pytest.mark.parametrize("tol", [1e-4, 1e-10])
@pytest.mark.parametrize("alpha", [0.3, 0.7])
@pytest.mark.parametrize("method", METHODS)
def test_compressed_scheme_matches_the_textbook_form(method, alpha, tol, gradient):
    """Solution and gradient equal autograd through the lag sums of the SOE scheme."""
    ys_ref, grad_ref = _grads(method, alpha, None, tol, solver=reference_soe_solve)
    ys, grad = _grads(method, alpha, gradient, tol)
    assert _rel(ys, ys_ref) < 1e-12
    assert _rel(grad, grad_ref) < 1e-12


@pytest.mark.parametrize("checkpoints", [0, 1, 2, 7, 40])
@pytest.mark.parametrize("method", METHODS)
def test_revolve_equals_direct_for_any_number_of_checkpoints(method, checkpoints):
    _, direct = _grads(method, 0.5, "direct", 1e-8)
    _, revolve = _grads(method, 0.5, "revolve", 1e-8, checkpoints=checkpoints)
    assert _rel(revolve, direct) < 1e-12


@pytest.mark.parametrize("method", METHODS)
def test_revolve_off_grid_output_times(method):
    """Outputs between grid points (interpolated) and a step size of its own."""
    t = torch.tensor([0.0, 0.13, 0.5, 0.77, 1.0], dtype=torch.float64)
    out = {}
    for gradient in ("direct", "revolve"):
        field = TimeMLP()
        y0 = torch.ones(2, 3, dtype=torch.float64, requires_grad=True)
        ys = fdeint(field, y0, t, alpha=0.4, method=method, gradient=gradient, history="soe",
                    step_size=0.03)
        out[gradient] = torch.cat([g.reshape(-1) for g in torch.autograd.grad(
            ys.square().sum(), [y0, *field.parameters()])])
    assert _rel(out["revolve"], out["direct"]) < 1e-12


@pytest.mark.parametrize("method", METHODS)
def test_revolve_against_finite_differences(method):
    """Central differences of the loss along a random direction of ``(y0, params)``."""
    field = TimeMLP()
    y0 = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = torch.linspace(0, 1.5, 31, dtype=torch.float64)
    leaves = [y0, *field.parameters()]
    direction = [torch.randn(x.shape, dtype=x.dtype, generator=torch.Generator().manual_seed(i))
                 for i, x in enumerate(leaves)]

    def loss():
        ys = fdeint(field, y0, t, alpha=0.45, method=method, gradient="revolve",
                    history="soe", params=list(field.parameters()))
        return ys[1:].square().sum() + ys[-1].sum()

    y0.requires_grad_(True)
    grads = torch.autograd.grad(loss(), leaves)
    analytic = sum((g * d).sum() for g, d in zip(grads, direction, strict=True)).item()
    eps, values = 1e-6, []
    with torch.no_grad():
        for sign in (1, -1):
            for x, d in zip(leaves, direction, strict=True):
                x.add_(sign * eps * d)
            values.append(loss().item())
            for x, d in zip(leaves, direction, strict=True):
                x.sub_(sign * eps * d)
    numeric = (values[0] - values[1]) / (2 * eps)
    assert abs(analytic - numeric) <= 1e-7 * abs(numeric)


# ---- distance to the exact scheme ---------------------------------------------------------------
def _forced(t, y):
    return -y + torch.cos(3 * t)


def _trajectory(method, alpha, history, tol, n=200):
    y0 = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    t = torch.linspace(0, 1, n + 1, dtype=torch.float64)
    return fdeint(_forced, y0, t, alpha=alpha, method=method, history=history, soe_tol=tol)


@pytest.mark.parametrize("tol", [1e-6, 1e-10])
@pytest.mark.parametrize("alpha", [0.1, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("method", METHODS)
def test_distance_to_the_exact_scheme(method, alpha, tol):
    """``max |y_soe - y| <= soe_tol max |y|`` (measured: 0.003 to 0.1 of it; the weights'
    errors oscillate in sign, so they partly cancel); for euler also the a-priori bound:
    every history weight ``k[L]``, ``L >= 2``, moves by at most ``tol k[L]``, so the error
    obeys ``e_m <= tol S + L_f sum_j k[m - j] e_j`` with ``S = max_m sum_j k[m - j] |f_j|``
    and the discrete fractional Gronwall inequality gives ``e <= tol S E_a(L_f T^a)``
    (``L_f = 1`` here, ``T = 1``)."""
    exact = _trajectory(method, alpha, "stepwise", tol)
    distance = (_trajectory(method, alpha, "soe", tol) - exact).abs().max().item()
    assert distance <= tol * exact.abs().max().item()
    if method == "euler":
        n = exact.shape[0] - 1
        t = torch.linspace(0, 1, n + 1, dtype=torch.float64)
        f = _forced(t[:, None], exact).abs().amax(-1)
        k = product_rectangle_weights(alpha, n, 1.0 / n)
        history = max(float(k[m - torch.arange(m - 1)] @ f[: m - 1]) for m in range(2, n + 1))
        assert distance <= tol * history * float(mittag_leffler(alpha, 1.0))


def test_gradient_approaches_the_exact_schemes_as_tol_falls():
    """Against the exact scheme's adjoint (float64, tanh field): the relative difference falls
    with ``soe_tol`` and stays below it."""
    field = TimeMLP()
    y0 = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    t = torch.linspace(0, 1, 201, dtype=torch.float64)

    def gradient(history, gradient, tol=1e-8):
        y = y0.clone().requires_grad_()
        ys = fdeint(field, y, t, alpha=0.5, gradient=gradient, history=history, soe_tol=tol)
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(
            ys.square().sum(), [y, *field.parameters()])])

    exact = gradient("stepwise", "adjoint")
    errors = [_rel(gradient("soe", "revolve", tol), exact) for tol in (1e-4, 1e-6, 1e-8)]
    assert errors[0] > errors[1] > errors[2]
    assert all(e <= tol for e, tol in zip(errors, (1e-4, 1e-6, 1e-8), strict=True))


def test_float32_error_is_the_exact_schemes():
    """In float32 revolve's gradient is as far from float64 as the exact adjoint's is (within
    2x): the modes' decay is applied as ``X - q X``, so ``d`` rounding to 1 does not compound."""
    def gradient(dtype, history, gradient):
        field = TimeMLP(dim=8, hidden=16).to(dtype)  # the same weights in both dtypes
        y0 = torch.randn(4, 8, generator=torch.Generator().manual_seed(3)).to(dtype)
        y0.requires_grad_()
        t = torch.linspace(0, 1, 801, dtype=dtype)
        ys = fdeint(field, y0, t[[0, -1]], alpha=0.5, gradient=gradient, history=history,
                    step_size=1 / 800)
        return torch.cat([g.reshape(-1).double() for g in torch.autograd.grad(
            ys[-1].square().sum(), [y0, *field.parameters()])])

    reference = gradient(torch.float64, "stepwise", "adjoint")
    adjoint = _rel(gradient(torch.float32, "stepwise", "adjoint"), reference)
    revolve = _rel(gradient(torch.float32, "soe", "revolve"), reference)
    assert revolve <= 2 * max(adjoint, 1e-7)


# ---- memory, alpha = 1, refusals -----------------------------------------------------------------
def test_revolve_stays_below_the_trajectory_floor(one_thread):
    """Allocator peak of a forward + backward pass at N = 800, |y| = 16 KiB: the trajectory
    alone is 12.5 MiB; revolve keeps c = 11 states of (K + 1) |y| (K = 26)."""
    n, field = 800, torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.Tanh())
    y0 = torch.randn(64, 64)
    floor = (n + 1) * y0.numel() * y0.element_size()
    with AllocatorPeak(torch.device("cpu")) as peak:
        ys = fdeint(lambda t, y: field(y), y0, torch.tensor([0.0, 1.0]), alpha=0.5,
                    step_size=1 / n, gradient="revolve", history="soe",
                    params=list(field.parameters()))
        ys[-1].square().sum().backward()
    assert peak.peak_bytes < 0.5 * floor


@pytest.mark.parametrize("method", METHODS)
def test_a_field_of_t_alone(method):
    """``f(t, y) = cos(t)``: no cotangent reaches ``y`` through the field."""
    y0 = torch.ones(2, dtype=torch.float64, requires_grad=True)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    ys = fdeint(lambda t, y: torch.cos(t) * torch.ones_like(y), y0, t, alpha=0.5,
                method=method, history="soe", gradient="revolve")
    (grad,) = torch.autograd.grad(ys[-1].sum(), [y0])
    assert torch.allclose(grad, torch.ones_like(grad))


def test_alpha_one_runs_the_classical_scheme():
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    y0 = torch.ones(3, dtype=torch.float64)
    a = fdeint(_forced, y0, t, alpha=1.0, history="soe")
    b = fdeint(_forced, y0, t, alpha=1.0)
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"method": "gl", "history": "soe"},
         r"history 'soe' has no compressed form of method 'gl' .*use one of: abm, euler, l1"),
        ({"gradient": "adjoint", "history": "soe"},
         r"gradient 'adjoint' .*'revolve'; with history 'soe' for method 'euler' at "
         r"alpha=0.5 use one of: checkpoint, direct, revolve$"),
        ({"gradient": "continuous", "history": "soe"},
         r"gradient 'continuous' approximates .*use one of: checkpoint, direct, revolve$"),
        ({"gradient": "revolve"}, r"gradient 'revolve' needs history 'soe'.*use one of: "
         r"adjoint, checkpoint, continuous, direct, paper$"),
        ({"gradient": "revolve", "history": "stepwise"}, r"needs history 'soe'"),
        ({"history": "soe", "soe_tol": 0.5}, r"soe_tol must be a number in \[1e-13, 0.01\]"),
        ({"history": "soe", "soe_tol": 1e-16}, r"soe_tol must be a number"),
        ({"revolve_checkpoints": 3}, r"revolve_checkpoints applies to gradient 'revolve' only"),
        ({"gradient": "revolve", "history": "soe", "revolve_checkpoints": -1},
         r"revolve_checkpoints must be None or an integer >= 0, got -1"),
    ],
    ids=["gl", "adjoint", "continuous", "revolve-auto", "revolve-stepwise", "tol-big",
         "tol-small", "checkpoints-direct", "checkpoints-negative"],
)
def test_refusals(kwargs, pattern):
    y0 = torch.ones(2, dtype=torch.float64)
    with pytest.raises(ValueError, match=pattern):
        fdeint(_forced, y0, torch.linspace(0, 1, 11, dtype=torch.float64), alpha=0.5, **kwargs)


@pytest.mark.parametrize(("gradient", "pattern"), [
    ("revolve", r"history 'soe' is not differentiable in alpha"),
    ("direct", r"history 'soe' is not differentiable in alpha"),
])
def test_a_learnable_order_is_refused(gradient, pattern):
    alpha = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match=pattern):
        fdeint(_forced, torch.ones(2, dtype=torch.float64),
               torch.linspace(0, 1, 11, dtype=torch.float64), alpha=alpha, gradient=gradient,
               history="soe")


def test_revolve_refuses_a_learnable_order_with_any_history():
    alpha = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match=r"gradient 'revolve' needs history 'soe'"):
        fdeint(_forced, torch.ones(2, dtype=torch.float64),
               torch.linspace(0, 1, 11, dtype=torch.float64), alpha=alpha, gradient="revolve")
    with pytest.raises(ValueError, match=r"gradient 'revolve' gives no derivative with respect "
                                         r"to alpha"):
        fdeint(_forced, torch.ones(2, dtype=torch.float64),
               torch.linspace(0, 1, 11, dtype=torch.float64),
               alpha=torch.tensor(1.0, dtype=torch.float64, requires_grad=True),
               gradient="revolve")

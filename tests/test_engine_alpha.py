"""A learnable order: ``dL/dalpha`` through ``fdeint(..., alpha=tensor)`` in the exact modes.

Checked against finite differences of the fixed-order solve (a float alpha: the path that has no
alpha-derivative code at all), across gradient modes and history algorithms, with ``gradcheck``,
against a closed form, and for the weights themselves; a float or non-grad tensor alpha must
give the fixed-order solve bit for bit.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import TimeMLP

from fdebench.engine import fdeint, history, weights

METHODS = ["euler", "abm", "l1", "gl"]
EXACT = ["direct", "adjoint", "checkpoint"]
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
#: the fast history at a small size: step sums, dense and block-DFT products, several blocks
#: (as in tests/test_engine_history.py)
FORCED = history.Tuning(leaf=2, block_min=4, block=3, min_columns=1, fraction=4.0)
FORCED_BOUNDED = history.Tuning(leaf=2, block_min=4, block=3, min_columns=1, fraction=0.08)
#: loss name -> (output times, step size): one output, several on the grid, several off it
LOSSES = {
    "final": ([0.0, 2.0], 0.05),
    "on-grid": ([0.0, 0.2, 0.45, 0.8, 1.2], 0.05),
    "off-grid": ([0.0, 0.23, 0.5, 0.87, 1.17], 0.05),
}


def _problem(dtype=torch.float64, device="cpu"):
    field = TimeMLP(dim=3, hidden=5, dtype=dtype).to(device)
    y0 = torch.randn(2, 3, dtype=dtype, generator=torch.Generator().manual_seed(5)).to(device)
    return field, y0


def _loss(ys: torch.Tensor) -> torch.Tensor:
    weights_ = torch.linspace(-1, 1, ys.numel(), dtype=ys.dtype, device=ys.device).view_as(ys)
    return (weights_ * ys).sum() + 0.5 * ys.square().sum()


def _solve(alpha, method, loss, gradient="direct", hist="stepwise", dtype=torch.float64,
           device="cpu", step=None):
    field, y0 = _problem(dtype, device)
    times, default_step = LOSSES[loss]
    t = torch.tensor(times, dtype=dtype, device=device)
    y0.requires_grad_()
    ys = fdeint(field, y0, t, alpha=alpha, method=method, gradient=gradient,
                step_size=step or default_step, history=hist)
    return ys, [y0, *field.parameters()]


def _loss_value(alpha: float, method: str, loss: str) -> float:
    with torch.no_grad():
        return _loss(_solve(alpha, method, loss)[0]).item()


def _grads(alpha: float, method: str, loss: str, gradient: str = "direct",
           hist: str = "stepwise", **kw) -> torch.Tensor:
    """``[dL/dalpha, dL/dy0, dL/dparams]`` (flat) with a learnable alpha."""
    dtype = kw.get("dtype", torch.float64)
    a = torch.tensor(alpha, dtype=dtype, device=kw.get("device", "cpu"), requires_grad=True)
    ys, wrt = _solve(a, method, loss, gradient, hist, **kw)
    grads = torch.autograd.grad(_loss(ys), [a, *wrt])
    return torch.cat([g.reshape(-1) for g in grads])


def _central(fn, x: float, eps: float = 1e-3) -> float:
    """Fourth-order central difference (error ~ eps^4)."""
    return (-fn(x + 2 * eps) + 8 * fn(x + eps) - 8 * fn(x - eps) + fn(x - 2 * eps)) / (12 * eps)


def _left(fn, x: float, eps: float = 1e-3) -> float:
    """Third-order one-sided difference from below (error ~ eps^3): alpha <= 1."""
    return (11 * fn(x) - 18 * fn(x - eps) + 9 * fn(x - 2 * eps) - 2 * fn(x - 3 * eps)) / (6 * eps)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


# ---- dL/dalpha against finite differences --------------------------------------------------
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("alpha", [0.35, 0.8])
@pytest.mark.parametrize("method", METHODS)
def test_alpha_gradient_matches_finite_differences(method, alpha, loss):
    fd = _central(lambda a: _loss_value(a, method, loss), alpha)
    analytic = _grads(alpha, method, loss)[0].item()
    assert abs(fd) > 1e-2  # a real dependence, not a zero that anything would match
    assert abs(analytic - fd) <= 1e-6 * abs(fd), (analytic, fd)


@pytest.mark.parametrize("method", METHODS)
def test_alpha_gradient_at_one_is_the_left_derivative(method):
    """At ``alpha == 1`` a learnable order runs the fractional scheme there (the weights' limit);
    its gradient is the one-sided derivative of the fractional family (finite differences
    from below, the value at 1 itself from the learnable solve)."""
    def value(a: float) -> float:
        if a < 1:
            return _loss_value(a, method, "off-grid")
        one = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        return _loss(_solve(one, method, "off-grid")[0]).item()

    fd = _left(value, 1.0)
    analytic = _grads(1.0, method, "off-grid")[0].item()
    assert abs(fd) > 1e-2
    assert abs(analytic - fd) <= 1e-6 * abs(fd), (analytic, fd)


@pytest.mark.parametrize("method", METHODS)
def test_learnable_alpha_one_is_the_limit_of_the_fractional_scheme(method):
    """The solution is continuous in alpha up to 1; for euler, l1, gl it is forward Euler there
    (the classical scheme a float alpha = 1 runs), for abm the fractional corrector's limit."""
    one = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    learnable = _solve(one, method, "off-grid")[0].detach()
    below = _solve(1 - 1e-7, method, "off-grid")[0].detach()
    assert _rel(learnable, below) < 1e-5
    classical = _solve(1.0, method, "off-grid")[0].detach()
    if method == "abm":  # Heun's method is another order-2 scheme: not the limit
        assert _rel(learnable, classical) > 1e-6
    else:
        assert _rel(learnable, classical) < 1e-13


@pytest.mark.parametrize("method", ["euler", "abm"])
def test_alpha_gradient_of_a_constant_field_is_exact(method):
    """Product integration is exact for ``f = c``: ``y(t) = y0 + c t^a / Gamma(a + 1)``, so
    ``dy(t)/da = c t^a / Gamma(a + 1) (log t - psi(a + 1))`` at every grid time."""
    a, c, t_end = 0.45, 1.7, 1.3
    alpha = torch.tensor(a, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.65, t_end], dtype=torch.float64)
    ys = fdeint(lambda t, y: torch.full_like(y, c), torch.zeros(1, dtype=torch.float64), t,
                alpha=alpha, method=method, step_size=0.05)
    (grad,) = torch.autograd.grad(ys[1:].sum(), alpha)
    psi = torch.special.digamma(torch.tensor(a + 1, dtype=torch.float64)).item()
    expected = sum(c * s**a / math.gamma(a + 1) * (math.log(s) - psi) for s in (0.65, t_end))
    assert abs(grad.item() - expected) <= 1e-12 * abs(expected)


# ---- every exact mode, both history algorithms ---------------------------------------------
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("method", METHODS)
def test_modes_agree_stepwise(method, loss):
    """adjoint and checkpoint give direct's gradients (alpha, y0 and parameters together)."""
    direct = _grads(0.6, method, loss, "direct")
    for gradient in ("adjoint", "checkpoint"):
        assert _rel(_grads(0.6, method, loss, gradient), direct) < 1e-9, gradient


@pytest.mark.parametrize("tuning", [FORCED, FORCED_BOUNDED], ids=["forced", "bounded"])
@pytest.mark.parametrize("method", METHODS)
def test_modes_agree_fast(monkeypatch, products, method, tuning):
    """With the fast history (block path forced at N = 48) every exact mode gives stepwise
    direct's gradients, alpha's included."""
    reference = _grads(0.6, method, "off-grid", "direct", "stepwise", step=1.17 / 48)
    monkeypatch.setattr(history, "TUNING", tuning)
    for gradient in EXACT:
        grads = _grads(0.6, method, "off-grid", gradient, "fast", step=1.17 / 48)
        assert _rel(grads, reference) < 1e-9, gradient
        assert abs(grads[0] - reference[0]) <= 1e-9 * abs(reference[0]), gradient
    assert products["dense"] > 0
    assert products["block"] > 0 or tuning is FORCED_BOUNDED


@pytest.mark.parametrize("gradient", EXACT)
@pytest.mark.parametrize("method", METHODS)
def test_gradcheck(method, gradient):
    """alpha, y0 and a parameter together, off-grid outputs."""
    g = torch.Generator().manual_seed(4)
    weight = torch.randn(3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    y0 = torch.randn(3, dtype=torch.float64, generator=g, requires_grad=True)
    alpha = torch.tensor(0.6, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 0.25, 0.5], dtype=torch.float64)

    def solve(alpha, y0, weight):
        return fdeint(lambda t, y: torch.tanh(weight @ y) + t, y0, t, alpha=alpha,
                      method=method, step_size=0.1, gradient=gradient, params=[weight])

    assert torch.autograd.gradcheck(solve, (alpha, y0, weight))


# ---- dtypes, devices, the fixed-order path -------------------------------------------------
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("gradient", ["direct", "adjoint"])
@pytest.mark.parametrize("method", METHODS)
def test_float32(method, gradient, device):
    grads32 = _grads(0.6, method, "off-grid", gradient, dtype=torch.float32, device=device)
    grads64 = _grads(0.6, method, "off-grid", gradient)
    assert grads32.dtype == torch.float32
    assert abs(grads32[0].item() - grads64[0].item()) <= 1e-4 * abs(grads64[0].item())
    assert _rel(grads32.double().cpu(), grads64) < 1e-4


def test_alpha_gradient_keeps_alpha_dtype_and_reaches_a_reparametrisation():
    """The README's pattern: ``alpha = sigmoid(raw)``; a float64 order on a float32 state."""
    raw = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    alpha = torch.sigmoid(raw)
    field, y0 = _problem(torch.float32)
    ys = fdeint(field, y0, torch.tensor([0.0, 1.0]), alpha=alpha, method="abm",
                gradient="adjoint", step_size=0.05)
    (d_alpha,) = torch.autograd.grad(_loss(ys), alpha, retain_graph=True)
    assert d_alpha.dtype == torch.float64
    _loss(ys).backward()
    s = torch.sigmoid(raw).item()
    assert raw.grad.item() == pytest.approx(s * (1 - s) * d_alpha.item(), rel=1e-12)


@pytest.mark.parametrize("gradient", [*EXACT, "continuous", "paper"])
@pytest.mark.parametrize("alpha", [0.625, 1.0])  # exact in float32
@pytest.mark.parametrize("method", METHODS)
def test_float_and_fixed_tensor_alpha_are_the_same_solve(method, alpha, gradient):
    """A float alpha and tensors that do not require grad (float64, float32) give the same
    solution and gradients bit for bit; so does a learnable alpha under ``no_grad``."""
    t = torch.tensor(LOSSES["off-grid"][0], dtype=torch.float64)
    results = []
    for a in (alpha, torch.tensor(alpha, dtype=torch.float64), torch.tensor(alpha)):
        field, y0 = _problem()
        y0.requires_grad_()
        ys = fdeint(field, y0, t, alpha=a, method=method, gradient=gradient, step_size=0.05)
        grads = torch.autograd.grad(_loss(ys), [y0, *field.parameters()])
        results.append([ys.detach(), *grads])
    field, y0 = _problem()
    with torch.no_grad():
        ys = fdeint(field, y0, t, alpha=torch.tensor(alpha, requires_grad=True), method=method,
                    step_size=0.05)
    assert torch.equal(ys, results[0][0])
    for other in results[1:]:
        for x, y in zip(results[0], other, strict=True):
            assert torch.equal(x, y)


@pytest.mark.parametrize("method", METHODS)
def test_learnable_alpha_solves_the_same_scheme(method):
    """Below 1 the learnable solve is the fixed-order one (equal to rounding: the local steps
    take their scalar factor as a tensor)."""
    learnable = _solve(torch.tensor(0.6, dtype=torch.float64, requires_grad=True), method,
                       "off-grid")[0].detach()
    fixed = _solve(0.6, method, "off-grid")[0].detach()
    assert _rel(learnable, fixed) < 1e-14


# ---- autograd plumbing -----------------------------------------------------------------------
@pytest.mark.parametrize("gradient", EXACT)
def test_alpha_alone_requires_grad(gradient):
    """No other input needs a gradient: alpha still gets one, twice with retain_graph."""
    alpha = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    y0 = torch.ones(3, dtype=torch.float64)
    ys = fdeint(lambda t, y: -y, y0, torch.tensor([0.0, 1.0], dtype=torch.float64),
                alpha=alpha, method="l1", gradient=gradient, step_size=0.1)
    assert ys.requires_grad
    (first,) = torch.autograd.grad(ys[-1].sum(), alpha, retain_graph=True)
    (second,) = torch.autograd.grad(ys[-1].sum(), alpha)
    assert first.item() != 0.0 and torch.equal(first, second)


def test_alpha_changed_in_place_before_backward_is_refused():
    alpha = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    ys = fdeint(lambda t, y: -y, torch.ones(2, dtype=torch.float64),
                torch.linspace(0, 1, 5, dtype=torch.float64), alpha=alpha)
    with torch.no_grad():
        alpha.add_(0.1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ys.sum().backward()


# ---- what is refused -------------------------------------------------------------------------
@pytest.mark.parametrize("gradient", ["continuous", "paper"])
def test_approximate_modes_refuse_a_learnable_alpha(gradient):
    alpha = torch.tensor(0.5, requires_grad=True)
    pattern = (rf"gradient '{gradient}' gives no derivative with respect to alpha.*; for a "
               r"learnable alpha \(a tensor that requires grad\) use one of: adjoint, "
               r"checkpoint, direct, or pass alpha as a float")
    with pytest.raises(ValueError, match=pattern):
        fdeint(lambda t, y: -y, torch.ones(2), torch.linspace(0, 1, 5), alpha=alpha,
               gradient=gradient)


def test_backsolve_and_rk4_refuse_a_learnable_alpha():
    alpha = torch.tensor(1.0, requires_grad=True)
    t = torch.linspace(0, 1, 5)
    with pytest.raises(ValueError, match=r"gradient 'backsolve' gives no derivative with "
                                         r"respect to alpha"):
        fdeint(lambda t, y: -y, torch.ones(2), t, alpha=alpha, gradient="backsolve")
    with pytest.raises(ValueError, match=r"method 'rk4' has no order to learn .*use one of: "
                                         r"abm, euler, gl, l1"):
        fdeint(lambda t, y: -y, torch.ones(2), t, alpha=alpha, method="rk4")


def test_a_learnable_alpha_must_be_one_float_element():
    with pytest.raises(ValueError, match=r"one-element float32 or float64 tensor, got shape "
                                         r"\(2,\)"):
        fdeint(lambda t, y: -y, torch.ones(2), torch.linspace(0, 1, 5),
               alpha=torch.tensor([0.5, 0.6], requires_grad=True))


# ---- the weights' derivatives ------------------------------------------------------------
N, H = 30, 0.037
WEIGHTS = {
    "product_rectangle": (lambda a: weights.product_rectangle_weights(a, N, H),
                          lambda a: weights.product_rectangle_derivative(a, N, H)),
    "product_trapezoid": (lambda a: weights.product_trapezoid_weights(a, N, H),
                          lambda a: weights.product_trapezoid_weights_derivative(a, N, H)),
    "first_column": (lambda a: weights.product_trapezoid_first_column(a, N, H),
                     lambda a: weights.product_trapezoid_first_column_derivative(a, N, H)),
    "grunwald_letnikov": (lambda a: weights.grunwald_letnikov_weights(a, N),
                          lambda a: weights.grunwald_letnikov_derivative(a, N)),
    "l1": (lambda a: weights.l1_weights(a, N), lambda a: weights.l1_derivative(a, N)),
}


@pytest.mark.parametrize("alpha", [0.2, 0.7, 1.0])
@pytest.mark.parametrize("name", list(WEIGHTS))
def test_weight_derivatives_match_finite_differences(name, alpha):
    value, derivative = WEIGHTS[name]
    fd = (_central if alpha < 1 else _left)(value, alpha, 1e-3)
    exact = derivative(alpha)
    assert torch.isfinite(exact).all()
    torch.testing.assert_close(exact, fd, rtol=1e-6, atol=1e-9 * fd.abs().max().item())

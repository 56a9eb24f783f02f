"""Accuracy against exact solutions and observed convergence orders of every scheme."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import cuda_only
from reference import reference_solve

from fdebench.engine import fdeint, mittag_leffler

FRACTIONAL = ["euler", "abm", "l1", "gl"]
ALPHAS = [0.3, 0.5, 0.8, 1.0]


def _methods(alpha):
    return FRACTIONAL + (["rk4"] if alpha == 1 else [])


CASES = [(m, a) for a in ALPHAS for m in _methods(a)]
IDS = [f"{m}-alpha{a}" for m, a in CASES]


def theoretical_order(method, alpha):
    """Orders stated in the schemes' docstrings (smooth data)."""
    if method == "rk4":
        return 4.0
    if method == "abm":
        return min(2.0, 1.0 + alpha)
    return 1.0


def _max_error(method, alpha, n, problem):
    func, exact, y0 = problem(alpha)
    t = torch.linspace(0, 1, n + 1, dtype=torch.float64)
    ys = fdeint(func, y0, t, alpha=alpha, method=method)
    return (ys - exact(t)).abs().max().item()


def relaxation(alpha):
    """``D^a y = -y``, ``y(0) = 1``: ``y = E_a(-t^a)``."""
    def exact(t):
        return torch.from_numpy(mittag_leffler(alpha, -(t.numpy() ** alpha))).view(-1, 1)

    return (lambda t, y: -y), exact, torch.ones(1, dtype=torch.float64)


def polynomial(alpha):
    """``D^a y = 2 t^(2-a) / Gamma(3-a) - (y - 1 - t^2)``: ``y = 1 + t^2`` (smooth)."""
    def exact(t):
        return (1 + t**2).view(-1, 1)

    def func(t, y):
        return 2 * t ** (2 - alpha) / math.gamma(3 - alpha) - (y - 1 - t**2)

    return func, exact, torch.ones(1, dtype=torch.float64)


@pytest.mark.parametrize(("method", "alpha"), CASES, ids=IDS)
def test_relaxation_matches_mittag_leffler(method, alpha):
    # first-order schemes: error <= C h^alpha in the max norm (the solution is not smooth at 0)
    err = _max_error(method, alpha, 200, relaxation)
    bound = {"abm": 2e-3, "rk4": 1e-10}.get(method, 5e-2)
    assert err < bound


@pytest.mark.parametrize(("method", "alpha"), CASES, ids=IDS)
def test_polynomial_solution(method, alpha):
    err = _max_error(method, alpha, 200, polynomial)
    bound = {"abm": 1e-3, "rk4": 1e-10}.get(method, 1.5e-2)
    assert err < bound


@pytest.mark.parametrize("alpha", ALPHAS, ids=lambda a: f"alpha{a}")
@pytest.mark.parametrize("method", FRACTIONAL)
def test_linear_system_2d(method, alpha):
    """``D^a y = A y``: ``y(t) = V E_a(L t^a) V^-1 y0`` with ``A = V diag(L) V^-1``."""
    a_mat = torch.tensor([[-1.0, 0.5], [0.2, -2.0]], dtype=torch.float64)
    lam, vec = np.linalg.eig(a_mat.numpy())
    lam, vec = lam.real, vec.real
    y0 = torch.tensor([1.0, -0.5], dtype=torch.float64)
    t = torch.linspace(0, 2, 401, dtype=torch.float64)
    ys = fdeint(lambda t, y: a_mat @ y, y0, t, alpha=alpha, method=method)
    coef = np.linalg.solve(vec, y0.numpy())
    tt = t.numpy()[:, None] ** alpha
    exact = (mittag_leffler(alpha, tt * lam[None, :]) * coef[None, :]) @ vec.T
    error = np.abs(ys.numpy() - exact)
    # y - y0 ~ t^alpha: near t = 0 the error is O(h^alpha), away from it O(h^order)
    near, away = error[t.numpy() < 0.5].max(), error[t.numpy() >= 0.5].max()
    assert near < 3 * 0.005**alpha
    assert away < (5e-4 if method == "abm" else 5e-3)


def _observed_order(method, alpha, problem, ns):
    errors = [_max_error(method, alpha, n, problem) for n in ns]
    slope = np.polyfit(np.log(ns), np.log(errors), 1)[0]
    return -slope


@pytest.mark.parametrize(("method", "alpha"), CASES, ids=IDS)
def test_convergence_order(method, alpha):
    # rk4 is exact on quadratics, so it is measured on the exponential relaxation instead
    problem = relaxation if method == "rk4" else polynomial
    order = _observed_order(method, alpha, problem, [32, 64, 128, 256])
    assert abs(order - theoretical_order(method, alpha)) < 0.2, order


TEXTBOOK = [(m, a) for a in (0.4, 1.0) for m in _methods(a)]


@pytest.mark.parametrize(("method", "alpha"), TEXTBOOK, ids=[f"{m}-alpha{a}" for m, a in TEXTBOOK])
def test_matches_textbook_formulas(method, alpha, field):
    """Forward values equal the reference implementation written from the papers' formulas."""
    y0 = torch.randn(2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    t = torch.linspace(0, 1.5, 16, dtype=torch.float64)
    with torch.no_grad():
        ys = fdeint(field, y0, t, alpha=alpha, method=method)
        ref = reference_solve(field, y0, alpha, 0.1, 15, method)
    torch.testing.assert_close(ys, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["euler", "l1", "gl"])
def test_alpha_one_is_exactly_forward_euler(method, field):
    y0 = torch.randn(4, 3, dtype=torch.float64)
    t = torch.linspace(0, 1, 21, dtype=torch.float64)
    with torch.no_grad():
        ys = fdeint(field, y0, t, alpha=1.0, method=method)
        y, expected = y0, [y0]
        for j in range(20):
            t_j = torch.tensor(j * 0.05, dtype=torch.float64)  # the grid is t0 + j h
            y = y + 0.05 * field(t_j, y)
            expected.append(y)
    assert torch.equal(ys, torch.stack(expected))


@pytest.mark.parametrize("method", FRACTIONAL)
def test_alpha_to_one_is_continuous(method, field):
    y0 = torch.randn(4, 3, dtype=torch.float64)
    t = torch.linspace(0, 1, 21, dtype=torch.float64)
    with torch.no_grad():
        near = fdeint(field, y0, t, alpha=1 - 1e-7, method=method)
        one = fdeint(field, y0, t, alpha=1.0, method=method)
    # abm at alpha = 1 is Heun's method in one-step form: the Volterra form differs by O(h^2)
    tol = 5e-3 if method == "abm" else 1e-5
    assert (near - one).abs().max() < tol


def test_outputs_on_a_finer_grid_and_float32():
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    y0 = torch.ones(3)
    ys = fdeint(lambda t, y: -y, y0, t, alpha=0.7, step_size=0.01, method="abm")
    assert ys.shape == (4, 3) and ys.dtype == torch.float32
    assert torch.equal(ys[0], y0)
    exact = mittag_leffler(0.7, -(t.numpy() ** 0.7))
    assert np.abs(ys[:, 0].numpy() - exact).max() < 1e-4


@cuda_only
def test_cuda_matches_cpu(field):
    y0 = torch.randn(2, 3, dtype=torch.float64)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    cpu = fdeint(field, y0, t, alpha=0.6, method="abm")
    gpu = fdeint(field.cuda(), y0.cuda(), t.cuda(), alpha=0.6, method="abm")
    torch.testing.assert_close(gpu.cpu(), cpu)

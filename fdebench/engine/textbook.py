"""``textbook_fdeint``: the fractional schemes written as research code writes them.

The baseline that arXiv:2503.16666 (torchfde) measured its adjoint against is a direct
implementation in this style: the history is a Python list of per-step tensors, each step's
history sum is rebuilt from it with one product per term (``weight * history[j]``) and
``torch.stack``, and autograd records all of it.  This module is that baseline for fdebench's own
schemes, with the same weights (:mod:`fdebench.engine.weights`), the same grid and the same
output interpolation (:func:`~fdebench.engine.grid.make_grid`), so that its solution and its
gradient equal ``fdeint(..., gradient="direct")`` to rounding while its cost is the textbook one.

It is deliberately unoptimised: ``O(N^2 |y|)`` time and ``O(N^2)`` autograd nodes for the history
sums (one product per history term per step), and the whole autograd graph of every step kept
until the backward pass.  Do not speed it up: it is a measured baseline, not a solver to use.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch

from .grid import Grid, make_grid
from .weights import (
    grunwald_letnikov_weights,
    l1_weights,
    product_rectangle_weights,
    product_trapezoid_first_column,
    product_trapezoid_weights,
)

__all__ = ["TEXTBOOK_METHODS", "textbook_fdeint"]

Func = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def textbook_fdeint(
    func: Func,
    y0: torch.Tensor,
    t: torch.Tensor,
    *,
    alpha: float,
    method: str = "euler",
    step_size: float | None = None,
) -> torch.Tensor:
    """Solve ``D^alpha y = func(t, y)`` (Caputo, ``0 < alpha <= 1``), ``y(t[0]) = y0``, by plain
    autograd through a textbook implementation of ``method``.

    The schemes (the same discretisations as :func:`fdebench.engine.fdeint`, written from their
    literature form):

    * ``euler``: fractional forward Euler, the product-rectangle rule
      ``y_m = y0 + sum_{j<m} k[m - j] f(t_j, y_j)`` (Garrappa 2018, Mathematics 6(2):16,
      eq. (10)); order 1.
    * ``abm``: Diethelm's Adams-Bashforth-Moulton predictor-corrector, the product-rectangle
      predictor and the product-trapezoid corrector
      ``y_m = y0 + sum_{j<m} a_{j,m} f(t_j, y_j) + h^a / Gamma(a + 2) f(t_m, y^P_m)``
      (Diethelm, Ford & Freed 2002, Nonlinear Dyn. 29:3-22, eqs. (1.5)-(1.6)); order
      ``min(2, 1 + a)``.
    * ``l1``: the explicit L1 scheme
      ``h^-a / Gamma(2 - a) sum_{l=0}^{m} b_l (y_{m+1-l} - y_{m-l}) = f(t_m, y_m)``
      (Oldham & Spanier 1974; Lin & Xu 2007, J. Comput. Phys. 225:1533-1552); order 1.
    * ``gl``: the explicit Grunwald-Letnikov scheme on ``y - y0``
      ``h^-a sum_{l=0}^{m+1} w_l (y_{m+1-l} - y0) = f(t_m, y_m)`` (Podlubny 1999, Sec. 7.2);
      order 1.

    At ``alpha == 1`` the schemes lose their memory and, as in ``fdeint``, the classical
    one-step methods run: forward Euler for ``euler``, ``l1`` and ``gl``, Heun's method for
    ``abm`` (Hairer, Norsett & Wanner, *Solving ODEs I*, Sec. II.1).

    Args:
        func: ``func(t, y) -> D^alpha y`` with ``y``'s shape and dtype; ``t`` is a 0-dim tensor
            of ``y0``'s dtype.
        y0: initial state, a float32 or float64 tensor of any shape.
        t: 1-D increasing tensor of output times; ``t[0]`` is the initial time.
        alpha: the order, a number in ``(0, 1]`` (a tensor that requires grad is refused: the
            weights are computed as floats, so a learnt order gets no gradient here).
        method: ``"euler"``, ``"abm"``, ``"l1"`` or ``"gl"``.
        step_size: the uniform step; default the spacing of ``t``.  Output times between grid
            times are the linear interpolation of the two grid values, as in ``fdeint``.

    Returns:
        ``ys`` of shape ``(len(t), *y0.shape)``, ``ys[0] == y0``, differentiable by autograd
        with respect to ``y0`` and whatever ``func`` uses.
    """
    order = _check_inputs(y0, alpha, method)
    grid = make_grid(t, step_size)
    times = grid.times(y0.dtype, y0.device)
    if order == 1:
        solve = _heun if method == "abm" else _forward_euler
        ys = solve(func, y0, times, grid.h, grid.n_steps)
    else:
        ys = TEXTBOOK_METHODS[method](func, y0, times, order, grid.h, grid.n_steps)
    return _outputs(ys, grid)


def _check_inputs(y0: torch.Tensor, alpha: float | torch.Tensor, method: str) -> float:
    """Validate the inputs once; return the order as a float."""
    if not isinstance(y0, torch.Tensor) or y0.dtype not in (torch.float32, torch.float64):
        got = y0.dtype if isinstance(y0, torch.Tensor) else type(y0).__name__
        raise TypeError(f"y0 must be a float32 or float64 tensor, got {got}")
    if isinstance(alpha, torch.Tensor):
        if alpha.requires_grad:
            raise ValueError("textbook_fdeint has no learnable order (its weights are floats); "
                             "pass alpha as a number, or use fdeint for a learnable alpha")
        alpha = alpha.item() if alpha.numel() == 1 else alpha
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha <= 1:
        raise ValueError(f"alpha must be a number in (0, 1], got {alpha!r}")
    if method not in TEXTBOOK_METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: "
                         f"{', '.join(sorted(TEXTBOOK_METHODS))}")
    return float(alpha)


def _history_sum(terms: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """``sum(terms)`` as research code writes it: stack the weighted terms, sum the stack."""
    return torch.stack(terms).sum(0) if terms else torch.zeros_like(like)


def _outputs(ys: list[torch.Tensor], grid: Grid) -> torch.Tensor:
    """The grid values at the output times: linear interpolation between grid times."""
    out = []
    for j, w in zip(grid.out_index, grid.out_weight, strict=True):
        out.append(ys[j] if w == 0 else (1 - w) * ys[j] + w * ys[j + 1])
    return torch.stack(out)


# ---- the fractional schemes (0 < alpha < 1) ------------------------------------------------
def _euler(func: Func, y0, times, alpha: float, h: float, n: int) -> list[torch.Tensor]:
    """Product-rectangle rule; ``fhistory[j] = f(t_j, y_j)``."""
    k = product_rectangle_weights(alpha, n, h).to(y0)
    ys, fhistory = [y0], []
    for m in range(1, n + 1):
        fhistory.append(func(times[m - 1], ys[m - 1]))
        terms = [k[m - j] * fhistory[j] for j in range(m)]
        ys.append(y0 + _history_sum(terms, y0))
    return ys


def _abm(func: Func, y0, times, alpha: float, h: float, n: int) -> list[torch.Tensor]:
    """Product-rectangle predictor, product-trapezoid corrector (PECE, one correction)."""
    b = product_rectangle_weights(alpha, n, h).to(y0)
    a = product_trapezoid_weights(alpha, n, h).to(y0)
    a0 = product_trapezoid_first_column(alpha, n, h).to(y0)  # the weight of f_0
    kappa = h**alpha / math.gamma(alpha + 2)  # the weight of the predicted value
    ys, fhistory = [y0], [func(times[0], y0)]
    for m in range(1, n + 1):
        y_pred = y0 + _history_sum([b[m - j] * fhistory[j] for j in range(m)], y0)
        terms = [a0[m] * fhistory[0]] + [a[m - j] * fhistory[j] for j in range(1, m)]
        y = y0 + _history_sum(terms, y0) + kappa * func(times[m], y_pred)
        ys.append(y)
        if m < n:
            fhistory.append(func(times[m], y))
    return ys


def _l1(func: Func, y0, times, alpha: float, h: float, n: int) -> list[torch.Tensor]:
    """``y_{m+1} = y_m + mu f(t_m, y_m) - sum_{l=1}^{m} b_l (y_{m+1-l} - y_{m-l})``,
    ``mu = Gamma(2 - a) h^a``."""
    b = l1_weights(alpha, n).to(y0)
    mu = math.gamma(2 - alpha) * h**alpha
    ys = [y0]
    for m in range(n):
        terms = [b[m - j] * (ys[j + 1] - ys[j]) for j in range(m)]  # l = m - j
        ys.append(ys[m] + mu * func(times[m], ys[m]) - _history_sum(terms, y0))
    return ys


def _gl(func: Func, y0, times, alpha: float, h: float, n: int) -> list[torch.Tensor]:
    """``y_{m+1} = y0 + h^a f(t_m, y_m) - sum_{l=1}^{m} w_l (y_{m+1-l} - y0)`` (the ``l = m + 1``
    term is ``y_0 - y0 = 0``)."""
    w = grunwald_letnikov_weights(alpha, n).to(y0)
    mu = h**alpha
    ys = [y0]
    for m in range(n):
        terms = [w[m + 1 - j] * (ys[j] - y0) for j in range(1, m + 1)]  # l = m + 1 - j
        ys.append(y0 + mu * func(times[m], ys[m]) - _history_sum(terms, y0))
    return ys


#: method -> its fractional scheme (``alpha < 1``); at ``alpha == 1`` the one-step methods below
TEXTBOOK_METHODS = {"euler": _euler, "abm": _abm, "l1": _l1, "gl": _gl}


# ---- alpha == 1: the classical one-step methods ----------------------------------------------
def _forward_euler(func: Func, y0, times, h: float, n: int) -> list[torch.Tensor]:
    ys = [y0]
    for j in range(n):
        ys.append(ys[j] + h * func(times[j], ys[j]))
    return ys


def _heun(func: Func, y0, times, h: float, n: int) -> list[torch.Tensor]:
    ys = [y0]
    for j in range(n):
        f0 = func(times[j], ys[j])
        f1 = func(times[j + 1], ys[j] + h * f0)
        ys.append(ys[j] + 0.5 * h * (f0 + f1))
    return ys

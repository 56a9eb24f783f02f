"""Convolution weights of the fractional schemes, indexed by lag.

Every fractional scheme in :mod:`fdebench.engine.schemes` combines the history as
``sum_j kernel[m - j] * history[j]``: the weight depends only on the lag ``m - j`` (Toeplitz),
except the first column of the Adams-Moulton corrector.  Each function returns a float64
tensor ``k`` of length ``n_steps + 1`` with ``k[lag]`` for ``lag = 0..n_steps`` (``k[0]`` is
unused and zero), including the step-size factor, so the schemes only multiply and add.
Weights are computed once per solve in float64 and cast to the working dtype by the caller.

For a learnable order (``fdeint(..., alpha=tensor)`` that requires grad) each weight function has
a ``*_derivative`` twin: the derivative of the same weights with respect to ``alpha``, in closed
form (``d/da x^a = x^a log x`` with ``0 log 0 = 0``; ``d/da log Gamma(x + a) = psi(x + a)``),
computed once per solve at the cost of one more weight evaluation.  They are exact at
``alpha = 1`` too, the limit of the fractional weights.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "digamma",
    "grunwald_letnikov_derivative",
    "grunwald_letnikov_weights",
    "l1_derivative",
    "l1_weights",
    "product_rectangle_derivative",
    "product_rectangle_weights",
    "product_trapezoid_first_column",
    "product_trapezoid_first_column_derivative",
    "product_trapezoid_weights",
    "product_trapezoid_weights_derivative",
]


def _lags(n_steps: int) -> torch.Tensor:
    return torch.arange(n_steps + 1, dtype=torch.float64)


def product_rectangle_weights(alpha: float, n_steps: int, h: float) -> torch.Tensor:
    """Product-rectangle (fractional forward Euler) weights.

    ``k[l] = h^a / Gamma(a + 1) * (l^a - (l - 1)^a)`` for ``l >= 1``: the exact integral of the
    Riemann-Liouville kernel ``(t_m - s)^(a-1) / Gamma(a)`` over ``[t_{m-l}, t_{m-l+1}]``
    (Garrappa 2018, Mathematics 6(2):16, eq. (10); Diethelm, Ford & Freed 2002, predictor).
    """
    lag = _lags(n_steps)
    k = (lag.pow(alpha) - (lag - 1).clamp(min=0).pow(alpha)) * (h**alpha / math.gamma(alpha + 1))
    k[0] = 0.0
    return k


def product_trapezoid_weights(alpha: float, n_steps: int, h: float) -> torch.Tensor:
    """Interior weights of the product-trapezoid (Adams-Moulton) corrector.

    ``k[l] = h^a / Gamma(a + 2) * ((l + 1)^(a+1) - 2 l^(a+1) + (l - 1)^(a+1))`` for ``l >= 1``
    (Diethelm, Ford & Freed 2002, Nonlinear Dyn. 29:3-22, eq. (1.6), ``a_{j,k+1}`` with
    ``1 <= j <= k``).  The weight of the newest value (lag 0, the predicted one) is
    ``h^a / Gamma(a + 2)``; the oldest value uses :func:`product_trapezoid_first_column`.
    """
    lag = _lags(n_steps)
    p = alpha + 1
    k = (lag + 1).pow(p) - 2 * lag.pow(p) + (lag - 1).clamp(min=0).pow(p)
    k = k * (h**alpha / math.gamma(alpha + 2))
    k[0] = 0.0
    return k


def product_trapezoid_first_column(alpha: float, n_steps: int, h: float) -> torch.Tensor:
    """Corrector weight of ``f(t_0, y_0)`` when computing ``y_m``, indexed by ``m``.

    ``c[m] = h^a / Gamma(a + 2) * ((m - 1)^(a+1) - (m - 1 - a) m^a)`` (Diethelm, Ford & Freed
    2002, eq. (1.6), ``a_{0,k+1}`` with ``k = m - 1``).
    """
    m = _lags(n_steps)
    c = (m - 1).clamp(min=0).pow(alpha + 1) - (m - 1 - alpha) * m.pow(alpha)
    c = c * (h**alpha / math.gamma(alpha + 2))
    c[0] = 0.0
    return c


def grunwald_letnikov_weights(alpha: float, n_steps: int) -> torch.Tensor:
    """Grunwald-Letnikov weights ``w[l] = (-1)^l binom(a, l)``, including ``w[0] = 1``.

    Recurrence ``w[l] = (1 - (a + 1) / l) w[l - 1]`` (Podlubny 1999, *Fractional Differential
    Equations*, eq. (7.10)); it is stable because every factor lies in ``(-1, 1)``.
    """
    w = torch.empty(n_steps + 1, dtype=torch.float64)
    w[0] = 1.0
    if n_steps:
        factors = 1.0 - (alpha + 1.0) / torch.arange(1, n_steps + 1, dtype=torch.float64)
        w[1:] = torch.cumprod(factors, 0)
    return w


def l1_weights(alpha: float, n_steps: int) -> torch.Tensor:
    """L1 coefficients ``b[l] = (l + 1)^(1-a) - l^(1-a)`` for ``l = 0..n_steps``.

    The L1 approximation of the Caputo derivative (Oldham & Spanier 1974; Lin & Xu 2007,
    J. Comput. Phys. 225, eq. (2.4)) is
    ``D^a y(t_m) ~ h^-a / Gamma(2 - a) * sum_{l=0}^{m-1} b[l] (y_{m-l} - y_{m-l-1})``.
    """
    lag = _lags(n_steps)
    b = (lag + 1).pow(1 - alpha) - lag.pow(1 - alpha)
    b[0] = 1.0  # 1 - 0^(1-a): torch's 0^0 = 1 would make it 0 at a = 1 (a learnable order)
    return b


# ---- derivatives with respect to alpha (a learnable order) --------------------------------
def digamma(x: float) -> float:
    """The digamma function ``psi(x) = d/dx log Gamma(x)`` (float64)."""
    return torch.special.digamma(torch.tensor(x, dtype=torch.float64)).item()


def _pow_derivative(x: torch.Tensor, p: float) -> torch.Tensor:
    """``d/dp x^p = x^p log x``, ``0`` where ``x = 0`` (``x >= 0``, ``p > 0``)."""
    return torch.special.xlogy(x.pow(p), x)


def product_rectangle_derivative(alpha: float, n_steps: int, h: float) -> torch.Tensor:
    """``d/da`` of :func:`product_rectangle_weights`: with ``c = h^a / Gamma(a + 1)``,
    ``c' = c (log h - psi(a + 1))`` and ``k'[l] = c' P[l] + c (l^a log l - (l-1)^a log(l-1))``,
    ``P[l] = l^a - (l - 1)^a``."""
    lag = _lags(n_steps)
    c = h**alpha / math.gamma(alpha + 1)
    dc = c * (math.log(h) - digamma(alpha + 1))
    before = (lag - 1).clamp(min=0)
    p = lag.pow(alpha) - before.pow(alpha)
    dp = _pow_derivative(lag, alpha) - _pow_derivative(before, alpha)
    k = dc * p + c * dp
    k[0] = 0.0
    return k


def product_trapezoid_weights_derivative(alpha: float, n_steps: int, h: float) -> torch.Tensor:
    """``d/da`` of :func:`product_trapezoid_weights` (``c = h^a / Gamma(a + 2)``,
    ``c' = c (log h - psi(a + 2))``, ``d/da x^(a+1) = x^(a+1) log x``)."""
    lag = _lags(n_steps)
    c = h**alpha / math.gamma(alpha + 2)
    dc = c * (math.log(h) - digamma(alpha + 2))
    p, before = alpha + 1, (lag - 1).clamp(min=0)
    q = (lag + 1).pow(p) - 2 * lag.pow(p) + before.pow(p)
    dq = (_pow_derivative(lag + 1, p) - 2 * _pow_derivative(lag, p)
          + _pow_derivative(before, p))
    k = dc * q + c * dq
    k[0] = 0.0
    return k


def product_trapezoid_first_column_derivative(alpha: float, n_steps: int,
                                              h: float) -> torch.Tensor:
    """``d/da`` of :func:`product_trapezoid_first_column`: with ``R[m] = (m - 1)^(a+1) -
    (m - 1 - a) m^a``, ``R'[m] = (m-1)^(a+1) log(m-1) + m^a - (m - 1 - a) m^a log m``."""
    m = _lags(n_steps)
    c = h**alpha / math.gamma(alpha + 2)
    dc = c * (math.log(h) - digamma(alpha + 2))
    before = (m - 1).clamp(min=0)
    r = before.pow(alpha + 1) - (m - 1 - alpha) * m.pow(alpha)
    dr = (_pow_derivative(before, alpha + 1) + m.pow(alpha)
          - (m - 1 - alpha) * _pow_derivative(m, alpha))
    out = dc * r + c * dr
    out[0] = 0.0
    return out


def grunwald_letnikov_derivative(alpha: float, n_steps: int) -> torch.Tensor:
    """``d/da`` of :func:`grunwald_letnikov_weights`.

    ``w[l] = prod_{i<=l} r_i`` with ``r_i = 1 - (a + 1) / i``, ``r_i' = -1 / i``.  Only ``r_2``
    can vanish for ``a`` in ``(0, 1]`` (at ``a = 1``), so it is split off:
    ``w[l] = r_2 v[l]`` (``l >= 2``), ``v' = v sum_{i != 2} r_i' / r_i`` with
    ``r_i' / r_i = -1 / (i - a - 1)`` (denominators ``-a`` and ``>= 1``), and
    ``w'[l] = -v[l] / 2 + r_2 v'[l]``: exact at ``a = 1`` too.
    """
    out = torch.zeros(n_steps + 1, dtype=torch.float64)
    if n_steps >= 1:
        out[1] = -1.0  # w[1] = -a
    if n_steps >= 2:
        i = torch.arange(1, n_steps + 1, dtype=torch.float64)
        r = 1.0 - (alpha + 1.0) / i
        log_ratio = -1.0 / (i - alpha - 1.0)  # r_i' / r_i, i != 2
        r[1], log_ratio[1] = 1.0, 0.0  # leave r_2 out of v
        v = torch.cumprod(r, 0)[1:]  # v[l] for l = 2..n
        dv = v * torch.cumsum(log_ratio, 0)[1:]
        r2 = 1.0 - (alpha + 1.0) / 2
        out[2:] = -0.5 * v + r2 * dv
    return out


def l1_derivative(alpha: float, n_steps: int) -> torch.Tensor:
    """``d/da`` of :func:`l1_weights`: ``b'[l] = -((l+1)^(1-a) log(l+1) - l^(1-a) log l)``
    (``b'[0] = 0``)."""
    lag = _lags(n_steps)
    out = _pow_derivative(lag, 1 - alpha) - _pow_derivative(lag + 1, 1 - alpha)
    out[0] = 0.0  # b[0] = 1 for every a (0^0 log 0 would be -inf at a = 1)
    return out

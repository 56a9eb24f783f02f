"""Convolution weights of the fractional schemes, indexed by lag.

Every fractional scheme in :mod:`fdebench.engine.schemes` combines the history as
``sum_j kernel[m - j] * history[j]``: the weight depends only on the lag ``m - j`` (Toeplitz),
except the first column of the Adams-Moulton corrector.  Each function returns a float64
tensor ``k`` of length ``n_steps + 1`` with ``k[lag]`` for ``lag = 0..n_steps`` (``k[0]`` is
unused and zero), including the step-size factor, so the schemes only multiply and add.
Weights are computed once per solve in float64 and cast to the working dtype by the caller.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "grunwald_letnikov_weights",
    "l1_weights",
    "product_rectangle_weights",
    "product_trapezoid_first_column",
    "product_trapezoid_weights",
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
    return (lag + 1).pow(1 - alpha) - lag.pow(1 - alpha)

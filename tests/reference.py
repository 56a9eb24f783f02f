"""Textbook reference solvers for the tests: Python lists, plain formulas, autograd everywhere.

Written independently of ``fdebench.engine`` (no shared weights, no buffers) so that comparing the
engine against them checks both its forward values and its hand-written adjoint.
"""

from __future__ import annotations

import math

import torch


def reference_solve(func, y0, alpha, h, n, method):
    """States ``y_0 .. y_n`` (stacked) of ``method`` on ``t_j = j h``."""
    times = [torch.tensor(j * h, dtype=y0.dtype) for j in range(n + 1)]
    if alpha == 1:
        return _classical(func, y0, h, n, method, times)
    return {"euler": _euler, "abm": _abm, "l1": _l1, "gl": _gl}[method](
        func, y0, alpha, h, n, times
    )


def _classical(func, y0, h, n, method, times):
    ys = [y0]
    for j in range(n):
        y, t = ys[-1], times[j]
        if method in ("euler", "l1", "gl"):
            ys.append(y + h * func(t, y))
        elif method == "abm":  # Heun
            f0 = func(t, y)
            ys.append(y + h / 2 * (f0 + func(t + h, y + h * f0)))
        else:  # rk4
            k1 = func(t, y)
            k2 = func(t + h / 2, y + h / 2 * k1)
            k3 = func(t + h / 2, y + h / 2 * k2)
            k4 = func(t + h, y + h * k3)
            ys.append(y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4))
    return torch.stack(ys)


def _euler(func, y0, a, h, n, times):
    ys, fs = [y0], []
    for m in range(1, n + 1):
        fs.append(func(times[m - 1], ys[-1]))
        acc = sum(((m - j) ** a - (m - j - 1) ** a) * fs[j] for j in range(m))
        ys.append(y0 + h**a / math.gamma(a + 1) * acc)
    return torch.stack(ys)


def _abm(func, y0, a, h, n, times):
    """Diethelm, Ford & Freed (2002), eqs. (1.5)-(1.6), written as in the paper (k = m - 1)."""
    ys, fs = [y0], [func(times[0], y0)]
    for k in range(n):
        b = [h**a / a * ((k + 1 - j) ** a - (k - j) ** a) for j in range(k + 1)]
        y_pred = y0 + sum(bj * fj for bj, fj in zip(b, fs, strict=True)) / math.gamma(a)
        coef = [k ** (a + 1) - (k - a) * (k + 1) ** a] + [
            (k - j + 2) ** (a + 1) + (k - j) ** (a + 1) - 2 * (k - j + 1) ** (a + 1)
            for j in range(1, k + 1)
        ]
        c = h**a / math.gamma(a + 2)
        history = sum(cj * fj for cj, fj in zip(coef, fs, strict=True))
        y = y0 + c * func(times[k + 1], y_pred) + c * history
        ys.append(y)
        if k + 1 < n:
            fs.append(func(times[k + 1], y))
    return torch.stack(ys)


def _l1(func, y0, a, h, n, times):
    """``h^-a/Gamma(2-a) sum_{l=0}^{m} b_l (y_{m+1-l} - y_{m-l}) = f(t_m, y_m)``, solved for
    ``y_{m+1}`` (``b_0 = 1``)."""
    b = [(lag + 1) ** (1 - a) - lag ** (1 - a) for lag in range(n + 1)]
    ys = [y0]
    for m in range(n):
        rest = sum(b[lag] * (ys[m + 1 - lag] - ys[m - lag]) for lag in range(1, m + 1))
        ys.append(ys[m] - rest + math.gamma(2 - a) * h**a * func(times[m], ys[m]))
    return torch.stack(ys)


def _gl(func, y0, a, h, n, times):
    """``h^-a sum_{lag=0}^{m+1} (-1)^lag binom(a, lag) (y_{m+1-lag} - y0) = f(t_m, y_m)``."""
    w = [(-1) ** lag * math.gamma(a + 1) / (math.gamma(lag + 1) * math.gamma(a - lag + 1))
         for lag in range(n + 1)]
    ys = [y0]
    for m in range(n):
        rest = sum(w[lag] * (ys[m + 1 - lag] - y0) for lag in range(1, m + 2))
        ys.append(y0 + h**a * func(times[m], ys[m]) - rest)
    return torch.stack(ys)


# ---- the compressed schemes (history="soe"), as plain lag-indexed sums ----------------------
def soe_lag_weights(soe, h, n):
    """The SOE ``sum_l w_l exp(-lambda_l t)`` integrated over each lag's step
    ``t in [(L - 1) h, L h]``, ``L = 0..n`` (entries 0 and 1 unused), against 1, against the
    older end's hat ``(t - (L - 1) h) / h`` and the newer end's ``(L h - t) / h``: three lists
    of floats, by 64-point Gauss-Legendre quadrature in float64 (no recurrences)."""
    import numpy as np

    nodes, gauss = np.polynomial.legendre.leggauss(64)
    v = 0.5 * h * (nodes + 1)  # in [0, h]
    gauss = 0.5 * h * gauss
    w, lam = soe.weights.numpy(), soe.rates.numpy()
    rect, older, newer = [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]
    for lag in range(2, n + 1):
        t = lag * h - v
        values = np.exp(-np.outer(t, lam)) @ w
        rect.append(float(gauss @ values))
        older.append(float(gauss @ (values * (1 - v / h))))
        newer.append(float(gauss @ (values * (v / h))))
    return rect, older, newer


def reference_soe_solve(func, y0, alpha, h, n, method, tol):
    """States ``y_0 .. y_n`` of the compressed ``method`` (``history="soe"``) on ``t_j = j h``:
    the exact scheme with every history weight but the newest replaced by the SOE's integral
    (:func:`soe_lag_weights`), summed directly, ``O(n^2)``, with autograd everywhere."""
    from fdebench.engine.soe import sum_of_exponentials

    times = [torch.tensor(j * h, dtype=y0.dtype) for j in range(n + 1)]
    order = 1 - alpha if method == "l1" else alpha
    soe = sum_of_exponentials(order, h, n * h, tol)
    rect, older, newer = soe_lag_weights(soe, h, n)
    if method == "euler":
        ys, fs = [y0], []
        for m in range(1, n + 1):
            fs.append(func(times[m - 1], ys[-1]))
            acc = h**alpha / math.gamma(alpha + 1) * fs[m - 1]
            acc = acc + sum(rect[m - j] * fs[j] for j in range(m - 1))
            ys.append(y0 + acc)
        return torch.stack(ys)
    if method == "abm":
        c = h**alpha / math.gamma(alpha + 2)
        ys, fs = [y0], []
        for m in range(1, n + 1):
            fs.append(func(times[m - 1], ys[-1]))
            pred = h**alpha / math.gamma(alpha + 1) * fs[m - 1]
            pred = y0 + pred + sum(rect[m - j] * fs[j] for j in range(m - 1))
            # the step [t_i, t_{i+1}] at lag L = m - i: older end f_i, newer end f_{i+1}
            corr = alpha * c * fs[m - 1] + c * func(times[m], pred)
            for i in range(m - 1):
                corr = corr + older[m - i] * fs[i] + newer[m - i] * fs[i + 1]
            ys.append(y0 + corr)
        return torch.stack(ys)
    # l1: (y_{m+1} - y_m) / mu + (1/h) sum_{L>=2} rect[L] (y_{m+2-L} - y_{m+1-L}) = f_m
    mu = math.gamma(2 - alpha) * h**alpha
    ys = [y0]
    for m in range(n):
        rest = sum(rect[lag] * (ys[m + 2 - lag] - ys[m + 1 - lag]) for lag in range(2, m + 2))
        ys.append(ys[m] + mu * (func(times[m], ys[m]) - rest / h))
    return torch.stack(ys)

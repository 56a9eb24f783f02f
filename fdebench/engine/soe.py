"""A sum of exponentials (SOE) for the fractional kernel ``t^(b-1) / Gamma(b)`` on ``[h, T]``.

``t^(b-1) / Gamma(b) ~ sum_l w_l exp(-lambda_l t)`` with relative error at most ``tol`` for every
``t`` in ``[h, T]``, all ``w_l > 0`` and ``lambda_l > 0``.  It turns a convolution with the
kernel into ``K`` one-step recurrences (the "fast" history of Jiang, Zhang, Zhang & Zhang 2017,
Commun. Comput. Phys. 21:650-678; McLean 2018, arXiv:1606.00123; Baffet 2019, J. Sci. Comput.,
arXiv:1801.06095).  Built in float64, once per ``(b, T / h, tol)`` (cached).

Construction, in units of ``h`` (``u = t / h`` in ``[1, S]``, ``S = T / h``; scaling back gives
``lambda / h`` and ``w h^(b-1)``):

1. The Laplace form ``u^(b-1) / Gamma(b) = sin(pi b) / pi int_R exp((1-b) x - u e^x) dx``
   (``s = e^x``), discretised by the trapezoidal rule of step ``dx``.  Its integrand is analytic
   in the strip ``|Im x| < pi / 2`` and decays doubly exponentially for ``x -> +inf``, so the
   relative error is ``~ 2 |Gamma(1 - b + 2 pi i / dx)| / Gamma(1 - b) ~ exp(-pi^2 / dx)``
   for every ``u`` at once (the Mellin form of the trapezoidal error; McLean 2018, Sec. 2):
   ``dx ~ 0.45`` for ``tol = 1e-8``, about two nodes per e-fold of ``lambda``.  Nodes with
   ``lambda > log(1/tol) + 12`` (negligible at ``u >= 1``) are dropped; those with
   ``lambda S < 1e-17`` (``exp(-lambda u) = 1`` in float64) become one atom at ``lambda = 0``
   carrying the geometric tail of the sum.
2. Reduction: the *slow* nodes, ``lambda < lambda_0 = c / S`` (``c`` in 4..16), on which
   ``exp(-lambda u)`` is an entire function of ``lambda`` of bounded type for ``u <= S``, are
   replaced by the ``n``-point Gauss rule of their discrete measure (Lanczos on
   ``diag(lambda)`` from the square roots of the weights, Golub & Welsch 1969): positive
   weights, nodes inside ``(0, lambda_0)``, error ``~ (lambda_0 S / 4)^(2n) / (2n)!``.  This
   plays the role of Jiang et al.'s Gauss-Jacobi rule near 0, and of the model reduction of
   Beylkin & Monzon (2005, Appl. Comput. Harmon. Anal. 19:17-48) for the long tail.
3. Verification: the relative error is measured on 800 log-spaced ``u`` in ``[1, S]``;
   ``dx``, ``c`` and ``n`` are the first found (largest ``dx``, then fewest nodes) with error at
   most ``tol / 2``.

``K`` at ``tol = 1e-8`` (measured, ``b`` in 0.01..0.99): 22-24 modes at ``S = 400``, 29-30 at
``S = 6400``, 32-33 at ``S = 25600``, about 5 more per tenfold ``S`` and 3-4 more per hundredfold
smaller ``tol`` (17-19 at ``1e-4``, 48-50 at ``1e-13``, ``S = 25600``); 2-20 ms to build.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["SOE", "TOLERANCES", "sum_of_exponentials"]

#: the range of ``soe_tol`` the construction reaches in float64
TOLERANCES = (1e-13, 1e-2)
_CHECK_POINTS = 800
_SLOW = (4.0, 8.0, 16.0)  # lambda_0 S
_MAX_GAUSS = 16


@dataclass(frozen=True)
class SOE:
    """``sum_l weights[l] exp(-rates[l] t)`` (float64 tensors, rates increasing) and the
    measured relative error on ``[h, T]``."""

    weights: torch.Tensor
    rates: torch.Tensor
    error: float

    def __len__(self) -> int:
        return self.weights.numel()

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        """The SOE at times ``t`` (float64)."""
        t = t.to(torch.float64)
        return torch.exp(-t[..., None] * self.rates) @ self.weights


def sum_of_exponentials(order: float, h: float, t_max: float, tol: float) -> SOE:
    """The SOE of ``t^(order-1) / Gamma(order)`` on ``[h, t_max]`` with relative error at most
    ``tol`` (module docstring); ``0 < order < 1``, ``tol`` in :data:`TOLERANCES`."""
    span = max(t_max / h, 1.0)
    weights, rates, error = _scaled(float(order), round(span, 6), float(tol))
    return SOE(weights * h ** (order - 1), rates / h, error)


@functools.lru_cache(maxsize=64)
def _scaled(order: float, span: float, tol: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The SOE on ``u`` in ``[1, span]`` (``h = 1``): ``(weights, rates, error)``."""
    u = np.exp(np.linspace(0.0, math.log(span), _CHECK_POINTS)) if span > 1 else np.ones(1)
    exact = u ** (order - 1) / math.gamma(order)

    def error(rates: np.ndarray, weights: np.ndarray) -> float:
        return float(np.max(np.abs(np.exp(-np.outer(u, rates)) @ weights / exact - 1)))

    # 1. the largest trapezoidal step that reaches tol / 2 with a generous slow rule
    step = math.pi**2 / (math.log(1 / tol) + 3)
    while True:
        nodes = _trapezoid(order, span, tol, step)
        rates, weights = _reduce(*nodes, _SLOW[0] / span, _MAX_GAUSS)
        if error(rates, weights) <= tol / 2 or step < 0.05:
            break
        step *= 0.96
    # 2. the fewest Gauss nodes for the slow part
    best = (rates, weights)
    for slow in _SLOW:
        for n in range(2, _MAX_GAUSS + 1):
            candidate = _reduce(*nodes, slow / span, n)
            if len(candidate[0]) >= len(best[0]):
                break
            if error(*candidate) <= tol / 2:
                best = candidate
                break
    rates, weights = best
    return (torch.from_numpy(weights.copy()), torch.from_numpy(rates.copy()),
            error(rates, weights))


def _trapezoid(order: float, span: float, tol: float,
               step: float) -> tuple[np.ndarray, np.ndarray]:
    """Trapezoidal nodes ``(rates, weights)`` of the Laplace form, the slowest an atom at 0."""
    x_lo, x_hi = math.log(1e-17 / span), math.log(math.log(1 / tol) + 12)
    x = np.arange(math.floor(x_lo / step), math.ceil(x_hi / step) + 1) * step
    weights = math.sin(math.pi * order) / math.pi * step * np.exp((1 - order) * x)
    ratio = math.exp(-(1 - order) * step)
    tail = weights[0] * ratio / (1 - ratio)  # the nodes below x_lo: exp(-lambda u) = 1
    return np.concatenate([[0.0], np.exp(x)]), np.concatenate([[tail], weights])


def _reduce(rates: np.ndarray, weights: np.ndarray, slow: float,
            n: int) -> tuple[np.ndarray, np.ndarray]:
    """Replace the nodes below ``slow`` by the ``n``-point Gauss rule of their measure."""
    below = rates < slow
    nodes, gauss = _gauss_rule(rates[below], weights[below], n)
    return np.concatenate([nodes, rates[~below]]), np.concatenate([gauss, weights[~below]])


def _gauss_rule(nodes: np.ndarray, weights: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n``-point Gauss rule of the measure ``sum_j weights[j] delta(nodes[j])``: Lanczos
    with full reorthogonalisation, then the eigenvalues of the Jacobi matrix (Golub & Welsch
    1969)."""
    n = min(n, len(nodes))
    scale, mass = nodes.max(), weights.sum()
    x = nodes / scale
    basis = [np.sqrt(weights / mass)]
    diagonal, offdiagonal = [], []
    for k in range(n):
        v = x * basis[-1]
        diagonal.append(basis[-1] @ v)
        for _ in range(2):
            for q in basis:
                v = v - (q @ v) * q
        norm = float(np.linalg.norm(v))
        if k == n - 1 or norm < 1e-14:
            break
        offdiagonal.append(norm)
        basis.append(v / norm)
    m = len(diagonal)
    off = offdiagonal[: m - 1]
    jacobi = np.diag(diagonal) + np.diag(off, 1) + np.diag(off, -1)
    values, vectors = np.linalg.eigh(jacobi)
    return values * scale, mass * vectors[0] ** 2

"""Schemes that discretise the Caputo derivative of ``u = y - y0`` directly.

Both are explicit and share one recurrence,
``u_{m+1} = sum_{l=1}^{m} d_l u_{m+1-l} + mu f(t_m, y_m)``, ``y_m = y0 + u_m``,
so the history buffer holds the trajectory ``u`` itself; the backward pass overwrites it, newest
first, with the adjoint states.  Memory: one ``(N + 1) x |y|`` buffer in adjoint mode.

A learnable order: ``d`` and ``mu`` depend on alpha.  ``dL/dalpha = sum_m <u_m, sum_{M>m}
d'_{M-m} ubar_M> + mu' sum_m <ubar_{m+1}, f(t_m, y_m)>``: the first is the adjoint's history sum
with ``d'`` stacked on ``d`` (both from the same rows; no extra buffer), the second comes from
the local step, which then takes ``mu`` as an input and returns ``mu f`` (``direct`` keeps ``f``
for it: one more ``|y|`` per step).
"""

from __future__ import annotations

import math

import torch

from ..weights import (
    digamma,
    grunwald_letnikov_derivative,
    grunwald_letnikov_weights,
    l1_derivative,
    l1_weights,
)
from .base import Scheme, add

__all__ = ["L1", "GrunwaldLetnikov"]


class _Difference(Scheme):
    def _kernel(self) -> tuple[torch.Tensor, float]:
        """``(d, mu)`` with ``d[l]`` the weight of lag ``l`` (``d[0]`` unused)."""
        raise NotImplementedError

    def _derivative(self) -> tuple[torch.Tensor, float]:
        """``(d', mu')``: the alpha-derivatives of :meth:`_kernel` (float64)."""
        raise NotImplementedError

    def forward(self) -> None:
        d, self.mu = self._kernel()
        self.kernel = d.to(self.y0)
        # a learnable order: mu is an input of the local step (which returns mu f), so that
        # the step's VJP gives its cotangent <ubar_{m+1}, f_m>
        self.scale = self.order_input(self.mu)
        outer = 1.0 if self.scale else self.mu
        self.buf = buf = self.buffer()
        buf[0].zero_()
        # u_{m+1} is written after its history sum: the later rows are free for partial sums
        past = self.past(buf, self.kernel, range(1, self.n + 1), scratch=True)
        y = self.y0
        for m in range(self.n):
            self.emit(m, y)
            (f,) = self.mode.record(m, self._local, y, *self.scale)
            torch.add(past(m + 1), f, alpha=outer, out=buf[m + 1])
            y = self.y0 + buf[m + 1]
        self.emit(self.n, y)

    def _local(self, m: int, y: torch.Tensor, *scale: torch.Tensor) -> tuple[torch.Tensor]:
        f = self.field(self.times[m], y)
        return (scale[0] * f,) if scale else (f,)

    def backward(self) -> torch.Tensor:
        buf, n = self.buf, self.n
        d_mu = 0.0
        kernel = self.kernel
        if self.learn_order:
            d_kernel, d_mu = self._derivative()
            kernel = self.adjoint_kernel(kernel, lambda: d_kernel)
        # rows < m hold u_m, read again only to rebuild inputs; otherwise free for partial sums
        # (not with a learnable order: its two kernels keep their partial sums apart)
        future = self.future([(buf, kernel)], range(n - 1, 0, -1),
                             scratch=not self.mode.needs_inputs)
        y0_bar = torch.zeros_like(self.y0)
        for m in range(n, -1, -1):
            y_bar = self.loss_cotangent(m)
            if m < n:
                inputs = (self.y0 + buf[m], *self.scale) if self.mode.needs_inputs else None
                cotangent = buf[m + 1] if self.scale else self.mu * buf[m + 1]
                vjp, *mu_bar = self.mode.vjp(m, self._local, inputs, (cotangent,))
                if mu_bar:
                    self.add_order(mu_bar[0], d_mu)
                y_bar = add(y_bar, vjp)
            if y_bar is not None:
                y0_bar += y_bar
            if m:  # u_0 = 0 is a constant: its slot needs no cotangent
                u_bar = self.order_term(future(m), buf[m]) if m < n else None  # buf[m]: u_m
                u_bar = add(y_bar, u_bar)
                buf[m] = 0.0 if u_bar is None else u_bar
        return y0_bar


class GrunwaldLetnikov(_Difference):
    """Explicit Grunwald-Letnikov scheme on ``y - y0`` (the Caputo derivative).

    ``h^-a sum_{l=0}^{m+1} w_l (y_{m+1-l} - y0) = f(t_m, y_m)`` with
    ``w_l = (-1)^l binom(a, l)`` (Podlubny 1999, *Fractional Differential Equations*, Sec. 7.2;
    Scherer, Kalla, Tang & Huang 2011, Comput. Math. Appl. 62:902-917).  Global order 1 for
    smooth solutions (Lubich 1986, SIAM J. Math. Anal. 17:704-719); with ``a = 1`` it is forward
    Euler.
    """

    def _kernel(self) -> tuple[torch.Tensor, float]:
        return -grunwald_letnikov_weights(self.alpha, self.n), self.grid.h**self.alpha

    def _derivative(self) -> tuple[torch.Tensor, float]:
        h = self.grid.h
        return -grunwald_letnikov_derivative(self.alpha, self.n), h**self.alpha * math.log(h)


class L1(_Difference):
    """Explicit L1 scheme.

    ``h^-a / Gamma(2 - a) sum_{l=0}^{m} b_l (y_{m+1-l} - y_{m-l}) = f(t_m, y_m)`` with
    ``b_l = (l + 1)^(1-a) - l^(1-a)`` (Oldham & Spanier 1974; Lin & Xu 2007, J. Comput. Phys.
    225:1533-1552).  The L1 formula is of order ``2 - a``; taking ``f`` at ``t_m`` (explicit)
    makes the global order 1 for smooth solutions.  With ``a = 1`` it is forward Euler.
    """

    def _kernel(self) -> tuple[torch.Tensor, float]:
        b = l1_weights(self.alpha, self.n)
        d = torch.zeros_like(b)
        d[1:] = b[:-1] - b[1:]
        return d, math.gamma(2 - self.alpha) * self.grid.h**self.alpha

    def _derivative(self) -> tuple[torch.Tensor, float]:
        a, h = self.alpha, self.grid.h
        db = l1_derivative(a, self.n)
        dd = torch.zeros_like(db)
        dd[1:] = db[:-1] - db[1:]
        mu = math.gamma(2 - a) * h**a
        return dd, mu * (math.log(h) - digamma(2 - a))

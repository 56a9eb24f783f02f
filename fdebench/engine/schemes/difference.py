"""Schemes that discretise the Caputo derivative of ``u = y - y0`` directly.

Both are explicit and share one recurrence,
``u_{m+1} = sum_{l=1}^{m} d_l u_{m+1-l} + mu f(t_m, y_m)``, ``y_m = y0 + u_m``,
so the history buffer holds the trajectory ``u`` itself; the backward pass overwrites it, newest
first, with the adjoint states.  Memory: one ``(N + 1) x |y|`` buffer in adjoint mode.
"""

from __future__ import annotations

import math

import torch

from ..weights import grunwald_letnikov_weights, l1_weights
from .base import Scheme, add

__all__ = ["L1", "GrunwaldLetnikov"]


class _Difference(Scheme):
    def _kernel(self) -> tuple[torch.Tensor, float]:
        """``(d, mu)`` with ``d[l]`` the weight of lag ``l`` (``d[0]`` unused)."""
        raise NotImplementedError

    def forward(self) -> None:
        d, self.mu = self._kernel()
        self.kernel = d.to(self.y0)
        self.buf = buf = self.buffer()
        buf[0].zero_()
        # u_{m+1} is written after its history sum: the later rows are free for partial sums
        past = self.past(buf, self.kernel, range(1, self.n + 1), scratch=True)
        y = self.y0
        for m in range(self.n):
            self.emit(m, y)
            (f,) = self.mode.record(m, self._local, y)
            torch.add(past(m + 1), f, alpha=self.mu, out=buf[m + 1])
            y = self.y0 + buf[m + 1]
        self.emit(self.n, y)

    def _local(self, m: int, y: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.field(self.times[m], y),)

    def backward(self) -> torch.Tensor:
        buf, n = self.buf, self.n
        # rows < m hold u_m, read again only to rebuild inputs; otherwise free for partial sums
        future = self.future([(buf, self.kernel)], range(n - 1, 0, -1),
                             scratch=not self.mode.needs_inputs)
        y0_bar = torch.zeros_like(self.y0)
        for m in range(n, -1, -1):
            y_bar = self.loss_cotangent(m)
            if m < n:
                inputs = (self.y0 + buf[m],) if self.mode.needs_inputs else None
                (vjp,) = self.mode.vjp(m, self._local, inputs, (self.mu * buf[m + 1],))
                y_bar = add(y_bar, vjp)
            if y_bar is not None:
                y0_bar += y_bar
            if m:  # u_0 = 0 is a constant: its slot needs no cotangent
                u_bar = future(m) if m < n else None
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

"""Product-integration schemes on the Volterra form
``y(t) = y0 + 1/Gamma(a) int_0^t (t - s)^(a-1) f(s, y(s)) ds``.

The history buffer holds ``f_j = f(t_j, y_j)``; in the backward pass its slots are reused, newest
first, for the adjoint states, and (in adjoint mode) each ``y_j`` is rebuilt from the slots that
still hold ``f`` values.  Memory: one ``(N + 1) x |y|`` buffer (euler) or two (abm).

A learnable order: the kernels (and abm's first corrector column and ``kappa = h^a /
Gamma(a + 2)``) depend on alpha.  ``dL/dalpha = sum_j <f_j, sum_{m>j} k'[m - j] ybar_m>`` over
each kernel (``ybar``: the cotangent of what the kernel sums into: ``y_m``, or for abm the
predictor and the corrector base), from the adjoint's ``future`` sums with ``k'`` stacked on
``k`` (the same rows read once; no extra buffer, the ``fast`` sums' partial sums then need their
bounded block, within the same workspace bound), plus for abm ``kappa' <ybar_m, f(t_m,
y^P_m)>``, from the corrector step's VJP (``kappa`` is an input of the step; ``direct`` keeps the
field value it multiplies: at most one more ``|y|`` per step).
"""

from __future__ import annotations

import math

import torch

from ..weights import (
    digamma,
    product_rectangle_derivative,
    product_rectangle_weights,
    product_trapezoid_first_column,
    product_trapezoid_first_column_derivative,
    product_trapezoid_weights,
    product_trapezoid_weights_derivative,
)
from .base import Scheme, add

__all__ = ["FractionalABM", "FractionalEuler"]


class FractionalEuler(Scheme):
    """Fractional forward Euler (explicit product-rectangle rule, Adams-Bashforth 1).

    ``y_m = y0 + h^a / Gamma(a + 1) sum_{j<m} ((m - j)^a - (m - j - 1)^a) f(t_j, y_j)``
    (Garrappa 2018, Mathematics 6(2):16, eq. (10); the predictor of Diethelm, Ford & Freed
    2002).  Global order 1 when ``f(t, y(t))`` is smooth in ``t`` (Garrappa 2018, Sec. 3.1);
    with ``a = 1`` the weights are all ``h`` (use the one-step form instead).
    """

    def _weights(self) -> torch.Tensor:
        k = product_rectangle_weights(self.alpha, self.n, self.grid.h)
        return k.to(self.y0)

    def forward(self) -> None:
        self.kernel = self._weights()
        self.buf = buf = self.buffer()
        # buf[j] is written after y_j is known: the later rows are free for partial sums
        past = self.past(buf, self.kernel, range(1, self.n + 1), scratch=True)
        for j in range(self.n + 1):
            y = self.y0 + past(j) if j else self.y0
            self.emit(j, y)
            if j < self.n:
                (f,) = self.mode.record(j, self._local, y)
                buf[j] = f

    def _local(self, j: int, y: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.field(self.times[j], y),)

    def _derivative(self) -> torch.Tensor:
        return product_rectangle_derivative(self.alpha, self.n, self.grid.h)

    def backward(self) -> torch.Tensor:
        buf, kernel, n = self.buf, self.kernel, self.n
        rebuild = self.mode.needs_inputs  # y_j from the f values still in rows < j
        # without rebuilding, rows < j (the f values) are dead: the future sums may use them
        # (not with a learnable order: its two kernels keep their partial sums apart)
        future = self.future([(buf, self.adjoint_kernel(kernel, self._derivative))],
                             range(n - 1, -1, -1), scratch=not rebuild,
                             share=0.5 if rebuild else 1.0)
        past = self.past(buf, kernel, range(n - 1, 0, -1), share=0.5) if rebuild else None
        y0_bar = torch.zeros_like(self.y0)
        for j in range(n, -1, -1):
            y_bar = self.loss_cotangent(j)
            if j < n:
                f_bar = self.order_term(future(j), buf[j])  # buf[j] still holds f_j
                inputs = (self.y0 + past(j) if j else self.y0,) if rebuild else None
                (vjp,) = self.mode.vjp(j, self._local, inputs, (f_bar,))
                y_bar = add(y_bar, vjp)
            if y_bar is None:
                buf[j].zero_()
            else:
                buf[j] = y_bar
                y0_bar += y_bar
        return y0_bar


class FractionalABM(Scheme):
    """Diethelm's fractional Adams-Bashforth-Moulton predictor-corrector (PECE, one correction).

    Predictor: the product-rectangle rule (:class:`FractionalEuler`).  Corrector: the product
    trapezoidal rule
    ``y_m = y0 + h^a/Gamma(a+2) (f(t_m, y^P_m) + sum_{j<m} a_{j,m} f(t_j, y_j))``
    (Diethelm, Ford & Freed 2002, Nonlinear Dyn. 29:3-22, eqs. (1.5)-(1.6)).  Global order
    ``min(2, 1 + a)`` when ``f(t, y(t))`` is smooth in ``t`` (Diethelm, Ford & Freed 2004,
    Numer. Algorithms 36:31-52, Thm. 3.2).  Two evaluations of ``f`` per step.
    """

    def _weights(self) -> None:
        a, n, h = self.alpha, self.n, self.grid.h
        self.k_pred = product_rectangle_weights(a, n, h).to(self.y0)
        self.k_corr = product_trapezoid_weights(a, n, h).to(self.y0)
        self.first = product_trapezoid_first_column(a, n, h).to(self.y0)
        # the corrector weight of f_0 is `first[m]`, not the Toeplitz `k_corr[m]`
        self.first_fix = (self.first - self.k_corr).tolist()
        self.kappa = h**a / math.gamma(a + 2)

    def _derivatives(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """The alpha-derivatives of ``k_pred``, ``k_corr``, ``first`` (float64) and ``kappa``."""
        a, n, h = self.alpha, self.n, self.grid.h
        return (product_rectangle_derivative(a, n, h),
                product_trapezoid_weights_derivative(a, n, h),
                product_trapezoid_first_column_derivative(a, n, h),
                self.kappa * (math.log(h) - digamma(a + 2)))

    def forward(self) -> None:
        self._weights()
        # a learnable order: kappa is an input of the corrector step, whose VJP then gives
        # its cotangent <ybar_m, f(t_m, y^P_m)>
        self.scale = self.order_input(self.kappa)
        self.buf = buf = self.buffer()
        # two sums per target: no single free row to hold them (no scratch)
        past = self.past(buf, torch.stack([self.k_pred, self.k_corr]), range(1, self.n + 1))
        self.emit(0, self.y0)
        (buf[0],) = self.mode.record(0, self._first, self.y0)
        for m in range(1, self.n + 1):
            inputs = self._inputs(past, buf, m)
            if m < self.n:
                y, buf[m] = self.mode.record(m, self._step, *inputs)
            else:
                (y,) = self.mode.record(m, self._last, *inputs)
            self.emit(m, y)

    def _inputs(self, past, buf, m: int) -> tuple[torch.Tensor, ...]:
        """``(y^P_m, y0 + corrector history)`` from the stored ``f_0 .. f_{m-1}`` (and
        ``kappa`` for a learnable order)."""
        pred, corr = past(m)
        base = corr.add_(buf[0], alpha=self.first_fix[m]).add_(self.y0)
        return self.y0 + pred, base, *self.scale

    def _first(self, j: int, y: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.field(self.times[0], y),)

    def _last(self, m: int, y_pred: torch.Tensor, base: torch.Tensor,
              *scale: torch.Tensor) -> tuple[torch.Tensor]:
        kappa = scale[0] if scale else self.kappa
        return (base + kappa * self.field(self.times[m], y_pred),)

    def _step(self, m: int, y_pred: torch.Tensor, base: torch.Tensor, *scale: torch.Tensor):
        (y,) = self._last(m, y_pred, base, *scale)
        return y, self.field(self.times[m], y)

    def backward(self) -> torch.Tensor:
        n, buf = self.n, self.buf
        pred_bar = self.buffer()  # cotangents of y^P_m; `buf` takes those of the corrector base
        rebuild = self.mode.needs_inputs  # the inputs from the f values still in rows < m
        k_pred, k_corr, first, d_kappa = self.k_pred, self.k_corr, self.first, 0.0
        if self.learn_order:
            d_pred, d_corr, d_first, d_kappa = self._derivatives()
            k_pred = self.adjoint_kernel(k_pred, lambda: d_pred)
            k_corr = self.adjoint_kernel(k_corr, lambda: d_corr)
            first = self.adjoint_kernel(first, lambda: d_first)
        future = self.future([(buf, k_corr), (pred_bar, k_pred)], range(n - 1, 0, -1),
                             scratch=not rebuild, share=0.5 if rebuild else 1.0)
        past = None
        if rebuild:
            kernels = torch.stack([self.k_pred, self.k_corr])
            past = self.past(buf, kernels, range(n, 0, -1), share=0.5)
        y0_bar = torch.zeros_like(self.y0)
        for m in range(n, 0, -1):
            inputs = self._inputs(past, buf, m) if rebuild else None
            if m < n:
                f_bar = self.order_term(future(m), buf[m])  # buf[m] still holds f_m
                fn, cots = self._step, (self.loss_cotangent(m), f_bar)
            else:
                fn, cots = self._last, (self.loss_cotangent(m),)
            p_bar, b_bar, *kappa_bar = self.mode.vjp(m, fn, inputs, cots)
            if kappa_bar:
                self.add_order(kappa_bar[0], d_kappa)
            for target, value in ((pred_bar[m], p_bar), (buf[m], b_bar)):
                if value is None:
                    target.zero_()
                else:
                    target.copy_(value)
                    y0_bar += value
        f_bar = self.order_term(first[..., 1:] @ buf[1:] + k_pred[..., 1:] @ pred_bar[1:], buf[0])
        (vjp,) = self.mode.vjp(0, self._first, (self.y0,), (f_bar,))
        return y0_bar + add(self.loss_cotangent(0), vjp)

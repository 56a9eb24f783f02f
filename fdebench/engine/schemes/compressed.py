"""The fractional schemes with a compressed history (``fdeint(..., history="soe")``).

Each scheme's history kernel is replaced, for every lag but the newest, by a sum of ``K``
exponentials (:mod:`fdebench.engine.soe`, relative error ``tol`` on ``[h, T]``), so the history
becomes ``K`` modes with one-step recurrences and the state at step ``n`` is ``(y_n, G^n)``,
``G^n`` of shape ``(K, |y|)``: ``(K + 1) |y|`` in all, no ``(N + 1) |y|`` buffer.  This is an
*approximation* of the scheme (the fast methods of Jiang, Zhang, Zhang & Zhang 2017, Commun.
Comput. Phys. 21:650-678, for L1, and of McLean 2018, arXiv:1606.00123, and Baffet 2019,
arXiv:1801.06095, for product integration): each history weight moves by a relative ``tol`` at
most, the newest one is exact, and the solution moves by ``O(tol)`` (measured in docs/soe.md
and bounded in ``tests/test_engine_soe.py``).  The order of the scheme is unchanged while its
error exceeds that.

With ``d_l = exp(-lambda_l h)`` the modes follow ``G^{n+1} = d o (G^n + x_n)`` (``x``: the
scheme's history values, ``f`` or ``y_{n+1} - y_n``), computed as ``X - q o X``, ``X = G^n +
x_n``, ``q = 1 - d`` (``q`` is exact in float32 where ``d`` would round to 1 for the slow modes,
and the rounding of ``d`` would compound over ``N`` steps).

A step is split as in the other schemes: a *local* part that calls the field (through the
gradient mode) and linear mode updates differentiated by hand; the adjoint modes
``Gbar^n = d o Gbar^{n+1} + (coefficients) x (the step's cotangents)`` run backward in the same
form, so the backward pass is the exact discrete adjoint of the compressed scheme.  The scheme
exposes :meth:`Compressed.step` (one step from any state), so that ``gradient="revolve"``
restarts it from checkpoints of ``(y_n, G^n)``.  The coefficients are integrals of the SOE over
one step, in float64 from ``phi_0(z) = int_0^1 e^(-z s) ds``, ``phi_1(z) = int_0^1 e^(-z s) s ds``
(``z = lambda h``; a Taylor series below ``z = 0.5``, where the closed forms cancel).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..soe import SOE, sum_of_exponentials
from .base import Scheme, add
from .onestep import _replayed

if TYPE_CHECKING:
    from ..grid import Grid
    from ..mode import GradientMode
    from .base import Field

__all__ = ["Compressed", "CompressedABM", "CompressedEuler", "CompressedL1"]

State = tuple[torch.Tensor, torch.Tensor]
Run = Callable[..., tuple[torch.Tensor, ...]]  # GradientMode.record's signature


def phi(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(int_0^1 e^(-z s) ds, int_0^1 e^(-z s) s ds)`` for ``z >= 0`` (float64)."""
    z = np.asarray(z, dtype=np.float64)
    small = z < 0.5
    zs = np.where(small, 1.0, z)
    phi0 = np.where(small, 0.0, -np.expm1(-zs) / zs)
    phi1 = np.where(small, 0.0, (-np.expm1(-zs) - zs * np.exp(-zs)) / zs**2)
    term = np.ones_like(z)  # (-z)^k / k!; 24 terms reach 0.5^24 / 24! ~ 1e-31
    series0, series1 = np.zeros_like(z), np.zeros_like(z)
    for k in range(24):
        series0 += term / (k + 1)
        series1 += term / (k + 2)
        term = term * (-z) / (k + 1)
    return np.where(small, series0, phi0), np.where(small, series1, phi1)


class Compressed(Scheme):
    """The shared forward and backward passes; a subclass defines :meth:`_coefficients`,
    :meth:`step` and :meth:`_reverse`."""

    def __init__(self, field: Field, y0: torch.Tensor, grid: Grid, alpha: float,
                 mode: GradientMode, history: str = "soe", learn_order: bool = False,
                 tol: float = 1e-8, *, host_times: bool = False) -> None:
        super().__init__(field, y0, grid, alpha, mode, history, learn_order,
                         host_times=host_times)
        self.tol = tol
        self.soe: SOE | None = None

    def _options(self) -> dict[str, float]:
        return {"tol": self.tol}

    # ---- the SOE and its step integrals ------------------------------------------------------
    def kernel_soe(self, order: float) -> SOE:
        """The SOE of ``t^(order-1) / Gamma(order)`` on ``[h, T]`` (cached by order, N, tol)."""
        h = self.grid.h
        return sum_of_exponentials(order, h, max(self.n, 1) * h, self.tol)

    def modes(self, soe: SOE) -> dict[str, np.ndarray]:
        """Per mode (float64): ``z = lambda h``, ``q = 1 - d``, ``d``, and ``w_l e^(-lambda_l t)``
        integrated over one step ``v`` in ``[0, h]`` (``v``: the distance from the step's newer
        end, ``t = (L - 1) h + v``; divided by ``d^(L-1)``) against 1 (``rect``), against the
        hat function of the step's older end, ``v / h`` (``left``), and of its newer end,
        ``1 - v / h`` (``right``)."""
        rates, weights = soe.rates.numpy(), soe.weights.numpy()
        z = rates * self.grid.h
        phi0, phi1 = phi(z)
        scale = weights * self.grid.h
        return {"z": z, "q": -np.expm1(-z), "d": np.exp(-z), "rect": scale * phi0,
                "left": scale * phi1, "right": scale * (phi0 - phi1)}

    def tensor(self, values: np.ndarray) -> torch.Tensor:
        """A float64 array as a tensor of the state's dtype and device."""
        return torch.from_numpy(np.ascontiguousarray(values)).to(self.y0)

    @staticmethod
    def decay(modes: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """``d o modes`` as ``modes - q o modes`` (in place); ``q`` of shape ``(K, 1)``."""
        return modes.addcmul_(q, modes, value=-1.0)

    # ---- the passes -----------------------------------------------------------------------
    def initial_state(self) -> State:
        return self.y0, self.y0.new_zeros(self.k_modes, self.y0.numel())

    def advance(self, n: int, state: State) -> State:
        """Step ``n`` from ``state`` without a graph (recomputation for ``revolve``)."""
        with torch.no_grad():
            return self.step(n, state, _call)

    def forward(self) -> None:
        self._coefficients()
        state = self.initial_state()
        for n in range(self.n):
            self.emit(n, state[0])
            self.mode.snapshot(n, state)
            state = self.step(n, state, self.mode.record)
        self.emit(self.n, state[0])

    def backward(self) -> torch.Tensor:
        states = self.mode.replay(self) if self.mode.replays else None
        modes_bar = self.y0.new_zeros(self.k_modes, self.y0.numel())
        self.y0_bar = torch.zeros_like(self.y0)
        self._start_backward()
        zero = torch.zeros_like(self.y0)
        y_bar = self.loss_cotangent(self.n)
        for n in range(self.n - 1, -1, -1):
            state = _replayed(states, n) if states is not None else None
            y_bar = zero if y_bar is None else y_bar  # None: no output depends on y_{n+1}
            y_bar = add(self.loss_cotangent(n), self._reverse(n, state, y_bar, modes_bar))
        return self.y0_bar if y_bar is None else self.y0_bar + y_bar

    # ---- per scheme -------------------------------------------------------------------------
    k_modes = 0

    def _coefficients(self) -> None:
        raise NotImplementedError

    def _start_backward(self) -> None:
        """Called before the backward pass's first step."""

    def step(self, n: int, state: State, run: Run) -> State:
        """``(y_{n+1}, G^{n+1})`` from ``(y_n, G^n)``; ``run`` evaluates the local part (the
        gradient mode's ``record``, or a plain call).  Never modifies ``state``."""
        raise NotImplementedError

    def _reverse(self, n: int, state: State | None, y_bar: torch.Tensor,
                 modes_bar: torch.Tensor) -> torch.Tensor:
        """Step ``n``'s adjoint: from the cotangent ``y_bar`` of ``y_{n+1}`` and (in place)
        ``modes_bar`` of ``G^{n+1}``, leave that of ``G^n`` in ``modes_bar``, add ``y0``'s to
        ``self.y0_bar`` and return the step's part of ``y_n``'s."""
        raise NotImplementedError

    def _field(self, n: int, y: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.field(self.times[n], y),)


class CompressedEuler(Compressed):
    """Fractional forward Euler (product rectangle) with an SOE history.

    ``y_{n+1} = y0 + k_1 f_n + sum_l c_l G_l^n``, ``G^{n+1} = d o (G^n + f_n)``,
    ``k_1 = h^a / Gamma(a + 1)`` (the exact newest weight), ``c_l = w_l int_0^h e^(-lambda_l s)
    ds``: the lags ``L >= 2`` of :class:`~fdebench.engine.schemes.product.FractionalEuler`,
    ``int_{(L-1)h}^{Lh} t^(a-1) / Gamma(a) dt``, with the SOE in place of the kernel (Garrappa
    2018, Mathematics 6(2):16, eq. (10); McLean 2018, arXiv:1606.00123).  Order 1, as the exact
    scheme, up to an ``O(tol)`` perturbation.
    """

    def _coefficients(self) -> None:
        self.soe = self.kernel_soe(self.alpha)
        self.k_modes = len(self.soe)
        m = self.modes(self.soe)
        self.k1 = self.grid.h**self.alpha / math.gamma(self.alpha + 1)
        self.c, self.d = self.tensor(m["rect"]), self.tensor(m["d"])
        self.q = self.tensor(m["q"]).unsqueeze(1)

    def step(self, n, state, run):
        y, modes = state
        (f,) = run(n, self._field, y)
        y_next = torch.addmv(self.y0, modes.t(), self.c).add_(f, alpha=self.k1)
        return y_next, self.decay(modes + f, self.q)

    def _reverse(self, n, state, y_bar, modes_bar):
        f_bar = torch.addmv(y_bar, modes_bar.t(), self.d, beta=self.k1)
        inputs = (state[0],) if state is not None else None
        (vjp,) = self.mode.vjp(n, self._field, inputs, (f_bar,))
        self.decay(modes_bar, self.q).addr_(self.c, y_bar)
        self.y0_bar += y_bar
        return vjp


class CompressedABM(Compressed):
    """Diethelm's fractional Adams-Bashforth-Moulton method (PECE) with an SOE history.

    Predictor as :class:`CompressedEuler`.  Corrector: the product trapezoid rule (Diethelm,
    Ford & Freed 2002, Nonlinear Dyn. 29:3-22, eq. (1.6)) integrates the piecewise-linear
    interpolant of ``f``; step ``[t_i, t_{i+1}]`` at lag ``L = n + 1 - i`` contributes
    ``A_L f_i + B_L f_{i+1}`` with ``A_L, B_L = int_0^h k((L-1)h + s) (s/h, 1 - s/h) ds``.  The
    newest step is exact (``A_1 = a h^a / Gamma(a + 2)``, ``B_1 = h^a / Gamma(a + 2)``, the
    weight of ``f(t_{n+1}, y^P)``); the others take the SOE, which gives two coefficients per
    mode, ``alpha_l = w_l int_0^h e^(-lambda_l s) s/h ds`` and ``beta_l`` with ``1 - s/h``:

        y_{n+1} = y0 + B_1 f(t_{n+1}, y^P) + (A_1 + sum_l beta_l d_l) f_n
                  + sum_l (alpha_l + beta_l d_l) G_l^n - (sum_l beta_l d_l^(n+1)) f_0

    (the last term removes the right-end weight of ``f_0``, which starts the interpolant; for
    ``n = 0`` it cancels the ``beta d`` part of ``f_n``'s weight).  The modes ``G`` are the
    predictor's.  Order ``min(2, 1 + a)`` as the exact scheme, up to an ``O(tol)``
    perturbation.  Two field evaluations per step.
    """

    def _coefficients(self) -> None:
        a, h = self.alpha, self.grid.h
        self.soe = self.kernel_soe(a)
        self.k_modes = len(self.soe)
        m = self.modes(self.soe)
        self.k1 = h**a / math.gamma(a + 1)
        self.kappa = h**a / math.gamma(a + 2)  # B_1
        first = a * self.kappa  # A_1
        self.newest = (first, first + float(np.sum(m["right"] * m["d"])))  # n = 0, n >= 1
        self.c, self.d = self.tensor(m["rect"]), self.tensor(m["d"])
        self.e = self.tensor(m["left"] + m["right"] * m["d"])
        self.q = self.tensor(m["q"]).unsqueeze(1)
        steps = np.arange(1, self.n + 1, dtype=np.float64)  # n + 1 for n = 0..N-1
        self.start_weight = (np.exp(-np.outer(steps, m["z"])) @ m["right"]).tolist()
        self.f0: torch.Tensor | None = None

    def _bases(self, n: int, modes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(y0 + c . G^n, y0 + e . G^n - s_{n+1} f_0)``: the predictor's and corrector's
        history (with ``y0``)."""
        if n == 0:
            return self.y0, self.y0
        pred = torch.addmv(self.y0, modes.t(), self.c)
        corr = torch.addmv(self.y0, modes.t(), self.e).add_(self.f0, alpha=-self.start_weight[n])
        return pred, corr

    def _local(self, n: int, y: torch.Tensor, pred: torch.Tensor,
               corr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.field(self.times[n], y)
        y_pred = pred + self.k1 * f
        newest = self.newest[min(n, 1)]
        return f, corr + newest * f + self.kappa * self.field(self.times[n + 1], y_pred)

    def step(self, n, state, run):
        y, modes = state
        f, y_next = run(n, self._local, y, *self._bases(n, modes))
        if n == 0:
            self.f0 = f
        return y_next, self.decay(modes + f, self.q)

    def _start_backward(self) -> None:
        self.f0_bar = torch.zeros_like(self.y0)  # f_0's cotangent from the corrector bases

    def _reverse(self, n, state, y_bar, modes_bar):
        f_bar = modes_bar.t() @ self.d
        if n == 0:
            f_bar += self.f0_bar
        inputs = (state[0], *self._bases(n, state[1])) if state is not None else None
        y_vjp, pred_bar, corr_bar = self.mode.vjp(n, self._local, inputs, (f_bar, y_bar))
        self.decay(modes_bar, self.q)
        for coefficient, bar in ((self.c, pred_bar), (self.e, corr_bar)):
            if bar is not None:
                modes_bar.addr_(coefficient, bar)
                self.y0_bar += bar
        if n and corr_bar is not None:
            self.f0_bar.add_(corr_bar, alpha=-self.start_weight[n])
        return y_vjp


class CompressedL1(Compressed):
    """The fast L1 scheme (Jiang, Zhang, Zhang & Zhang 2017, Commun. Comput. Phys. 21:650-678,
    eqs. (2.5)-(2.9)), explicit as :class:`~fdebench.engine.schemes.difference.L1`.

    The L1 formula integrates the kernel ``t^(-a) / Gamma(1 - a)`` against the piecewise
    constant ``y'``; the newest step is exact, the others take the SOE of that kernel (order
    ``1 - a``): with ``U^n = sum_{j<n} d^(n-j) (y_{j+1} - y_j)``,

        (y_{n+1} - y_n) / mu + (1/h) sum_l c_l U_l^n = f(t_n, y_n),
        mu = Gamma(2 - a) h^a,  c_l = w_l int_0^h e^(-lambda_l s) ds,

    and ``U^{n+1} = d o (U^n + y_{n+1} - y_n)``.  Order 1 (explicit ``f``), as the exact scheme,
    up to an ``O(tol)`` perturbation.
    """

    def _coefficients(self) -> None:
        a, h = self.alpha, self.grid.h
        self.soe = self.kernel_soe(1 - a)
        self.k_modes = len(self.soe)
        m = self.modes(self.soe)
        self.mu = math.gamma(2 - a) * h**a
        self.c = self.tensor(m["rect"] * (-self.mu / h))
        self.d = self.tensor(m["d"])
        self.q = self.tensor(m["q"]).unsqueeze(1)

    def step(self, n, state, run):
        y, modes = state
        (f,) = run(n, self._field, y)
        change = torch.mv(modes.t(), self.c).add_(f, alpha=self.mu)
        return y + change, self.decay(modes + change, self.q)

    def _reverse(self, n, state, y_bar, modes_bar):
        change_bar = torch.addmv(y_bar, modes_bar.t(), self.d)
        inputs = (state[0],) if state is not None else None
        (vjp,) = self.mode.vjp(n, self._field, inputs, (self.mu * change_bar,))
        self.decay(modes_bar, self.q).addr_(self.c, change_bar)
        return add(y_bar, vjp)


def _call(key: int, fn: Callable[..., tuple[torch.Tensor, ...]],
          *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return fn(key, *inputs)


"""``paper``: the adjoint published with arXiv:2503.16666 (AAAI 2025), reimplemented.

Kang, Zhao, Song, Ji & Tay (2025), "Efficient training of neural fractional-order differential
equation via adjoint backpropagation", arXiv:2503.16666, and its code ``torchfde`` (the ``*-f``
adjoints, e.g. ``predictor-f``).  Kept to reproduce and quantify the published method; it is not
a recommended mode (see :class:`PaperAdjoint`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..mode import FieldVJP, GradientMode
from .base import TrajectoryMode, reversed_grid

if TYPE_CHECKING:
    from ..mode import SolveView

__all__ = ["PaperAdjoint"]


class PaperAdjoint(TrajectoryMode):
    """The bounded Caputo-type adjoint, solved with the forward scheme's own weights.

    In reversed time ``tau = T - s`` (``T = t_N``) it solves, for ``lam = mu + G``,

        D^a_tau mu = J(T - tau)^T (mu + G(T - tau)),   mu(0) = 0,   G(s) = sum_i [s <= T_i] g_i,

    i.e. ``lam(s) = G(s) + I^a_{T-}[J^T lam](s)`` (an output between two grid times enters
    ``G`` through the cotangents of the two grid values it interpolates), with ``J`` at the
    stored forward states, by
    the forward method itself (the same scheme class, weights and step: ``euler``, ``abm``,
    ``l1``, ``gl``, or the classical one-step method at ``a = 1``; ``rk4``'s half steps take the
    linear interpolation of the stored states), then

        dL/dtheta ~ h sum_{k=0}^{N-1} lam_k^T f_theta(t_{N-k}, z_{N-k}),   dL/dz0 = lam(t_0).

    For ``euler`` this is torchfde's ``predictor-f``: ``lam_{k+1} = g + sum_{i<=k} c_{k+1-i}
    J_i^T lam_i`` with the product-rectangle weights ``c_m``, the parameter sum over the nodes
    ``t_N .. t_1``.

    What it converges to: the bounded adjoint is not the adjoint of the Caputo problem for
    ``a < 1`` (that one is singular, ``~ (T - s)^(a-1)``; see ``continuous``).  For
    ``f = theta`` it gives ``dz(T)/dtheta = T`` instead of ``T^a / Gamma(a + 1)``; for
    ``D^a y = theta y`` its ``theta``-gradient tends to ``y0 T E^2_{a,2}(theta T^a)`` instead of
    ``y0 T^a E^2_{a,a+1}(theta T^a)`` (Prabhakar functions), with order 1 in ``h`` (``1 + a``
    with ``abm``); its ``y0``-gradient there is right, since ``J`` is constant.  At ``a = 1``
    it is the classical continuous adjoint and converges to the exact gradient, with order 1
    whatever the method: the parameter sum is the right-endpoint rule.
    Memory: the trajectory and, for ``a < 1``, the adjoint scheme's history buffer: ``2 (N + 1)
    x |y|`` (``(N + 1) x |y|`` at ``a = 1``).  Cost: the
    scheme's field evaluations, each one VJP, plus one parameter VJP per step.
    """

    name = "paper"

    @classmethod
    def check_order(cls) -> str | None:
        return ("gives no derivative with respect to alpha (the published method has none: "
                "torchfde reads the order with beta.item())")

    def backward(self, view: SolveView) -> torch.Tensor:
        problem = _ReversedAdjoint(self, view)
        # the right-hand side finds the stored state from tau: host times, no device sync
        adjoint = view.solver(problem, torch.zeros_like(view.y0), reversed_grid(view.grid),
                              _Watch(problem.parameter_term), host_times=True)
        mu_start = adjoint.solve()[-1]
        self.states = None
        return mu_start + problem.source(0)


class _ReversedAdjoint:
    """``(tau, mu) -> J(T - tau)^T (mu + G(T - tau))`` at the stored states, and the parameter
    quadrature.  Positions on the forward grid are counted in half steps, ``key = 2 j``."""

    def __init__(self, mode: PaperAdjoint, view: SolveView) -> None:
        self.mode, self.view, self.n, self.h = mode, view, view.n, view.grid.h
        # an output between two grid times is their linear interpolation: its cotangent
        # enters as the cotangents of those two grid values (what torchfde, whose outputs lie
        # on the grid, would see), so G jumps at grid times only
        used = sorted(view.grid.stencils())
        self.g = torch.stack([view.loss_cotangent(j) for j in used])
        self.positions = torch.tensor(used, dtype=torch.float64, device=self.g.device)
        self._point: tuple[int, FieldVJP] | None = None

    def __call__(self, tau: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        key = 2 * self.n - round(2 * float(tau) / self.h)
        return self.point(key)(mu + self.source(key / 2))

    def parameter_term(self, k: int, mu: torch.Tensor) -> None:
        """``theta_bar += h f_theta^T lam_k`` at ``t_{N-k}``, ``k = 0..N-1``."""
        if k < self.n:
            key = 2 * (self.n - k)
            self.point(key)(mu + self.source(key / 2), self.h, state=False)

    def source(self, position: float) -> torch.Tensor:
        """``G`` at ``s = t_0 + position h``: the cotangents of the grid values at or after
        ``s``."""
        return (self.positions >= position).to(self.g) @ self.g

    def point(self, key: int) -> FieldVJP:
        """The field linearised at half step ``key``; the last one is reused (the schemes
        evaluate a node once more, and the parameter term follows)."""
        if self._point is None or self._point[0] != key:
            j, odd = divmod(key, 2)
            states, times = self.mode.states, self.view.times
            if odd:
                t, z = 0.5 * (times[j] + times[j + 1]), 0.5 * (states[j] + states[j + 1])
            else:
                t, z = times[j], states[j]
            self._point = (key, self.mode.linearize(self.view.field, t, z))
        return self._point[1]


class _Watch(GradientMode):
    """The adjoint scheme's mode: no gradients, and every adjoint value goes to ``on_value``."""

    needs_inputs = False  # nothing is differentiated: one-step schemes need no trajectory

    def __init__(self, on_value) -> None:
        super().__init__([])
        self.on_value = on_value

    def keep(self, j: int, y: torch.Tensor) -> None:
        self.on_value(j, y)

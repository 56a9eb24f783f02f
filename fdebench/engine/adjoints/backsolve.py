"""``backsolve``: the adjoint of Chen et al. (2018) that re-integrates the state backward.

Chen, Rubanova, Bettencourt & Duvenaud, "Neural ordinary differential equations", NeurIPS 2018,
Alg. 1 (torchdiffeq's ``odeint_adjoint``).  ODEs only (``alpha == 1``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..mode import GradientMode
from .base import OwnBackwardMode, reversed_grid

if TYPE_CHECKING:
    from ..mode import SolveView, Steps

__all__ = ["BacksolveAdjoint"]


class BacksolveAdjoint(OwnBackwardMode):
    """Keep the states at the output times only; integrate backward in ``tau = T - t`` the
    augmented system

        dz/dtau = -f(T - tau, z),   da/dtau = J^T a,   dtheta_bar/dtau = f_theta^T a,

    from ``(z_N, g_N, 0)`` with the forward method (forward Euler; Heun for ``abm``; RK4) and
    the same step.  At each grid value that an output uses, its cotangent is added to ``a`` and
    ``z`` is reset to the stored forward value (as torchdiffeq does at every output time).
    Then ``dL/dz0 = a(t_0)`` and ``dL/dtheta = theta_bar(t_0)``.

    Error: the re-integrated ``z`` differs from the forward one by the method's error in each
    direction, so the gradient converges to ``direct``'s (and to the exact one) with the
    method's order ``p`` (1, 2, 4) on a smooth, non-stiff field; on a dissipative field the
    backward re-integration amplifies errors like ``exp(|lambda| T)`` and may diverge.
    Memory: the few stored states and the augmented state ``2 |y| + |theta|``, flat in the
    number of steps ``N``.  Cost: one field evaluation and VJP per stage (1, 2, 4 per step).
    """

    name = "backsolve"

    @classmethod
    def check_order(cls) -> str | None:
        return ("gives no derivative with respect to alpha (it solves classical ODEs only, "
                "where there is no order to learn)")

    @classmethod
    def check(cls, method: str, alpha: float) -> str | None:
        if alpha == 1:
            return None
        return (
            f"needs alpha == 1, got alpha={alpha}: it re-integrates the state backward in time, "
            "and a fractional state cannot be re-integrated backward (it depends on its whole "
            "history, not on the current value alone)"
        )

    def start(self, view: SolveView) -> None:
        self.used = set(view.grid.stencils()) | {view.n}
        self.kept: dict[int, torch.Tensor] = {}

    def keep(self, j: int, y: torch.Tensor) -> None:
        if j in self.used:
            self.kept[j] = y.clone()

    def backward(self, view: SolveView) -> torch.Tensor:
        n, size = view.n, view.y0.numel()
        kept, self.kept = self.kept, {}
        augmented = _Augmented(self, view)
        a = view.loss_cotangent(n)
        state = torch.cat([kept[n], torch.zeros_like(kept[n]) if a is None else a,
                           augmented.zero_params()])
        # the forward method's own step (alpha == 1: a one-step scheme), on the augmented
        # system in reversed time
        steps: Steps = view.solver(augmented, state, reversed_grid(view.grid), GradientMode([]))
        for k in range(n):
            (state,) = steps.advance(k, (state,))
            j = n - 1 - k
            if j in kept:
                state[:size] = kept[j]
                cotangent = view.loss_cotangent(j)
                if cotangent is not None:
                    state[size:2 * size] += cotangent
        self.param_grads = augmented.unflatten(state[2 * size:])
        return state[size:2 * size]


class _Augmented:
    """``(tau, [z, a, theta_bar]) -> [-f, J^T a, f_theta^T a]`` at ``t = T - tau``."""

    def __init__(self, mode: BacksolveAdjoint, view: SolveView) -> None:
        self.mode, self.field = mode, view.field
        self.end = view.times[-1]
        self.size = view.y0.numel()
        self.like = view.y0

    def __call__(self, tau: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        z, a = state[:self.size], state[self.size:2 * self.size]
        point = self.mode.linearize(self.field, self.end - tau, z)
        param_terms: list[torch.Tensor | None] = [None] * len(self.mode.params)
        ja = point(a, param_weight=1.0, into=param_terms)
        return torch.cat([-point.value, ja, self.flatten(param_terms)])

    def zero_params(self) -> torch.Tensor:
        return self.like.new_zeros(sum(p.numel() for p in self.mode.params))

    def flatten(self, grads: list[torch.Tensor | None]) -> torch.Tensor:
        flat = [self.like.new_zeros(p.numel()) if g is None else g.reshape(-1).to(self.like)
                for p, g in zip(self.mode.params, grads, strict=True)]
        return torch.cat([*flat, self.like.new_zeros(0)])

    def unflatten(self, flat: torch.Tensor) -> list[torch.Tensor | None]:
        out, start = [], 0
        for p in self.mode.params:
            out.append(flat[start:start + p.numel()].view_as(p).to(p.dtype))
            start += p.numel()
        return out

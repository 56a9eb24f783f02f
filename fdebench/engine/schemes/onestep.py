"""Classical one-step methods: what every scheme reduces to at ``alpha = 1``.

At ``alpha = 1`` the Caputo derivative is ``dy/dt`` and the schemes lose their memory:
``euler``, ``l1`` and ``gl`` become forward Euler, ``abm`` the Adams-Bashforth-Moulton pair of
orders 1 and 2 in PECE mode (Heun's method), and ``rk4`` is the classical Runge-Kutta method.
The adjoint keeps the trajectory ``y_0 .. y_N`` (``(N + 1) x |y|``) and nothing else;
``revolve`` keeps binomial checkpoints of it.
"""

from __future__ import annotations

import torch

from .base import Scheme, add

__all__ = ["Euler", "Heun", "RungeKutta4"]


class _OneStep(Scheme):
    """A one-step method; its state is ``(y_n,)``, so a mode that :attr:`replays` states
    (``revolve``: binomial checkpoints) restarts it from any of them (:meth:`advance`)."""

    def step(self, j: int, y: torch.Tensor) -> tuple[torch.Tensor]:
        raise NotImplementedError

    def initial_state(self) -> tuple[torch.Tensor]:
        return (self.y0,)

    def advance(self, j: int, state: tuple[torch.Tensor]) -> tuple[torch.Tensor]:
        """Step ``j`` from ``state`` without a graph (recomputation for ``revolve``)."""
        with torch.no_grad():
            return self.step(j, state[0])

    def forward(self) -> None:
        keep = self.mode.needs_inputs and not self.mode.replays
        self.buf = self.buffer() if keep else None
        y = self.y0
        for j in range(self.n):
            self.emit(j, y)
            self.mode.snapshot(j, (y,))
            if self.buf is not None:
                self.buf[j] = y
            (y,) = self.mode.record(j, self.step, y)
        self.emit(self.n, y)

    def backward(self) -> torch.Tensor:
        states = self.mode.replay(self) if self.mode.replays else None
        y_bar = self.loss_cotangent(self.n)
        for j in range(self.n - 1, -1, -1):
            inputs = None
            if self.buf is not None:
                inputs = (self.buf[j],)
            elif states is not None:
                inputs = _replayed(states, j)
            (vjp,) = self.mode.vjp(j, self.step, inputs, (y_bar,))
            y_bar = add(self.loss_cotangent(j), vjp)
        return torch.zeros_like(self.y0) if y_bar is None else y_bar


def _replayed(states, n: int) -> tuple[torch.Tensor, ...]:
    """The next replayed state, which must be step ``n``'s."""
    m, state = next(states)
    if m != n:
        raise RuntimeError(f"replay gave the state of step {m}, step {n} was due")
    return state


class Euler(_OneStep):
    """Forward Euler, ``y_{j+1} = y_j + h f(t_j, y_j)``: order 1."""

    def step(self, j, y):
        return (y + self.grid.h * self.field(self.times[j], y),)


class Heun(_OneStep):
    """Heun's method (AB1 predictor, trapezoidal AM2 corrector, PECE): order 2
    (Hairer, Norsett & Wanner, *Solving ODEs I*, Sec. II.1)."""

    def step(self, j, y):
        h = self.grid.h
        f0 = self.field(self.times[j], y)
        f1 = self.field(self.times[j + 1], y + h * f0)
        return (y + 0.5 * h * (f0 + f1),)


class RungeKutta4(_OneStep):
    """The classical fourth-order Runge-Kutta method (Hairer, Norsett & Wanner, Table 1.2)."""

    def step(self, j, y):
        h, t0, t1 = self.grid.h, self.times[j], self.times[j + 1]
        t_half = 0.5 * (t0 + t1)
        k1 = self.field(t0, y)
        k2 = self.field(t_half, y + 0.5 * h * k1)
        k3 = self.field(t_half, y + 0.5 * h * k2)
        k4 = self.field(t1, y + h * k3)
        return (y + (h / 6) * (k1 + 2 * (k2 + k3) + k4),)

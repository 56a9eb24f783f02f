"""``freefall``: fit a neural vector field to a falling body with linear drag.

The textbook neural-ODE example.  The truth is the classical system

    dy/dt = v,    dv/dt = g - mu v,    y(0) = v(0) = 0,    g = 9.8 m/s^2, mu = 0.5 1/s,

whose closed form is ``v(t) = (g/mu)(1 - e^{-mu t})`` and
``y(t) = (g/mu) t - (g/mu^2)(1 - e^{-mu t})``.  Positions are observed at ``t_k = 0.05 k``,
``k = 1..100`` (the window ``(0, 5]`` s), optionally with Gaussian noise of absolute standard
deviation ``noise`` metres; the test set is the clean positions on ``(5, 7]`` s at the same
spacing (extrapolation).

The model is ``D^alpha (y, v) = f(y, v)`` with a time-independent tanh MLP ``2 -> hidden -> 2``
solved from the known initial state ``(0, 0)`` by an :class:`FDEBlock` with the run's engine
settings (``alpha = 1`` is the classic neural ODE).  Positions reach about 60 m and speeds about
18 m/s, so the field works in scaled units: ``f(y, v) = S_out * MLP(y / 50, v / 20)`` with
``S_out = (20, 10)`` (``|dy/dt| <= 20`` m/s, ``|dv/dt| <= 10`` m/s^2), which keeps the MLP's inputs
and outputs of order one.  It is trained with Adam on the MSE of the observed positions.

Defaults: 100 Adam steps at ``lr = 0.05`` lower the position MSE of the random initial field
(hundreds to thousands of m^2) by a factor of several hundred or more with ``alpha = 1``, euler,
``h = 0.05``, in a few seconds on a CPU with any gradient mode.

Metrics (m^2): ``train_mse`` against the training observations, ``test_mse`` against the clean
positions on ``(5, 7]``.  The engine key ``t_end`` does not apply: the window is fixed.  Any
``step_size`` works: observation times between grid points are the linear interpolation of the
solution's grid values (see :func:`fdebench.engine.fdeint`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from .base import LOWER, FDEBlock, Task

__all__ = ["FreeFall", "exact_position"]

G, MU = 9.8, 0.5
DT = 0.05  # observation spacing (s)
N_TRAIN, N_TEST = 100, 40  # observations on (0, 5] and (5, 7]
IN_SCALE = (50.0, 20.0)  # typical |y| (m) and |v| (m/s)
OUT_SCALE = (20.0, 10.0)  # typical |dy/dt| (m/s) and |dv/dt| (m/s^2)


def exact_position(t: torch.Tensor) -> torch.Tensor:
    """``y(t) = (g/mu) t - (g/mu^2)(1 - e^{-mu t})``, the position of the true body."""
    return (G / MU) * t - (G / MU**2) * (1 - torch.exp(-MU * t))


class ScaledMLP(nn.Module):
    """``f(t, s) = OUT_SCALE * MLP(s / IN_SCALE)``: a time-independent field in scaled units."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 2))
        self.register_buffer("in_scale", torch.tensor(IN_SCALE), persistent=False)
        self.register_buffer("out_scale", torch.tensor(OUT_SCALE), persistent=False)

    def forward(self, t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.out_scale * self.net(s / self.in_scale)


class FreeFall(Task):
    """Neural (fractional) ODE fit to the positions of a body falling with linear drag."""

    name = "freefall"
    params: ClassVar[dict[str, Any]] = {"iters": 100, "lr": 0.05, "hidden": 16, "noise": 0.0}
    metrics: ClassVar[dict[str, str | None]] = {"train_mse": LOWER, "test_mse": LOWER}

    @classmethod
    def n_steps(cls, config: dict[str, Any]) -> int:
        """Steps of a training solve over ``[0, 5]`` s (``t_end`` does not apply); a step that
        does not divide the observation spacing is fine: the solver interpolates."""
        return super().n_steps({**config, "t_end": N_TRAIN * DT})

    data = "simulated: exact free-fall positions plus seeded Gaussian noise"

    def setup(self) -> None:
        """Observations (seeded noise), the model and Adam."""
        c = self.config
        torch.manual_seed(c["seed"])
        gen = torch.Generator().manual_seed(c["seed"])
        t = DT * torch.arange(N_TRAIN + N_TEST + 1, dtype=torch.float64)
        y = exact_position(t[1:])
        noise = c["noise"] * torch.randn(N_TRAIN, generator=gen, dtype=torch.float64)
        dev = self.device
        self.t_all = t.to(dev)  # float64 even for a float32 model: exact grid times
        self.train_obs = (y[:N_TRAIN] + noise).to(dev, torch.float32)
        self.test_obs = y[N_TRAIN:].to(dev, torch.float32)
        self.model = FDEBlock(
            ScaledMLP(c["hidden"]), self.t_all[: N_TRAIN + 1], **self.engine_kwargs()
        ).to(dev)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c["lr"])

    def _positions(self, model: nn.Module, t_eval: torch.Tensor | None = None) -> torch.Tensor:
        """Positions at ``t_eval[1:]`` (default: the training times), in the model's dtype."""
        s0 = torch.zeros(2, dtype=next(model.parameters()).dtype, device=self.device)
        return model(s0, t_eval)[1:, 0]

    def loss(self, model: nn.Module) -> torch.Tensor:
        """MSE of the observed positions on ``(0, 5]``."""
        return self.probe_loss(model)

    def probe_loss(self, model: nn.Module) -> torch.Tensor:
        """The training loss in ``model``'s dtype."""
        pos = self._positions(model)
        return (pos - self.train_obs.to(pos.dtype)).square().mean()

    def evaluate(self) -> dict[str, float]:
        """Train MSE and extrapolation MSE on ``(5, 7]``, in m^2."""
        with torch.no_grad():
            pos = self._positions(self.model, self.t_all)
        train = (pos[:N_TRAIN] - self.train_obs).square().mean().item()
        test = (pos[N_TRAIN:] - self.test_obs).square().mean().item()
        return {"train_mse": train, "test_mse": test}

"""``synthetic``: a neural FDE on random data, sized for memory and time studies.

State ``batch x dim`` driven by an MLP field ``dim -> hidden -> dim`` (tanh), regressed onto a
fixed random target at ``t_end``.  Nothing is learned that means anything: the task exists so
that memory and time versus the number of steps are measured on a state large enough to see
(the image and graph tasks are the realistic ones).  Reports label it synthetic.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from .base import LOWER, FDEBlock, Task

__all__ = ["Synthetic"]


class _MLPField(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, dim))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.net(y)


class Synthetic(Task):
    """Random ``y0 -> target`` regression through one FDE block (Adam)."""

    name = "synthetic"
    params: ClassVar[dict[str, Any]] = {
        "batch": 256, "dim": 64, "hidden": 256, "iters": 3, "lr": 1e-3,
    }
    metrics: ClassVar[dict[str, str | None]] = {"train_mse": LOWER}
    probe_float64 = False  # sized to be large: probe in the working precision

    data = "synthetic: random initial states and targets (not real data)"

    def setup(self) -> None:
        c = self.config
        gen = torch.Generator().manual_seed(c["seed"])
        self.y0 = torch.randn(c["batch"], c["dim"], generator=gen).to(self.device)
        self.target = torch.randn(c["batch"], c["dim"], generator=gen).to(self.device)
        t = torch.tensor([0.0, c["t_end"]], device=self.device)
        self.model = FDEBlock(_MLPField(c["dim"], c["hidden"]), t, **self.engine_kwargs())
        self.model.to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=c["lr"])

    def loss(self, model: nn.Module) -> torch.Tensor:
        return self.probe_loss(model)

    def probe_loss(self, model: nn.Module) -> torch.Tensor:
        dtype = next(model.parameters()).dtype
        y_end = model(self.y0.to(dtype))[-1]
        return (y_end - self.target.to(dtype)).square().mean()

    def evaluate(self) -> dict[str, float]:
        with torch.no_grad():
            return {"train_mse": self.probe_loss(self.model).item()}

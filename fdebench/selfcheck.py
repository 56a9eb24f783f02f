"""``fdebench check``: a two-minute proof that the engine is right on this machine.

For every method and gradient mode, on embedded problems (no download, CPU is enough):
the error against the exact Mittag-Leffler solution of ``D^a y = -y``, and the relative
difference between each mode's gradient and the direct gradient of a small neural FDE (float64).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .engine import GRADIENTS, METHODS, fdeint, mittag_leffler


@dataclass
class CheckRow:
    method: str
    alpha: float
    gradient: str
    solution_error: float
    grad_rel_err: float
    seconds: float


def _field(dim: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(dim, 32), torch.nn.Tanh(), torch.nn.Linear(32, dim)
    ).double()


def _solution_error(method: str, alpha: float, n_steps: int) -> float:
    t = torch.linspace(0, 1, n_steps + 1, dtype=torch.float64)
    ys = fdeint(lambda t, y: -y, torch.ones(1, dtype=torch.float64), t, alpha=alpha,
                method=method)
    exact = torch.from_numpy(mittag_leffler(alpha, -(t.numpy() ** alpha)))
    return (ys[:, 0] - exact).abs().max().item()


def _gradient(method: str, alpha: float, gradient: str, n_steps: int):
    field = _field(8)
    y0 = torch.linspace(-1, 1, 16 * 8, dtype=torch.float64).view(16, 8).requires_grad_()
    t = torch.linspace(0, 1, n_steps + 1, dtype=torch.float64)
    start = time.perf_counter()
    ys = fdeint(lambda t, y: field(y), y0, t, alpha=alpha, method=method, gradient=gradient,
                params=list(field.parameters()))
    grads = torch.autograd.grad(ys.square().mean(), [y0, *field.parameters()])
    return torch.cat([g.reshape(-1) for g in grads]), time.perf_counter() - start


def run_check(alphas=(0.5, 1.0), n_steps: int = 100) -> list[CheckRow]:
    rows = []
    for alpha in alphas:
        for method, (fractional, _) in METHODS.items():
            if fractional is None and alpha != 1:
                continue
            error = _solution_error(method, alpha, n_steps)
            reference, _ = _gradient(method, alpha, "direct", n_steps)
            for gradient in GRADIENTS:
                grad, seconds = _gradient(method, alpha, gradient, n_steps)
                rel = ((grad - reference).norm() / reference.norm()).item()
                rows.append(CheckRow(method, alpha, gradient, error, rel, seconds))
    return rows


def format_rows(rows: list[CheckRow]) -> str:
    head = f"{'method':<7}{'alpha':>6}  {'gradient':<11}{'|y - exact|':>12}"
    head += f"{'grad rel err':>14}{'fwd+bwd s':>11}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.method:<7}{r.alpha:>6.2f}  {r.gradient:<11}{r.solution_error:>12.2e}"
            f"{r.grad_rel_err:>14.1e}{r.seconds:>11.3f}"
        )
    return "\n".join(lines)


def check_passed(rows: list[CheckRow], tolerance: float = 1e-9) -> bool:
    return all(r.grad_rel_err <= tolerance for r in rows)

"""``fdebench check``: a one-minute proof that the engine is right on this machine.

For every method, on embedded problems (no download):

* forward accuracy: ``D^a y = -y``, ``y(0) = 1`` solved to ``t = 1`` with ``N`` and ``2N`` steps,
  against the exact Mittag-Leffler value ``E_a(-1)``; the observed order
  ``log2(e_N / e_2N)`` must be within :data:`ORDER_MARGIN` of the method's order at a fixed
  ``t > 0`` for this solution (``y - 1 ~ t^a``): 1 for ``euler``, ``l1`` and ``gl``,
  ``min(2, 1 + a)`` for ``abm``, 4 for ``rk4`` (Diethelm, Ford & Freed 2004, Numer. Algorithms
  36:31-52; Garrappa 2018, Mathematics 6(2):16).  A wrong weight or a missing term makes the
  scheme inconsistent: its error stops shrinking and the order collapses to about 0;
* gradients: every gradient mode that is exact for the discretisation against direct autograd
  on a small neural FDE (float64), relative difference at most :data:`GRADIENT_TOLERANCE`;
  approximate modes are listed with their difference, which is not a failure.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from .engine import GRADIENTS, METHODS, fdeint, mittag_leffler

__all__ = ["CheckRow", "check_passed", "expected_order", "format_rows", "run_check"]

ORDER_MARGIN = 0.25
GRADIENT_TOLERANCE = 1e-9
#: below this error the order is not measurable (float64 rounding): the row passes on accuracy
ROUNDING = 1e-12


@dataclass
class CheckRow:
    method: str
    alpha: float
    gradient: str
    solution_error: float
    observed_order: float
    expected_order: float
    grad_rel_err: float
    exact_mode: bool
    seconds: float

    @property
    def order_ok(self) -> bool:
        if self.solution_error < ROUNDING:
            return True
        return abs(self.observed_order - self.expected_order) <= ORDER_MARGIN

    @property
    def gradient_ok(self) -> bool:
        if self.gradient == "direct" or not self.exact_mode:
            return True
        return self.grad_rel_err <= GRADIENT_TOLERANCE


def expected_order(method: str, alpha: float) -> float:
    """The order at a fixed ``t > 0`` for ``D^a y = -y`` (see the module docstring)."""
    if method == "rk4":
        return 4.0
    return min(2.0, 1.0 + alpha) if method == "abm" else 1.0


def _error(method: str, alpha: float, n_steps: int, device: torch.device) -> float:
    t = torch.tensor([0.0, 1.0], dtype=torch.float64, device=device)
    ys = fdeint(lambda t, y: -y, torch.ones(1, dtype=torch.float64, device=device), t,
                alpha=alpha, method=method, step_size=1.0 / n_steps)
    return abs(ys[-1, 0].item() - float(mittag_leffler(alpha, -1.0)))


def _field(dim: int, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(dim, 32), torch.nn.Tanh(), torch.nn.Linear(32, dim)
    ).double().to(device)


def _gradient(method: str, alpha: float, gradient: str, n_steps: int, device: torch.device):
    field = _field(8, device)
    y0 = torch.linspace(-1, 1, 16 * 8, dtype=torch.float64, device=device).view(16, 8)
    y0.requires_grad_()
    t = torch.linspace(0, 1, n_steps + 1, dtype=torch.float64, device=device)
    start = time.perf_counter()
    ys = fdeint(lambda t, y: field(y), y0, t, alpha=alpha, method=method, gradient=gradient,
                params=list(field.parameters()))
    grads = torch.autograd.grad(ys.square().mean(), [y0, *field.parameters()])
    return torch.cat([g.reshape(-1) for g in grads]), time.perf_counter() - start


def _usable(method: str, alpha: float, gradient: str) -> bool:
    check = getattr(GRADIENTS[gradient], "check", None)
    return check is None or check(method, alpha) is None


def run_check(alphas: tuple[float, ...] = (0.5, 1.0), n_steps: int = 100,
              device: torch.device | str = "cpu") -> list[CheckRow]:
    """One row per method x alpha x gradient mode (see the module docstring)."""
    device = torch.device(device)
    rows = []
    for alpha in alphas:
        for method, (fractional, _) in METHODS.items():
            if fractional is None and alpha != 1:
                continue
            error = _error(method, alpha, n_steps, device)
            finer = _error(method, alpha, 2 * n_steps, device)
            order = math.log2(error / finer) if finer > 0 and error > 0 else math.inf
            reference, direct_seconds = _gradient(method, alpha, "direct", n_steps, device)
            for gradient, mode in GRADIENTS.items():
                if not _usable(method, alpha, gradient):
                    continue
                if gradient == "direct":  # the reference: no comparison with itself
                    grad, seconds, rel = reference, direct_seconds, math.nan
                else:
                    grad, seconds = _gradient(method, alpha, gradient, n_steps, device)
                    rel = ((grad - reference).norm() / reference.norm()).item()
                rows.append(CheckRow(method, alpha, gradient, error, order,
                                     expected_order(method, alpha), rel,
                                     getattr(mode, "exact", True), seconds))
    return rows


def format_rows(rows: list[CheckRow]) -> str:
    head = (f"{'method':<7}{'alpha':>6}  {'gradient':<11}{'|y - exact|':>12}{'order':>7}"
            f"{'expected':>9}{'grad rel err':>14}{'fwd+bwd s':>11}  verdict")
    lines = [head, "-" * len(head)]
    for r in rows:
        verdict = "ok" if r.order_ok and r.gradient_ok else "FAIL"
        if r.gradient_ok and not r.exact_mode:
            verdict += " (approximate mode)"
        grad = "reference" if r.gradient == "direct" else f"{r.grad_rel_err:.1e}"
        lines.append(
            f"{r.method:<7}{r.alpha:>6.2f}  {r.gradient:<11}{r.solution_error:>12.2e}"
            f"{r.observed_order:>7.2f}{r.expected_order:>9.2f}{grad:>14}"
            f"{r.seconds:>11.3f}  {verdict}"
        )
    return "\n".join(lines)


def check_passed(rows: list[CheckRow]) -> bool:
    return all(r.order_ok and r.gradient_ok for r in rows)

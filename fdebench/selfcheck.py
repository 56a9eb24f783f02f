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
  approximate modes are listed with their difference, which is not a failure;
* the compressed history (``history="soe"``, methods ``euler``, ``abm``, ``l1`` at alpha < 1):
  the same forward order, its distance to the exact scheme (max over the grid of
  ``|y_soe - y|``, relative to ``max |y|``) at most :data:`SOE_DISTANCE` times ``soe_tol``
  (:data:`SOE_TOL`), and its exact gradient modes (``checkpoint``, ``revolve``) against
  ``direct`` through the same compressed scheme.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from .engine import GRADIENTS, METHODS, fdeint, mittag_leffler, refusal

__all__ = ["CheckRow", "check_passed", "expected_order", "format_rows", "run_check"]

ORDER_MARGIN = 0.25
GRADIENT_TOLERANCE = 1e-9
#: below this error the order is not measurable (float64 rounding): the row passes on accuracy
ROUNDING = 1e-12
#: the tolerance of the compressed rows' sum of exponentials ...
SOE_TOL = 1e-8
#: ... and the largest distance to the exact scheme, relative to max |y|, in units of it: each
#: history weight moves by at most SOE_TOL relative, and their errors, oscillating in sign,
#: partly cancel (measured: 0.003 to 0.1 of SOE_TOL; tests/test_engine_soe.py)
SOE_DISTANCE = 1.0
#: the verdict of a row that passes (a check's verdict, not a run status)
PASSED = "ok"


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
    history: str = "auto"
    #: ``history="soe"``: max |y_soe - y| / max |y| against the exact scheme
    scheme_distance: float = math.nan

    @property
    def order_ok(self) -> bool:
        if self.solution_error < ROUNDING:
            return True
        return abs(self.observed_order - self.expected_order) <= ORDER_MARGIN

    @property
    def distance_ok(self) -> bool:
        return self.history != "soe" or self.scheme_distance <= SOE_DISTANCE * SOE_TOL

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


def _decay(method: str, alpha: float, n_steps: int, device: torch.device,
           history: str = "auto") -> torch.Tensor:
    """``D^a y = -y``, ``y(0) = 1`` on the grid of ``n_steps`` to ``t = 1``: every grid value."""
    t = torch.linspace(0.0, 1.0, n_steps + 1, dtype=torch.float64, device=device)
    return fdeint(lambda t, y: -y, torch.ones(1, dtype=torch.float64, device=device), t,
                  alpha=alpha, method=method, history=history, soe_tol=SOE_TOL)[:, 0]


def _error(method: str, alpha: float, n_steps: int, device: torch.device,
           history: str = "auto") -> float:
    ys = _decay(method, alpha, n_steps, device, history)
    return abs(ys[-1].item() - float(mittag_leffler(alpha, -1.0)))


def _distance(method: str, alpha: float, n_steps: int, device: torch.device) -> float:
    """The compressed scheme's distance to the exact one on ``D^a y = -y``."""
    exact = _decay(method, alpha, n_steps, device, "stepwise")
    compressed = _decay(method, alpha, n_steps, device, "soe")
    return ((compressed - exact).abs().max() / exact.abs().max()).item()


def _field(dim: int, device: torch.device) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(dim, 32), torch.nn.Tanh(), torch.nn.Linear(32, dim)
    ).double().to(device)


def _gradient(method: str, alpha: float, gradient: str, n_steps: int, device: torch.device,
              history: str = "auto"):
    field = _field(8, device)
    y0 = torch.linspace(-1, 1, 16 * 8, dtype=torch.float64, device=device).view(16, 8)
    y0.requires_grad_()
    t = torch.linspace(0, 1, n_steps + 1, dtype=torch.float64, device=device)
    start = time.perf_counter()
    ys = fdeint(lambda t, y: field(y), y0, t, alpha=alpha, method=method, gradient=gradient,
                params=list(field.parameters()), history=history, soe_tol=SOE_TOL)
    grads = torch.autograd.grad(ys.square().mean(), [y0, *field.parameters()])
    return torch.cat([g.reshape(-1) for g in grads]), time.perf_counter() - start


def _usable(method: str, alpha: float, gradient: str, history: str) -> bool:
    return refusal(method, gradient, alpha, history) is None


def _histories(method: str, alpha: float) -> tuple[str, ...]:
    """``auto``, and ``soe`` where the method has a compressed form."""
    return ("auto", "soe") if alpha < 1 and METHODS[method].compressed is not None else ("auto",)


def run_check(alphas: tuple[float, ...] = (0.5, 1.0), n_steps: int = 100,
              device: torch.device | str = "cpu") -> list[CheckRow]:
    """One row per method x alpha x history x gradient mode (see the module docstring)."""
    device = torch.device(device)
    rows = []
    for alpha in alphas:
        for method, entry in METHODS.items():
            if entry.fractional is None and alpha != 1:
                continue
            for history in _histories(method, alpha):
                rows += _rows(method, alpha, history, n_steps, device)
    return rows


def _rows(method: str, alpha: float, history: str, n_steps: int,
          device: torch.device) -> list[CheckRow]:
    """The rows of one method, order and history: every usable gradient mode against direct."""
    error = _error(method, alpha, n_steps, device, history)
    finer = _error(method, alpha, 2 * n_steps, device, history)
    order = math.log2(error / finer) if finer > 0 and error > 0 else math.inf
    distance = _distance(method, alpha, n_steps, device) if history == "soe" else math.nan
    reference, direct_seconds = _gradient(method, alpha, "direct", n_steps, device, history)
    rows = []
    for gradient, mode in GRADIENTS.items():
        if not _usable(method, alpha, gradient, history):
            continue
        if gradient == "direct":  # the reference: no comparison with itself
            grad, seconds, rel = reference, direct_seconds, math.nan
        else:
            grad, seconds = _gradient(method, alpha, gradient, n_steps, device, history)
            rel = ((grad - reference).norm() / reference.norm()).item()
        rows.append(CheckRow(method, alpha, gradient, error, order,
                             expected_order(method, alpha), rel,
                             getattr(mode, "exact", True), seconds, history, distance))
    return rows


def format_rows(rows: list[CheckRow]) -> str:
    head = (f"{'method':<7}{'alpha':>6}  {'history':<9}{'gradient':<11}{'|y - exact|':>12}"
            f"{'order':>7}{'expected':>9}{'grad rel err':>14}{'fwd+bwd s':>11}  verdict")
    lines = [head, "-" * len(head)]
    for r in rows:
        verdict = PASSED if r.order_ok and r.gradient_ok and r.distance_ok else "FAIL"
        if r.gradient_ok and not r.exact_mode:
            verdict += " (approximate mode)"
        if r.history == "soe":
            verdict += f" (soe: {r.scheme_distance:.1e} from the exact scheme)"
        grad = "reference" if r.gradient == "direct" else f"{r.grad_rel_err:.1e}"
        lines.append(
            f"{r.method:<7}{r.alpha:>6.2f}  {r.history:<9}{r.gradient:<11}"
            f"{r.solution_error:>12.2e}{r.observed_order:>7.2f}{r.expected_order:>9.2f}"
            f"{grad:>14}{r.seconds:>11.3f}  {verdict}"
        )
    return "\n".join(lines)


def check_passed(rows: list[CheckRow]) -> bool:
    return all(r.order_ok and r.gradient_ok and r.distance_ok for r in rows)

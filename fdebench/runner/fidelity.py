"""Gradient fidelity of a run: how far its parameter gradient is from two references.

Both come from :meth:`fdebench.tasks.Task.gradient_probe` (the task's fixed probe batch at the
initial weights):

* ``direct`` of the same engine and configuration (``grad_rel_err``, ``grad_cosine``): what
  the gradient mode itself changes.  ``None`` for the reference itself.  The reference runs the
  exact scheme (history ``auto``), so a run with ``history: soe`` (the compressed scheme, e.g.
  ``revolve``) reads its distance from the exact scheme's gradient, of the order of
  ``soe_tol``.  For an ``fdebench`` run whose probe does more than :data:`FINE_WORK_CAP`
  work, direct's graph of every step would not fit (a 128 x 64 state at N = 25,600 is 0.8 GB
  per stored trajectory, several per step's graph): the reference is then the exact
  ``adjoint`` instead, equal to direct to rounding (``tests/test_engine_gradients.py``) in the
  memory of one trajectory.  ``grad_reference`` says which.
* a fine-step reference (``grad_rel_err_fine``), for every mode, ``direct`` included: ``direct``
  of the ``fdebench`` engine in float64 at a step :data:`FINE_FACTOR` times finer, same
  ``alpha`` and method (a ``torchdiffeq`` run's reference is fdebench's ``euler`` for
  ``euler`` and ``rk4`` for every other method, see
  :meth:`~fdebench.tasks.backends.Engine.reference_method`).  It stands in for the gradient of the
  continuous problem: for a method of order ``p`` the reference's own error is about ``8^-p``
  of the run's, so ``grad_rel_err_fine`` is the run's distance from the continuous problem to
  within that fraction (for a first-order method it reads 7/8 of the true distance).  Skipped,
  with the reason in ``grad_fine_skipped``, when the reference would cost more than
  :data:`FINE_WORK_CAP` or runs out of memory.
"""

from __future__ import annotations

from typing import Any

import torch

from ..measure import relative_error
from ..tasks import ENGINES, Task

__all__ = ["FINE_FACTOR", "FINE_WORK_CAP", "fidelity", "fine_settings", "reference_mode"]

#: the fine reference's step is the run's divided by this
FINE_FACTOR = 8
#: the most work the fine reference may do: state elements times solver steps, summed over the
#: probe's FDE solves (2e7 float64 elements are 160 MB per stored trajectory; direct keeps a
#: few of them per step's graph, so the reference stays within a few GB)
FINE_WORK_CAP = 2 * 10**7


def reference_mode(config: dict[str, Any], work: int) -> str:
    """The gradient mode of the same-step reference of a run with ``config`` whose probe did
    ``work`` (state elements x steps): ``direct``, or ``adjoint`` for an ``fdebench`` run past
    :data:`FINE_WORK_CAP`."""
    return "adjoint" if config["engine"] == "fdebench" and work > FINE_WORK_CAP else "direct"


def fine_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The gradient-probe overrides of the fine reference of a run with ``config``."""
    method = ENGINES[config["engine"]].reference_method(config["method"])
    return {"engine": "fdebench", "method": method, "dtype": torch.float64,
            "step_size": config["step_size"] / FINE_FACTOR, "history": "auto"}


def _fine(task: Task, config: dict[str, Any], grad: torch.Tensor,
          work: int) -> dict[str, Any]:
    """``grad_rel_err_fine`` of ``grad`` (or why it was skipped), and what the reference was."""
    settings = fine_settings(config)
    described = (f"fdebench {settings['method']} direct, float64, step "
                 f"{settings['step_size']:g} (run's / {FINE_FACTOR})")
    out: dict[str, Any] = {"grad_rel_err_fine": None, "grad_fine_skipped": None,
                           "grad_fine_reference": described, "grad_fine_factor": FINE_FACTOR,
                           "grad_fine_method": settings["method"]}
    cost = work * FINE_FACTOR
    if cost > FINE_WORK_CAP:
        out["grad_fine_skipped"] = (f"cost cap: {cost:.3g} element-steps (state x steps) > "
                                    f"FINE_WORK_CAP {FINE_WORK_CAP:.3g}")
        return out
    try:
        fine = task.gradient_probe("direct", **settings)
    except (torch.OutOfMemoryError, MemoryError) as exc:
        out["grad_fine_skipped"] = f"out of memory: {exc}".splitlines()[0][:200]
        return out
    out["grad_rel_err_fine"] = relative_error(grad, fine)
    return out


#: why a cost-only run has no fine-step reference
COST_ONLY_SKIP = "cost-only run (measure.cost_only): no fine-step reference"


def fidelity(task: Task, config: dict[str, Any], *, fine: bool = True) -> dict[str, Any]:
    """The run's gradient-fidelity fields of the record: ``grad_rel_err``, ``grad_cosine``
    and ``grad_reference`` (against :func:`reference_mode` with the exact history; ``None``
    for the reference itself), ``grad_rel_err_fine``, ``grad_fine_skipped`` and
    ``grad_fine_reference`` (against the fine reference; skipped with :data:`COST_ONLY_SKIP`
    when not ``fine``), and that reference's step factor (``grad_fine_factor``:
    :data:`FINE_FACTOR`) and method (``grad_fine_method``), which the report reads."""
    gradient = config["gradient"]
    grad = task.gradient_probe(gradient)
    work = task.probe_work
    mode = reference_mode(config, work)
    out: dict[str, Any] = {"grad_rel_err": None, "grad_cosine": None, "grad_reference": mode}
    if gradient != mode or config.get("history", "auto") == "soe":
        reference = task.gradient_probe(mode, history="auto")
        out["grad_rel_err"] = relative_error(grad, reference)
        out["grad_cosine"] = torch.nn.functional.cosine_similarity(
            grad.to(reference.dtype), reference, dim=0).item()
    if not fine:
        return {**out, "grad_rel_err_fine": None, "grad_fine_skipped": COST_ONLY_SKIP,
                "grad_fine_reference": None, "grad_fine_factor": None, "grad_fine_method": None}
    return {**out, **_fine(task, config, grad, work)}

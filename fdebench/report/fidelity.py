"""The report section on gradient fidelity: gradient error against the number of steps.

Two errors per gradient mode, from the records (see :mod:`fdebench.runner.fidelity`):
``grad_rel_err_fine`` (against a float64 fdebench ``direct`` gradient at a finer step: the
distance from the continuous problem, every mode including ``direct``) and
``grad_rel_err`` (against ``direct`` of the same engine and step, with the exact history; the
exact ``adjoint`` past the runner's work cap, as ``grad_reference`` records: see
:func:`reference_lines`).  Each is plotted against N
on log-log axes, with the convergence order fitted by :func:`~fdebench.report.series.
growth_exponent` (``error ~ N^-p``) in the legend and in a table.

How much finer the reference's step is and which method it ran are what the records say
(``grad_fine_factor``, ``grad_fine_method``), never restated here: see :func:`fine_step` and
:func:`explanation`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..results import OK
from . import figures
from .grouping import format_value
from .series import error_panels
from .tables import fitted_table

__all__ = ["explanation", "fidelity_section", "fine_step", "reference_lines",
           "skipped_fine_lines"]

FINE = "grad_rel_err_fine"
VERSUS_DIRECT = "grad_rel_err"
#: the engine a record without ``engine`` ran (records from before there were others)
DEFAULT_ENGINE = "fdebench"


def _factors(runs: pd.DataFrame) -> list[str]:
    """The distinct ``grad_fine_factor`` values of ``runs``, ascending, as text."""
    if "grad_fine_factor" not in runs.columns:
        return []
    values = pd.to_numeric(runs["grad_fine_factor"], errors="coerce").dropna().unique()
    return [format_value(float(v)) for v in sorted(values)]


def fine_step(runs: pd.DataFrame) -> str:
    """The fine reference's step as the records of ``runs`` give it: ``an 8x finer step``
    (``a 4x or 8x finer step`` when they differ; ``a finer step`` when none says)."""
    factors = " or ".join(f"{f}x" for f in _factors(runs))
    if not factors:
        return "a finer step"
    spoken_vowel = factors.startswith("8") or factors.split("x")[0] in ("11", "18")
    return f"{'an' if spoken_vowel else 'a'} {factors} finer step"


def _other_methods(runs: pd.DataFrame) -> str:
    """Which method the fine reference ran where it is not the run's own engine and method,
    from ``grad_fine_method``: `` (torchdiffeq runs: fdebench `euler` for `euler`)``, or
    nothing."""
    if not {"method", "grad_fine_method"} <= set(runs.columns):
        return ""
    engine = runs["engine"] if "engine" in runs.columns else DEFAULT_ENGINE
    rows = runs.assign(engine=engine).dropna(subset=["grad_fine_method"])
    other = rows[(rows["engine"] != DEFAULT_ENGINE) | (rows["method"] != rows["grad_fine_method"])]
    parts = []
    for name, group in other.groupby("engine", sort=True):
        pairs = sorted(set(zip(group["method"], group["grad_fine_method"], strict=True)))
        parts.append(f"{name} runs: " + ", ".join(
            f"fdebench `{fine}` for `{method}`" for method, fine in pairs))
    return f" ({'; '.join(parts)})" if parts else ""


def explanation(runs: pd.DataFrame) -> str:
    """What the two errors of one task's ``runs`` are measured against, the reference's step
    factor and methods taken from their records."""
    factors = _factors(runs)
    error = (f" (about 1/{factors[0]} of the run's for a first-order method)"
             if len(factors) == 1 else "")
    return (
        "`grad_rel_err_fine`: each mode's parameter gradient (probe batch, initial weights) "
        f"against a float64 `direct` gradient of the fdebench engine at {fine_step(runs)}, same "
        f"alpha and method{_other_methods(runs)}: the distance from the gradient of the "
        f"continuous problem, to within the reference's own error{error}. `grad_rel_err`: "
        "against `direct` of the same engine and step. Order p: least-squares fit of error ~ "
        "N^-p over the mean of the seeds at each N (exact modes sit at rounding level against "
        "direct: no order there).")


#: said where some run has ``history: soe``
SOE_NOTE = (
    "Modes labelled `+soe` run the compressed history (`history: soe`), an approximation of "
    "the scheme within `soe_tol`: their `grad rel err` is their distance from the exact "
    "scheme's gradient (of the order of `soe_tol`, not rounding), the fine-step reference's "
    "too.")


def reference_lines(runs: pd.DataFrame) -> list[str]:
    """What ``grad rel err`` is measured against where it is not ``direct`` (the exact
    ``adjoint`` for probes past the runner's work cap), and what a ``+soe`` mode's reads."""
    lines = []
    if "grad_reference" in runs.columns:
        ok = runs[runs["status"] == OK]
        adjoint = ok[ok["grad_reference"] == "adjoint"]
        if not adjoint.empty:
            steps = sorted({format_value(n) for n in adjoint.get("n_steps", [])} - {""},
                           key=float)
            where = f" at N = {', '.join(steps)}" if steps else ""
            lines += [f"`grad rel err`{where} is measured against the exact `adjoint` (history "
                      "auto; equal to direct to rounding), not `direct`: direct's graph of "
                      "every step would not fit in memory (the probe's work passes the "
                      "runner's FINE_WORK_CAP); there `adjoint` is the reference.", ""]
    if "history" in runs.columns and (runs["history"] == "soe").any():
        lines += [SOE_NOTE, ""]
    return lines


def skipped_fine_lines(runs: pd.DataFrame) -> list[str]:
    """Why the fine reference is missing from some runs (one line per distinct reason)."""
    if "grad_fine_skipped" not in runs.columns:
        return []
    reasons = runs["grad_fine_skipped"].dropna()
    counts = reasons.map(lambda r: str(r).split(":")[0]).value_counts()
    if counts.empty:
        return []
    parts = ", ".join(f"{n} run{'s' * (n != 1)} ({reason})" for reason, n in counts.items())
    return [f"No fine-step reference gradient for {parts}: see `grad_fine_skipped` in the "
            "records.", ""]


def fidelity_section(task: str, runs: pd.DataFrame, keys: list[str],
                     png: Callable[[str], Path],
                     figure_lines: Callable[[Path | None, str, str], list[str]]) -> list[str]:
    """Order table and error-vs-N figures of one task, when some configuration spans several N
    (``png(kind)`` names a figure file, ``figure_lines`` embeds one)."""
    fine = error_panels(runs, keys, FINE)
    versus = error_panels(runs, keys, VERSUS_DIRECT)
    if not fine and not versus:
        return []
    lines = ["### Gradient error vs number of steps", "", explanation(runs), "",
             fitted_table({"order vs fine reference": fine, "order vs direct": versus}), ""]
    for column, panels, what in ((FINE, fine, "the fine-step float64 reference"),
                                 (VERSUS_DIRECT, versus, "direct at the same step")):
        drawn = figures.scaling_figure(
            panels, png(f"{column}_vs_steps"), f"{task}: gradient error against {what}",
            f"relative gradient error ({column})", legend_title="mode (fitted order)")
        lines += figure_lines(drawn, f"{column} vs N", (
            f"Relative error of each mode's parameter gradient against {what}, against the "
            "number of steps N (log-log, mean over seeds); legend: fitted order p, "
            "error ~ N^-p."))
    return lines


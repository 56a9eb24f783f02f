"""The published adjoint's claims, checked against stored records: a report section "Claims".

Kang, Zhao, Song, Ji & Tay, "Efficient training of neural fractional-order differential
equation via adjoint backpropagation", AAAI 2025 (arXiv:2503.16666, code ``torchfde``), claim
that their adjoint, against direct differentiation, (1) needs 33-67 % of its memory, (2) trains
2-3x faster, (3) at comparable accuracy.  Each claim is computed from the records of every
gradient mode against ``direct`` at the same task and configuration (see :data:`CLAIMS`):

* memory ratio = ``peak_mem_bytes`` of the mode / direct's, same configuration and seed;
* speed-up = direct's ``time_per_iter_s`` / the mode's, same configuration and seed;
* accuracy: the task's headline metric (the first of its ``metric_names`` both have), mean
  over seeds, against direct's: comparable when the difference is within
  ``max(tolerance, spread)``, the tolerance being :data:`ACCURACY_TOLERANCE` (1 percentage
  point) for accuracies and :data:`RELATIVE_TOLERANCE` (10 %) of direct's value for error
  metrics, the spread the standard deviation of direct's metric over seeds.

Each measured value is *within* the claim, *better* (beyond the claimed range in the
favourable direction: less memory, more speed, a better metric) or *worse*.  A (task, mode)
cell holds when no value is worse (``better than claimed`` when all are better); a claim
holds when every cell holds, does not hold when none does, and otherwise holds only for the
cells listed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .grouping import config_keys, metric_names, ordered_modes, with_n_steps
from .tables import markdown_table

__all__ = [
    "ACCURACY_TOLERANCE", "CLAIMS", "RELATIVE_TOLERANCE", "Claim", "cell_verdicts",
    "claim_values", "claims_section", "overall_verdict",
]

#: an accuracy (a fraction) is comparable within this absolute difference: 1 percentage point
ACCURACY_TOLERANCE = 0.01
#: an error metric (lower is better: mse, param_rel_err, loss) is comparable within this
#: relative difference of direct's value
RELATIVE_TOLERANCE = 0.10
WITHIN, BETTER, WORSE = "within", "better", "worse"
HOLDS, BETTER_THAN_CLAIMED, DOES_NOT_HOLD = "holds", "better than claimed", "does not hold"


@dataclass(frozen=True)
class Claim:
    """One claim: what it says, what is measured, and the claimed range of that measure."""

    name: str
    statement: str
    measure: str
    low: float | None = None
    high: float | None = None
    #: the favourable direction of the measure: ``"lower"`` or ``"higher"``
    favourable: str = "lower"

    @property
    def claimed(self) -> str:
        """The claimed range as text."""
        if self.name == "memory":
            return f"{self.low * 100:.0f}-{self.high * 100:.0f}% of direct's memory"
        if self.name == "speed":
            return f"{self.low:g}-{self.high:g}x direct's speed"
        return "comparable to direct"

    def classify(self, value: float) -> str:
        """``within``, ``better`` or ``worse`` for a ratio claim's measured ``value``."""
        low_side = BETTER if self.favourable == "lower" else WORSE
        high_side = WORSE if self.favourable == "lower" else BETTER
        if value < self.low:
            return low_side
        return high_side if value > self.high else WITHIN


CLAIMS = (
    Claim("memory", "the adjoint needs 33-67% of direct's memory",
          "peak_mem_bytes(mode) / peak_mem_bytes(direct), same configuration and seed",
          0.33, 0.67, "lower"),
    Claim("speed", "the adjoint trains 2-3x faster than direct",
          "time_per_iter_s(direct) / time_per_iter_s(mode), same configuration and seed",
          2.0, 3.0, "higher"),
    Claim("accuracy", "at accuracy comparable to direct",
          "headline metric, mean over seeds, minus direct's; comparable within 1 percentage "
          "point (accuracies) or 10% of direct's value (error metrics), or the seeds' spread "
          "(std of direct's metric) when larger"),
)


def _higher_is_better(metric: str) -> bool:
    """Accuracies are better higher; every other metric here (errors, losses) lower."""
    return "accuracy" in metric


#: the record field each ratio claim reads
RATIO_FIELDS = {"memory": "peak_mem_bytes", "speed": "time_per_iter_s"}


def _ratio_rows(task: str, runs: pd.DataFrame, keys: list[str]) -> list[dict]:
    """Memory ratios and speed-ups of every mode against direct, per configuration and seed."""
    on = [*keys, "seed"] if "seed" in runs.columns else [*keys, "_all"]
    runs = runs.assign(_all=0, **{f: pd.to_numeric(runs.get(f), errors="coerce")
                                  for f in RATIO_FIELDS.values()})
    direct = runs.loc[runs["gradient"] == "direct", [*on, *RATIO_FIELDS.values()]]
    pairs = runs[runs["gradient"] != "direct"].merge(direct, on=on, suffixes=("", "_direct"))
    rows = []
    for claim in CLAIMS:
        if claim.name not in RATIO_FIELDS:
            continue
        field = RATIO_FIELDS[claim.name]
        mode, base = pairs[field], pairs[f"{field}_direct"]
        value = mode / base if claim.name == "memory" else base / mode
        keep = (mode > 0) & (base > 0) & np.isfinite(value)
        rows += [{"claim": claim.name, "task": task, "gradient": g, "value": v,
                  "outcome": claim.classify(v)}
                 for g, v in zip(pairs.loc[keep, "gradient"], value[keep], strict=True)]
    return rows


def _accuracy_rows(task: str, runs: pd.DataFrame, keys: list[str]) -> list[dict]:
    """The headline metric of every mode against direct's, per configuration."""
    metrics = metric_names(runs)
    rows = []
    groups = runs.groupby(keys, dropna=False) if keys else [((), runs)]
    for _, config in groups:
        direct = config[config["gradient"] == "direct"]
        for mode in ordered_modes(config["gradient"]):
            if mode == "direct":
                continue
            other = config[config["gradient"] == mode]
            row = _compare(direct, other, metrics)
            if row is not None:
                rows.append({"claim": "accuracy", "task": task, "gradient": mode, **row})
    return rows


def _compare(direct: pd.DataFrame, mode: pd.DataFrame, metrics: list[str]) -> dict | None:
    """Difference of the first metric both have (mean over seeds), and its outcome."""
    for metric in metrics:
        base = pd.to_numeric(direct.get(metric), errors="coerce").dropna()
        values = pd.to_numeric(mode.get(metric), errors="coerce").dropna()
        if base.empty or values.empty:
            continue
        higher = _higher_is_better(metric)
        reference = base.mean()
        tolerance = ACCURACY_TOLERANCE if higher else RELATIVE_TOLERANCE * abs(reference)
        tolerance = max(tolerance, base.std() if len(base) > 1 else 0.0)
        difference = values.mean() - reference
        gain = difference if higher else -difference
        outcome = WITHIN if abs(difference) <= tolerance else BETTER if gain > 0 else WORSE
        return {"metric": metric, "value": difference, "tolerance": tolerance,
                "outcome": outcome}
    return None


def claim_values(runs: pd.DataFrame) -> pd.DataFrame:
    """Every measured value of every claim: columns ``claim``, ``task``, ``gradient``,
    ``value``, ``outcome`` (within / better / worse) and, for accuracy, ``metric`` and
    ``tolerance``.  Only ``ok`` runs of tasks that have ``direct`` and another mode count."""
    rows: list[dict] = []
    ok = runs[runs["status"] == "ok"] if "status" in runs.columns else runs
    for task, task_runs in ok.groupby("task", sort=False):
        task_runs = with_n_steps(task_runs)
        modes = set(task_runs["gradient"])
        if "direct" not in modes or len(modes) < 2:
            continue
        keys = config_keys(task_runs)
        rows += _ratio_rows(str(task), task_runs, keys)
        rows += _accuracy_rows(str(task), task_runs, keys)
    columns = ["claim", "task", "gradient", "value", "outcome", "metric", "tolerance"]
    return pd.DataFrame(rows, columns=columns)


def _cell_verdict(outcomes: pd.Series) -> str:
    """A (task, mode) cell: holds when no value is worse; better than claimed when all are
    better; does not hold when all are worse; else holds in k of n."""
    worse, better, n = (outcomes == WORSE).sum(), (outcomes == BETTER).sum(), len(outcomes)
    if worse == 0:
        return BETTER_THAN_CLAIMED if better == n else HOLDS
    if worse == n:
        return DOES_NOT_HOLD
    return f"holds in {n - worse} of {n}"


def _measured(claim: str, group: pd.DataFrame) -> str:
    """The measured range of a cell as text."""
    low, high = group["value"].min(), group["value"].max()
    if claim == "accuracy":
        metric = group["metric"].iloc[0]
        scale, unit = (100, " pp") if _higher_is_better(metric) else (1, "")
        return (f"{metric}: {low * scale:+.3g}{unit} to {high * scale:+.3g}{unit} "
                f"(tolerance ±{group['tolerance'].max() * scale:.3g}{unit})")
    fmt = "{:.2f}" if claim == "memory" else "{:.2f}x"
    return fmt.format(low) if math.isclose(low, high) else \
        f"{fmt.format(low)} to {fmt.format(high)}"


def cell_verdicts(values: pd.DataFrame) -> pd.DataFrame:
    """One row per claim, task and mode: the measured range, how many values, the verdict."""
    rows = []
    for claim in CLAIMS:
        of_claim = values[values["claim"] == claim.name]
        for task, task_values in of_claim.groupby("task", sort=False):
            for mode in ordered_modes(task_values["gradient"]):
                group = task_values[task_values["gradient"] == mode]
                rows.append({"claim": claim.name, "task": task, "gradient": mode,
                             "measured": _measured(claim.name, group), "n": len(group),
                             "verdict": _cell_verdict(group["outcome"])})
    return pd.DataFrame(rows, columns=["claim", "task", "gradient", "measured", "n", "verdict"])


def overall_verdict(cells: pd.DataFrame) -> str:
    """A claim's verdict from its cells: holds / does not hold / holds only for <cells>, with
    the cells better than claimed named."""
    if cells.empty:
        return "not measured"
    names = cells["task"] + "/" + cells["gradient"]
    holding = cells["verdict"].isin([HOLDS, BETTER_THAN_CLAIMED])
    better = names[cells["verdict"] == BETTER_THAN_CLAIMED]
    if not holding.any():
        return DOES_NOT_HOLD
    if holding.all():
        if len(better) == len(cells):
            return f"{HOLDS}, {BETTER_THAN_CLAIMED} for every task and mode"
        return HOLDS + (f" ({BETTER_THAN_CLAIMED} for {', '.join(better)})" if len(better)
                        else "")
    text = f"holds only for {', '.join(names[holding])}"
    return text + (f" ({BETTER_THAN_CLAIMED} for {', '.join(better)})" if len(better) else "")


def claims_section(runs: pd.DataFrame) -> list[str]:
    """The "Claims" section of a report (nothing when no task has direct and another mode)."""
    values = claim_values(runs)
    if values.empty:
        return []
    cells = cell_verdicts(values)
    lines = ["## Claims", "",
             "The claims of the published adjoint (Kang et al., AAAI 2025, arXiv:2503.16666) "
             "against direct differentiation, checked on every gradient mode of these runs (`ok` "
             "runs only; computed from the records by `fdebench.report.claims`). A value is "
             "within the claimed range, better (beyond it in the favourable direction) or worse; "
             "a task/mode cell holds when no value is worse (*better than claimed* when all "
             "are better); a claim holds when every cell holds.", ""]
    summary = []
    for claim in CLAIMS:
        of_claim = cells[cells["claim"] == claim.name]
        summary.append({"claim": claim.statement, "claimed": claim.claimed,
                        "measure": claim.measure, "verdict": overall_verdict(of_claim)})
    lines += [markdown_table(pd.DataFrame(summary)), ""]
    table = cells.assign(claim=cells["claim"].map({c.name: c.claimed for c in CLAIMS}))
    lines += ["Per task and mode (the range over configurations and seeds; `n`: values):", "",
              markdown_table(table.astype(str)), ""]
    return lines

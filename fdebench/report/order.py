"""The report section on learnt orders (``learn_alpha``): the trained alpha of each run against
the order of its data, where the task declares it (the record's ``true_values["alpha"]``), as a
table and a figure."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from ..results import OK
from .figures import order_figure
from .grouping import declared, format_value
from .tables import markdown_table

__all__ = ["order_section", "true_order"]

LEARNT = "alpha_learned"


def true_order(runs: pd.DataFrame) -> pd.Series | None:
    """The data's order of each run, as its record declares it (``true_values["alpha"]``);
    ``None`` when no record declares one."""
    values = declared(runs, "true_values").get("alpha")
    if values is None:
        return None
    truth = pd.to_numeric(values, errors="coerce")
    return None if truth.isna().all() else truth


def _table(ok: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per configuration and gradient mode: the learnt order over seeds."""
    group = ["alpha", *(k for k in keys if k not in ("alpha", "alpha_true")), "gradient"]
    if "truth" in ok.columns:
        group = ["truth", *group]
    rows = []
    for values, runs in ok.groupby(group, sort=True, dropna=False):
        row = dict(zip(group, values if isinstance(values, tuple) else (values,), strict=True))
        learnt = runs[LEARNT].astype(float)
        row["alpha learned"] = (f"{learnt.mean():.4f}" + (f" ± {learnt.std():.2g}"
                                                           if len(learnt) > 1 else ""))
        if "truth" in row:
            error = (learnt - row["truth"]).abs() / row["truth"]
            row["alpha rel err (max)"] = f"{100 * error.max():.2f}%"
        if "param_rel_err" in runs.columns and runs["param_rel_err"].notna().any():
            row["param rel err (max)"] = f"{100 * runs['param_rel_err'].max():.2f}%"
        row["runs"] = len(runs)
        rows.append(row)
    table = pd.DataFrame(rows).rename(columns={"truth": "alpha true", "alpha": "alpha start"})
    return table.map(format_value)


def order_section(task: str, runs: pd.DataFrame, keys: list[str],
                  png: Callable[[str], Path],
                  figure_lines: Callable[[Path | None, str, str], list[str]]) -> list[str]:
    """Table (and, when the data's order is known, figure) of the learnt orders of a task's
    ``ok`` runs; nothing when none learnt its order."""
    if LEARNT not in runs.columns:
        return []
    ok = runs[(runs["status"] == OK) & runs[LEARNT].notna()].copy()
    if ok.empty:
        return []
    truth = true_order(ok)
    if truth is not None:
        ok["truth"] = truth
    lines = ["### Learned order", "",
             "Runs with `learn_alpha: true` train the order alpha = sigmoid(logit) of the FDE "
             "block with the other parameters, from the run's `alpha`; `alpha learned` is the "
             "order at the end of training (mean ± std over seeds)"
             + (", against the data's order `alpha true`." if truth is not None else "."), "",
             markdown_table(_table(ok, keys)), ""]
    if truth is None:
        return lines
    drawn = order_figure(ok, png("alpha_learned_vs_true"), task)
    return lines + figure_lines(drawn, "learned vs true order", (
        "Learned order at the end of training against the data's order, every run (modes "
        "offset slightly along x to stay visible); grey: learned = true."))

"""Summary tables of stored runs: gradient modes side by side, failures, environment."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..results import OK, STATUSES
from .grouping import format_value, ordered_modes
from .series import Panel, floor_ratios

__all__ = [
    "STATUS_ORDER", "concurrency_warning", "environment_table", "exponent_table", "failed_table",
    "fitted_table", "floor_table", "gradient_summary", "gradient_table", "markdown_table",
    "status_counts",
]

MIB = 2**20
STATUS_ORDER = STATUSES
#: (column, label) of the environment facts a report shows
ENVIRONMENT = (
    ("env.device_name", "device name"), ("device", "torch device"),
    ("env.torch_version", "torch"), ("env.python", "python"), ("env.cpu", "cpu"),
    ("env.threads", "threads"), ("env.git_commit", "git commit"),
    ("env.fdebench_version", "fdebench"), ("env.hostname", "host"), ("executor", "executor"),
    ("concurrent_runs", "runs at once on a node"),
)
_MEASURES = ("peak_mem_bytes", "peak_rss_bytes", "nvml_peak_used_bytes", "time_per_iter_s",
             "grad_rel_err", "grad_rel_err_fine")
#: (summary column, record field, table label) of the process-level memory figures, shown when
#: some run has them
_PROCESS_MEMORY = (("rss_mib", "peak_rss_bytes", "peak RSS (MiB)"),
                   ("gpu_mib", "nvml_peak_used_bytes", "GPU used (MiB)"))


def markdown_table(table: pd.DataFrame, align: Sequence[str] | None = None) -> str:
    """``table`` (all text) as a GitHub markdown table, cells printed as given."""
    cells = table.map(lambda v: str(v).replace("|", "\\|").replace("\n", " "))
    return cells.to_markdown(index=False, disable_numparse=True, colalign=align)


def status_counts(runs: pd.DataFrame) -> str:
    """``"12 runs: 10 ok, 1 oom, 1 error"``."""
    counts = runs["status"].map(format_value).replace("", "unknown").value_counts()
    order = [s for s in STATUS_ORDER if s in counts] + sorted(set(counts.index) - {*STATUS_ORDER})
    parts = ", ".join(f"{counts[s]} {s}" for s in order)
    return f"{len(runs)} run{'s' * (len(runs) != 1)}" + (f": {parts}" if parts else "")


def environment_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The distinct values of each environment fact present in ``runs``."""
    rows = []
    for column, label in ENVIRONMENT:
        if column in runs.columns:
            values = [format_value(v) for v in runs[column].dropna().unique()]
            if values:
                rows.append({"": label, "value(s)": ", ".join(values)})
    return pd.DataFrame(rows, columns=["", "value(s)"])


def concurrency_warning(runs: pd.DataFrame) -> str | None:
    """A warning when the ``ok`` runs' times were measured at different concurrency on one
    node (``concurrent_runs``), so that the table compares them; ``None`` otherwise."""
    if not {"node", "concurrent_runs"} <= set(runs.columns):
        return None
    ok = runs[runs["status"] == OK].dropna(subset=["node", "concurrent_runs"])
    levels = ok.groupby("node")["concurrent_runs"].unique()
    mixed = {node: sorted(int(v) for v in values) for node, values in levels.items()
             if len(values) > 1}
    if not mixed:
        return None
    where = "; ".join(f"`{node}`: {', '.join(map(str, counts))}"
                      for node, counts in mixed.items())
    return ("**Warning:** the times below were measured at different concurrency on one node "
            f"({where} runs at once): runs sharing a node share its cores, memory bandwidth "
            "and caches, so compare times taken at the same `concurrent_runs`.")


def failed_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Run id, status and message of every run whose status is not ``ok``."""
    failed = runs[runs["status"] != OK]
    message = failed.get("message", pd.Series(None, index=failed.index, dtype=object))
    return pd.DataFrame({
        "run_id": failed["run_id"].map(format_value),
        "status": failed["status"].map(format_value).replace("", "unknown"),
        "message": message.map(lambda v: format_value(v)[:240]),
    })


def _numeric(runs: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """``runs`` with ``columns`` present and numeric (missing or non-numeric: NaN)."""
    runs = runs.copy()
    for column in columns:
        values = runs[column] if column in runs.columns else np.nan
        runs[column] = pd.to_numeric(values, errors="coerce")
    return runs


def gradient_summary(runs: pd.DataFrame, keys: list[str], metrics: list[str]) -> pd.DataFrame:
    """One row per configuration x gradient mode of one task's ``ok`` runs, numbers only.

    Columns: ``keys``, ``gradient``, ``mem_mib`` (tensor peak), ``rss_mib`` and ``gpu_mib``
    (process and GPU figures) and ``time_ms`` (means over seeds),
    ``mem_ratio`` and ``time_ratio`` (to ``direct`` at the same configuration),
    ``<metric>_mean`` and ``<metric>_std`` over seeds, ``grad_rel_err`` and
    ``grad_rel_err_fine`` (max over seeds), ``grad_reference`` (the mode ``grad_rel_err`` is
    measured against, when recorded),
    ``ok`` and ``runs`` (run counts).  Rows sorted by configuration, then direct, adjoint,
    checkpoint, others.
    """
    group = [*keys, "gradient"]
    runs = _numeric(runs, [*_MEASURES, *metrics])
    ok = runs[runs["status"] == OK].groupby(group, dropna=False, sort=False)
    summary = pd.DataFrame({
        "mem_mib": ok["peak_mem_bytes"].mean() / MIB,
        **{column: ok[field].mean() / MIB for column, field, _ in _PROCESS_MEMORY},
        "time_ms": ok["time_per_iter_s"].mean() * 1e3,
        "grad_rel_err": ok["grad_rel_err"].max(),
        "grad_rel_err_fine": ok["grad_rel_err_fine"].max(),
        "grad_reference": ok["grad_reference"].first() if "grad_reference" in runs.columns
        else None,
        OK: ok.size(),
    })
    for metric in metrics:
        summary[f"{metric}_mean"] = ok[metric].mean()
        summary[f"{metric}_std"] = ok[metric].std()
    summary["runs"] = runs.groupby(group, dropna=False).size().reindex(summary.index)
    return _sorted(_with_ratios(summary.reset_index(), keys), keys)


def _with_ratios(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Add ``mem_ratio`` and ``time_ratio``: each row over direct's at the same configuration."""
    on = keys or ["_all"]
    summary = summary.assign(_all=0)
    direct = summary.loc[summary["gradient"] == "direct", [*on, "mem_mib", "time_ms"]]
    direct = direct.rename(columns={"mem_mib": "_mem_direct", "time_ms": "_time_direct"})
    summary = summary.merge(direct, on=on, how="left")
    summary["mem_ratio"] = summary["mem_mib"] / summary["_mem_direct"]
    summary["time_ratio"] = summary["time_ms"] / summary["_time_direct"]
    return summary.drop(columns=["_all", "_mem_direct", "_time_direct"])


def _sorted(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows by configuration, then gradient mode (direct, adjoint, checkpoint, others)."""
    rank = {m: i for i, m in enumerate(ordered_modes(summary["gradient"]))}
    summary = summary.assign(_rank=summary["gradient"].map(rank))
    summary = summary.sort_values([*keys, "_rank"], na_position="last", kind="stable")
    return summary.drop(columns="_rank").reset_index(drop=True)


def _number(value: float) -> str:
    """Three significant digits, no exponent above 100; empty when missing."""
    if pd.isna(value):
        return ""
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _ratio(value: float) -> str:
    """``"0.25×"``; more digits when small; empty when missing."""
    if pd.isna(value):
        return ""
    return f"{value:.2f}×" if value >= 0.1 else f"{value:.2g}×"


def _mean_std(mean: float, std: float) -> str:
    """``"1.23e-03 ± 4.5e-05"`` style (``.3g``); only the mean with one seed."""
    if pd.isna(mean):
        return ""
    return f"{mean:.3g}" if pd.isna(std) else f"{mean:.3g} ± {std:.2g}"


def gradient_table(summary: pd.DataFrame, keys: list[str], metrics: list[str]) -> str:
    """The markdown table of :func:`gradient_summary`'s rows."""
    table = pd.DataFrame({k: summary[k].map(format_value) for k in keys})
    table["gradient"] = summary["gradient"].map(format_value)
    table["peak mem (MiB)"] = summary["mem_mib"].map(_number)
    table["mem / direct"] = summary["mem_ratio"].map(_ratio)
    for column, _, label in _PROCESS_MEMORY:
        if summary[column].notna().any():
            table[label] = summary[column].map(_number)
    table["time/iter (ms)"] = summary["time_ms"].map(_number)
    table["time / direct"] = summary["time_ratio"].map(_ratio)
    for metric in metrics:
        pairs = zip(summary[f"{metric}_mean"], summary[f"{metric}_std"], strict=True)
        table[metric] = [_mean_std(m, s) for m, s in pairs]
    table["grad rel err (max)"] = [
        "— (reference)" if _is_reference(mode, reference) else "" if pd.isna(v) else f"{v:.2e}"
        for mode, v, reference in zip(summary["gradient"], summary["grad_rel_err"],
                                      summary["grad_reference"], strict=True)]
    if summary["grad_rel_err_fine"].notna().any():
        table["grad rel err fine (max)"] = summary["grad_rel_err_fine"].map(
            lambda v: "" if pd.isna(v) else f"{v:.2e}")
    table["ok / runs"] = [f"{ok}/{n}" for ok, n in zip(summary[OK], summary["runs"], strict=True)]
    align = ["left"] * (len(keys) + 1) + ["right"] * (table.shape[1] - len(keys) - 1)
    return markdown_table(table, align)



def _is_reference(mode: str, reference: str | None) -> bool:
    """Whether rows of ``mode`` are their configuration's gradient reference: the recorded
    ``grad_reference`` (``direct``, or ``adjoint`` past the work cap), ``direct`` in records
    that predate it."""
    return mode == (reference if isinstance(reference, str) else "direct")


def floor_table(memory: list[Panel]) -> str | None:
    """Markdown table of each mode's peak against the trajectory floor at its largest N (see
    :func:`~fdebench.report.series.floor_ratios`); ``None`` when no panel has a floor."""
    ratios = floor_ratios(memory)
    if ratios.empty:
        return None
    table = pd.DataFrame({
        "configuration": ratios["configuration"], "gradient": ratios["gradient"],
        "N": ratios["N"].map(format_value), "peak mem (MiB)": ratios["peak"].map(_number),
        "floor (MiB)": ratios["floor"].map(_number),
        "peak / floor": ratios["ratio"].map(lambda v: f"{v:.3g}"),
    })
    return markdown_table(table, ["left", "left", "right", "right", "right", "right"])


def exponent_table(memory: list[Panel], time: list[Panel]) -> str:
    """Markdown table of the fitted growth exponents per configuration and gradient mode."""
    return fitted_table({"memory ~N^k": memory, "time/iter ~N^k": time})


def fitted_table(columns: dict[str, list[Panel]]) -> str:
    """Markdown table, one row per configuration and gradient mode, of each column's fitted
    quantity (:attr:`~fdebench.report.series.Series.fitted`: a growth exponent, or an order)."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for column, panels in columns.items():
        for panel in panels:
            for series in panel.series:
                row = rows.setdefault((panel.title, series.gradient), {
                    "configuration": panel.title, "gradient": series.gradient,
                    "N": f"{series.n.min():.0f}-{series.n.max():.0f}",
                    **dict.fromkeys(columns, "")})
                fitted = series.fitted
                row[column] = "" if fitted is None else f"{round(fitted, 2) + 0.0:.2f}"  # no -0
    table = pd.DataFrame(list(rows.values()))
    return markdown_table(table, ["left", "left", "right", *["right"] * len(columns)])

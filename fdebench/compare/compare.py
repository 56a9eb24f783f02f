"""Compare two results run by run: a table of changes and the regressions beyond thresholds.

Rules, in order:

1. Both sides must be the same kind (two harness results, or two benchmark JSON files).
2. Runs are matched by key (``run_id``, or the benchmark's ``fullname``).  A run on one side
   only is an error naming every such run, or with ``allow_missing`` a warning.
3. Every metric a threshold names must exist in some run of either side (else an error listing
   the metrics there are).
4. Harness results: a run that was ``ok`` in the baseline and is not now is a regression,
   whatever the thresholds; a different ``config_hash`` is a warning (not like for like).
5. Each threshold is checked on every common run that has its metric: the current value must
   respect the bound (:meth:`Threshold.limit`).  A metric the baseline has and the current run
   lacks (or is NaN) is a regression; a ``+``/``-`` threshold with no baseline value is skipped.

Without thresholds the table shows the metrics that changed in some run (benchmarks: the
``median`` and the changed ``extra_info`` entries).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from ..errors import InputError
from ..results import OK
from .sources import BENCHMARKS, RUNS, Results
from .spec import Threshold, format_number

__all__ = ["COLUMNS", "Comparison", "compare"]

COLUMNS = ["run", "metric", "baseline", "current", "change", "limit", "result"]
REGRESSION = "REGRESSION"
#: the verdict of a threshold that holds (a verdict, not a run status)
PASSED = "ok"


@dataclass
class Comparison:
    """The table (one row per run and metric), the regressions (one line each), the warnings."""

    table: pd.DataFrame
    regressions: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    runs: int = 0


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _change(baseline: float | None, current: float | None) -> str:
    if _missing(baseline) or _missing(current):
        return "-"
    if baseline == current:
        return "0"
    if baseline == 0:
        return f"{current - baseline:+.4g}"
    return f"{100 * (current - baseline) / abs(baseline):+.1f}%"


def _check_runs(baseline: Results, current: Results, allow_missing: bool) -> list[str]:
    """Rule 2: the runs on one side only, as an error or as warnings."""
    problems = []
    for side, this, other in (("baseline", baseline, current), ("current", current, baseline)):
        only = [this.labels[k] for k in this.metrics if k not in other.metrics]
        if only:
            problems.append(f"{len(only)} run(s) only in the {side} ({this.path}): "
                            + ", ".join(only))
    if problems and not allow_missing:
        raise InputError("\n".join([*problems, "compare results of the same runs, or pass "
                                    "--allow-missing to compare the common ones"]))
    return problems


def _check_metrics(baseline: Results, current: Results, thresholds: list[Threshold]) -> None:
    """Rule 3: every threshold's metric exists somewhere."""
    known = baseline.metric_names | current.metric_names
    unknown = sorted({t.metric for t in thresholds} - known)
    if unknown:
        raise InputError(f"unknown metric(s) in --fail-on: {', '.join(unknown)}; metrics in "
                         f"these results: {', '.join(sorted(known))}")


def _default_metrics(baseline: Results, current: Results, keys: list[str]) -> list[str]:
    """The metrics that changed in some common run, in first-seen order."""
    names: dict[str, None] = {}
    if baseline.kind == BENCHMARKS:
        names["median"] = None
    for key in keys:
        for name in [*baseline.metrics[key], *current.metrics[key]]:
            if name in names or (baseline.kind == BENCHMARKS and name in _STATS):
                continue
            a, b = baseline.metrics[key].get(name), current.metrics[key].get(name)
            if not (a == b or (_missing(a) and _missing(b))):
                names[name] = None
    return list(names)


#: pytest-benchmark's statistics: in the default table only ``median`` stands for them
_STATS = {"min", "max", "mean", "stddev", "rounds", "median", "iqr", "q1", "q3", "iqr_outliers",
          "stddev_outliers", "ld15iqr", "hd15iqr", "ops", "total", "iterations"}


def _status_row(key: str, baseline: Results, current: Results, out: Comparison) -> bool:
    """Rule 4 for one run; whether its metrics can be compared (both sides ``ok``)."""
    if baseline.kind != RUNS:
        return True
    (before, _), (after, message) = baseline.status[key], current.status[key]
    label = current.labels[key]
    if before == after:
        return before == OK
    failed = before == OK
    out.table.loc[len(out.table)] = [label, "status", before, after, "", OK,
                                     REGRESSION if failed else ""]
    if failed:
        out.regressions.append(f"{label}: status {before} -> {after}"
                               + (f" ({message})" if message else ""))
    return False


def _metric_rows(key: str, metric: str, thresholds: list[Threshold], baseline: Results,
                 current: Results, out: Comparison) -> None:
    """Rule 5: one row per threshold of ``metric`` (one plain row when it has none)."""
    label = current.labels[key]
    a, b = baseline.metrics[key].get(metric), current.metrics[key].get(metric)
    if _missing(a) and _missing(b):
        return
    row = [label, metric, format_number(a), format_number(b), _change(a, b)]
    if not thresholds:
        out.table.loc[len(out.table)] = [*row, "", ""]
    for threshold in thresholds:
        if _missing(b):
            limit, verdict = threshold.text.split(":", 1)[1], REGRESSION
            reason = "missing in the current results"
        elif threshold.needs_baseline and _missing(a):
            out.table.loc[len(out.table)] = [*row, "no baseline", ""]
            continue
        else:
            limit = threshold.describe(a if threshold.needs_baseline else 0.0)
            verdict = REGRESSION if threshold.fails(a, b) else PASSED
            reason = f"{format_number(a)} -> {format_number(b)} ({_change(a, b)}), limit {limit}"
        out.table.loc[len(out.table)] = [*row, limit, verdict]
        if verdict == REGRESSION:
            out.regressions.append(f"{label}: {metric} {reason}")


def compare(baseline: Results, current: Results, thresholds: list[Threshold] | None = None,
            *, allow_missing: bool = False) -> Comparison:
    """Compare ``current`` with ``baseline`` run by run (see the module docstring)."""
    if baseline.kind != current.kind:
        raise InputError(f"cannot compare {baseline.kind} ({baseline.path}) with "
                         f"{current.kind} ({current.path})")
    thresholds = thresholds or []
    warnings = _check_runs(baseline, current, allow_missing)
    _check_metrics(baseline, current, thresholds)
    keys = [k for k in baseline.metrics if k in current.metrics]
    out = Comparison(pd.DataFrame(columns=COLUMNS), warnings=warnings, runs=len(keys))
    if baseline.machine and current.machine and baseline.machine != current.machine:
        out.warnings.append(f"measured on different machines: {baseline.machine!r} (baseline), "
                            f"{current.machine!r} (current); absolute numbers may differ")
    for key in keys:
        if baseline.kind == RUNS and baseline.config_hash[key] != current.config_hash[key]:
            out.warnings.append(f"{current.labels[key]}: configuration differs (config_hash "
                                f"{baseline.config_hash[key]} -> {current.config_hash[key]})")
    by_metric: dict[str, list[Threshold]] = {}
    for threshold in thresholds:
        by_metric.setdefault(threshold.metric, []).append(threshold)
    metrics = list(by_metric) or _default_metrics(baseline, current, keys)
    for key in keys:
        if _status_row(key, baseline, current, out):
            for metric in metrics:
                _metric_rows(key, metric, by_metric.get(metric, []), baseline, current, out)
    return out

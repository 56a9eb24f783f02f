"""Curves for the figures: growth with the number of steps, training losses, memory vs time."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ..results import OK
from .grouping import config_label, format_value, ordered_modes

__all__ = [
    "FLOOR_LABEL",
    "Curve",
    "Panel",
    "Series",
    "error_panels",
    "floor_ratios",
    "growth_exponent",
    "least_squares_slope",
    "pareto_front",
    "scaling_panels",
    "time_memory_panels",
    "training_curves",
    "trajectory_floor",
]

#: keys that only change the number of steps (a scaling panel spans their values)
STEP_KEYS = ("n_steps", "step_size")
#: the label of the trajectory floor ``(N + 1) |y|`` in figures and tables
FLOOR_LABEL = "trajectory floor (N+1)|y|"


def least_squares_slope(x: Any, y: Any) -> float | None:
    """The least-squares slope of ``y`` against ``x`` over the finite points; ``None`` with
    fewer than two distinct ``x``."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    if np.unique(x[keep]).size < 2:
        return None
    return float(np.polyfit(x[keep], y[keep], 1)[0])


def growth_exponent(n: Any, y: Any) -> float | None:
    """The least-squares slope of ``log y`` against ``log n`` (``y ~ n^slope``), from the
    positive finite points; ``None`` with fewer than two distinct ``n``.  The one growth
    exponent of the project (reports, benchmarks)."""
    n, y = np.asarray(n, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(n) & np.isfinite(y) & (n > 0) & (y > 0)
    return least_squares_slope(np.log(n[keep]), np.log(y[keep]))


@dataclass(frozen=True)
class Series:
    """One gradient mode's mean value (over seeds) at each number of steps.

    ``order``: the values are errors, and the fitted quantity is the convergence order
    ``-exponent`` (an error ``~ h^p ~ N^-p``)."""

    gradient: str
    n: np.ndarray
    y: np.ndarray
    exponent: float | None
    order: bool = False

    @property
    def fitted(self) -> float | None:
        """The fitted growth exponent, or the order ``-exponent`` for an error series."""
        if self.exponent is None:
            return None
        return -self.exponent if self.order else self.exponent

    @property
    def label(self) -> str:
        """``"adjoint (~N^1.02)"``, ``"paper (order 0.98)"`` for an error (the mode alone when
        nothing could be fitted)."""
        if self.exponent is None:
            return self.gradient
        if self.order:
            return f"{self.gradient} (order {round(self.fitted, 2) + 0.0:.2f})"  # no -0.00
        return f"{self.gradient} (~N^{self.exponent:.2f})"


@dataclass(frozen=True)
class Panel:
    """The series of one configuration (every config key but the number of steps), and for
    memory the trajectory floor ``(N + 1) |y|`` at each N (``None`` when the records do not
    say ``|y|``)."""

    title: str
    series: list[Series]
    floor: Series | None = None


def _groups(runs: pd.DataFrame, keys: list[str]) -> Iterator[tuple[tuple, pd.DataFrame]]:
    """``(values, rows)`` per distinct value of ``keys`` (one group of everything without)."""
    if not keys:
        yield (), runs
        return
    yield from runs.groupby(keys, dropna=False, sort=True)


def _positive(runs: pd.DataFrame, column: str) -> pd.DataFrame:
    """The ``ok`` runs with a positive ``n_steps`` and a positive finite ``column``."""
    if column not in runs.columns or "n_steps" not in runs.columns:
        return runs.iloc[0:0]
    runs = runs[runs["status"] == OK].assign(
        n_steps=pd.to_numeric(runs["n_steps"], errors="coerce"),
        value=pd.to_numeric(runs[column], errors="coerce"))
    return runs[(runs["n_steps"] > 0) & (runs["value"] > 0) & np.isfinite(runs["value"])]


def scaling_panels(runs: pd.DataFrame, keys: list[str], column: str,
                   scale: float = 1.0, floor: bool = False) -> list[Panel]:
    """Per configuration whose ``ok`` runs span two or more ``n_steps``: each gradient mode's
    mean ``column`` (times ``scale``) against ``n_steps`` with its growth exponent; with
    ``floor``, also the trajectory floor (:func:`trajectory_floor`) in the same units."""
    other = [k for k in keys if k not in STEP_KEYS]
    panels = []
    for values, rows in _groups(_positive(runs, column), other):
        if rows["n_steps"].nunique() < 2:
            continue
        series = []
        for mode in ordered_modes(rows["gradient"]):
            mean = rows[rows["gradient"] == mode].groupby("n_steps")["value"].mean() * scale
            n, y = mean.index.to_numpy(dtype=float), mean.to_numpy(dtype=float)
            series.append(Series(mode, n, y, growth_exponent(n, y)))
        panels.append(Panel(config_label(other, values), series,
                            trajectory_floor(rows, scale) if floor else None))
    return panels


def trajectory_floor(rows: pd.DataFrame, scale: float = 1.0) -> Series | None:
    """``(N + 1) |y|`` (times ``scale``) at each ``n_steps`` of ``rows``, ``|y|`` the mean
    recorded ``state_bytes`` there: what a gradient that keeps the solution at every step
    holds at least.  ``None`` when no row records ``state_bytes``."""
    if "state_bytes" not in rows.columns:
        return None
    state = pd.to_numeric(rows["state_bytes"], errors="coerce")
    mean = state[state > 0].groupby(rows["n_steps"]).mean()
    if mean.empty:
        return None
    n = mean.index.to_numpy(dtype=float)
    return Series(FLOOR_LABEL, n, (n + 1) * mean.to_numpy(dtype=float) * scale, None)


def floor_ratios(panels: list[Panel]) -> pd.DataFrame:
    """Each mode's peak over the trajectory floor at its largest N, per panel with a floor:
    columns ``configuration``, ``gradient``, ``N``, ``peak``, ``floor``, ``ratio``."""
    rows = []
    for panel in panels:
        if panel.floor is None:
            continue
        floors = dict(zip(panel.floor.n, panel.floor.y, strict=True))
        for series in panel.series:
            measured = [i for i, n in enumerate(series.n) if n in floors]
            if not measured:
                continue
            i = max(measured, key=lambda j: series.n[j])
            n, peak = series.n[i], series.y[i]
            rows.append({"configuration": panel.title, "gradient": series.gradient, "N": n,
                         "peak": peak, "floor": floors[n], "ratio": peak / floors[n]})
    return pd.DataFrame(rows, columns=["configuration", "gradient", "N", "peak", "floor",
                                       "ratio"])


def error_panels(runs: pd.DataFrame, keys: list[str], column: str) -> list[Panel]:
    """:func:`scaling_panels` of an error ``column`` (e.g. ``grad_rel_err_fine``): each
    mode's mean error against ``n_steps``, labelled with its fitted convergence order."""
    return [Panel(p.title, [replace(s, order=True) for s in p.series])
            for p in scaling_panels(runs, keys, column)]


@dataclass(frozen=True)
class Curve:
    """One gradient mode's training loss per iteration: mean, min and max over seeds."""

    gradient: str
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: int


def _stack(curves: list[list[float]]) -> np.ndarray:
    """Curves of possibly different lengths as rows of one array, padded with NaN."""
    length = max(len(c) for c in curves)
    out = np.full((len(curves), length), np.nan)
    for i, curve in enumerate(curves):
        out[i, : len(curve)] = np.asarray(curve, dtype=float)
    return out


def _representative(rows: pd.DataFrame, keys: list[str]) -> tuple[tuple, pd.DataFrame]:
    """The configuration with the most gradient modes, then the most runs, then the last in
    sorted order (the most steps, when the number of steps varies)."""
    groups = list(_groups(rows, keys))
    best = max(range(len(groups)),
               key=lambda i: (groups[i][1]["gradient"].nunique(), len(groups[i][1]), i))
    return groups[best]


def training_curves(runs: pd.DataFrame, keys: list[str]) -> tuple[str, list[Curve]]:
    """The training curves per gradient mode of one representative configuration's ``ok``
    runs, and that configuration's label; no curves when no run recorded one."""
    if "train_curve" not in runs.columns:
        return "", []
    has_curve = runs["train_curve"].map(lambda c: isinstance(c, list) and len(c) > 0)
    rows = runs[(runs["status"] == OK) & has_curve]
    if rows.empty:
        return "", []
    values, rows = _representative(rows, keys)
    curves = []
    for mode in ordered_modes(rows["gradient"]):
        stacked = _stack(list(rows.loc[rows["gradient"] == mode, "train_curve"]))
        with warnings.catch_warnings():  # an all-NaN iteration (a diverged run) stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            curves.append(Curve(mode, np.nanmean(stacked, axis=0), np.nanmin(stacked, axis=0),
                                np.nanmax(stacked, axis=0), len(stacked)))
    return config_label(keys, values), curves


def time_memory_panels(summary: pd.DataFrame,
                       keys: list[str]) -> list[tuple[str, pd.DataFrame]]:
    """:func:`~fdebench.report.tables.gradient_summary` rows with positive memory and time, one
    panel per configuration apart from the number of steps; points labelled ``N=<n_steps>``
    when the number of steps varies."""
    points = summary[(summary["mem_mib"] > 0) & (summary["time_ms"] > 0)]
    other = [k for k in keys if k not in STEP_KEYS]
    labels = points["n_steps"].map(lambda n: f"N={format_value(n)}") if "n_steps" in keys else ""
    points = points.assign(label=labels)
    return [(config_label(other, values), rows) for values, rows in _groups(points, other)]


def pareto_front(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats in both ``x`` and ``y``, by increasing x."""
    order = np.lexsort((y, x))
    front, best = [], np.inf
    for i in order:
        if y[i] < best:
            front.append(i)
            best = y[i]
    return np.asarray(front, dtype=int)

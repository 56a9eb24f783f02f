"""PNG figures of one task's stored runs (matplotlib's Agg canvas; no pyplot state).

Each function draws prepared data (see :mod:`fdebench.report.series`) and returns the file
written, or ``None`` when there is nothing to draw.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import (
    FixedLocator,
    LogFormatterSciNotation,
    NullFormatter,
    StrMethodFormatter,
)

from .grouping import GRADIENT_ORDER, ordered_modes
from .series import Curve, Panel, pareto_front

__all__ = [
    "claim_map_figure", "memory_vs_time", "order_figure", "scaling_figure", "training_figure",
]

DPI = 120
MAX_PANELS = 12
MAX_POINT_LABELS = 30
_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
_MARKERS = ("o", "s", "^", "D", "v", "P")
_LINES = ("-", "--", ":", "-.")


def _styles(modes: list[str]) -> dict[str, dict[str, str]]:
    """Colour, marker and line style per gradient mode, fixed for direct/adjoint/checkpoint so
    every figure agrees; overlapping lines stay visible through their dash patterns."""
    others = [m for m in modes if m not in GRADIENT_ORDER]
    styles = {}
    for i, mode in enumerate([*GRADIENT_ORDER, *others]):
        styles[mode] = {"color": _COLORS[i % len(_COLORS)], "marker": _MARKERS[i % len(_MARKERS)],
                        "linestyle": _LINES[i % len(_LINES)]}
    return styles


def _save(figure: Figure, path: Path) -> Path:
    """Render ``figure`` with the Agg canvas to ``path``."""
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=DPI)
    return path


class _PlainLogFormatter(LogFormatterSciNotation):
    """Matplotlib's choice of which log ticks to label, printed as plain numbers (``0.13``,
    ``1000``) instead of ``1.3 x 10^-1``, which crowds axes spanning less than a decade."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return f"{x:.4g}" if super().__call__(x, pos) else ""


def _log_scale(ax: Axes, *which: str) -> None:
    """Log scales on the ``"x"`` and/or ``"y"`` axes of ``ax``, labelled with plain numbers
    (minor ticks too when the range is narrow)."""
    for name in which:
        getattr(ax, f"set_{name}scale")("log")
        axis = ax.xaxis if name == "x" else ax.yaxis
        axis.set_major_formatter(_PlainLogFormatter())
        axis.set_minor_formatter(_PlainLogFormatter(labelOnlyBase=False,
                                                    minor_thresholds=(2, 0.5)))


def _steps_axis(axes: Axes, steps: np.ndarray) -> None:
    """Log x axis ticked at the numbers of steps measured, printed as integers."""
    axes.set_xscale("log")
    axes.xaxis.set_major_locator(FixedLocator(np.unique(steps)))
    axes.xaxis.set_major_formatter(StrMethodFormatter("{x:.0f}"))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("number of steps N")


def _grid(count: int, width: float = 4.8, height: float = 3.8) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure with ``count`` panels, at most three per row."""
    cols = min(3, count)
    rows = math.ceil(count / cols)
    figure = Figure(figsize=(width * cols, height * rows), layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False)
    for extra in axes.flat[count:]:
        extra.set_visible(False)
    return figure, axes


def scaling_figure(panels: list[Panel], path: Path, title: str, ylabel: str,
                   legend_title: str = "mode (fitted growth)") -> Path | None:
    """Log-log small multiples of each panel's series against N, the fitted exponents (or
    orders) in the legends; a panel's trajectory floor (memory) as a grey line under them."""
    panels = panels[:MAX_PANELS]
    if not panels:
        return None
    styles = _styles(ordered_modes(s.gradient for p in panels for s in p.series))
    figure, axes = _grid(len(panels))
    for ax, panel in zip(axes.flat, panels, strict=False):
        if panel.floor is not None:
            ax.plot(panel.floor.n, panel.floor.y, color="0.55", linewidth=2.5, alpha=0.8,
                    zorder=1, label=panel.floor.gradient)
        for series in panel.series:
            ax.plot(series.n, series.y, label=series.label, markersize=5, **styles[series.gradient])
        _steps_axis(ax, np.concatenate([s.n for s in panel.series]))
        _log_scale(ax, "y")
        ax.set_ylabel(ylabel)
        ax.set_title(panel.title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, title=legend_title, title_fontsize=8)
    figure.suptitle(title)
    return _save(figure, path)


def training_figure(curves: list[Curve], path: Path, title: str) -> Path | None:
    """Training loss per iteration, one line per gradient mode (band: min to max over seeds)."""
    if not curves:
        return None
    styles = _styles([c.gradient for c in curves])
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    ax = figure.subplots()
    for curve in curves:
        style = styles[curve.gradient]
        x = np.arange(1, curve.mean.size + 1)
        ax.plot(x, curve.mean, color=style["color"], linestyle=style["linestyle"], linewidth=1.8,
                label=f"{curve.gradient} ({curve.seeds} seed{'s' * (curve.seeds != 1)})")
        ax.fill_between(x, curve.low, curve.high, color=style["color"], alpha=0.15, linewidth=0)
    if all(np.nanmin(c.low) > 0 for c in curves if np.isfinite(c.low).any()):
        _log_scale(ax, "y")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    ax.set_title("\n".join(textwrap.wrap(title, 70)), fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(figure, path)


def memory_vs_time(panels: list[tuple[str, pd.DataFrame]], path: Path,
                   title: str) -> Path | None:
    """Peak memory against time per iteration (log-log) per configuration panel, one colour
    per gradient mode, points labelled by number of steps, the Pareto front dashed."""
    panels = [(name, points) for name, points in panels if not points.empty][:MAX_PANELS]
    if not panels:
        return None
    styles = _styles(ordered_modes(m for _, points in panels for m in points["gradient"]))
    figure, axes = _grid(len(panels))
    for ax, (name, points) in zip(axes.flat, panels, strict=False):
        _scatter(ax, points, styles)
        ax.set_title(name, fontsize=10)
    figure.suptitle(title)
    return _save(figure, path)


def _scatter(ax: Axes, points: pd.DataFrame, styles: dict[str, dict[str, str]]) -> None:
    """One memory-vs-time panel."""
    for mode in ordered_modes(points["gradient"]):
        rows = points[points["gradient"] == mode]
        ax.scatter(rows["time_ms"], rows["mem_mib"], s=36, zorder=3, label=mode,
                   color=styles[mode]["color"], marker=styles[mode]["marker"])
    _pareto(ax, points["time_ms"].to_numpy(float), points["mem_mib"].to_numpy(float))
    if len(points) <= MAX_POINT_LABELS:
        for _, row in points[points["label"] != ""].iterrows():
            ax.annotate(row["label"], (row["time_ms"], row["mem_mib"]), xytext=(4, 3),
                        textcoords="offset points", fontsize=7, color="0.3")
    _log_scale(ax, "x", "y")
    ax.margins(x=0.12, y=0.08)  # room for the point labels
    ax.set_xlabel("time per iteration (ms)")
    ax.set_ylabel("peak memory (MiB)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)


def _pareto(ax: Axes, x: np.ndarray, y: np.ndarray) -> None:
    """The staircase of points no other point beats in both time and memory."""
    front = pareto_front(x, y)
    if front.size > 1:
        ax.step(x[front], y[front], where="post", color="0.5", linestyle="--", linewidth=1,
                zorder=1, label="Pareto front")


def order_figure(ok: pd.DataFrame, path: Path, task: str) -> Path:
    """Learnt (``alpha_learned``) against true order (``truth``) of ``ok``'s runs, one marker
    per run, one colour per gradient mode."""
    modes = ordered_modes(ok["gradient"])
    styles = _styles(modes)
    figure = Figure(figsize=(5.2, 4.6), layout="constrained")
    ax = figure.subplots()
    lo = float(min(ok["truth"].min(), ok["alpha_learned"].min())) - 0.05
    ax.plot([lo, 1.02], [lo, 1.02], color="0.6", linewidth=1, label="learned = true")
    spread = np.linspace(-0.012, 0.012, len(modes)) if len(modes) > 1 else [0.0]
    for offset, mode in zip(spread, modes, strict=True):
        runs = ok[ok["gradient"] == mode]
        style = styles[mode]
        ax.scatter(runs["truth"] + offset, runs["alpha_learned"], color=style["color"],
                   marker=style["marker"], s=28, label=mode, alpha=0.85)
    ax.set_xlabel("true order of the data (alpha_true)")
    ax.set_ylabel("learned order (alpha_learned)")
    ax.set_title(f"{task}: learned vs true order", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(figure, path)


def claim_map_figure(panels: list, path: Path, title: str, key: str,
                     name: str) -> Path | None:
    """Claim maps (:mod:`fdebench.report.claim_maps`): each panel's lines (mode vs baseline)
    against the map key, the claimed band shaded; memory panels in the left column, speed in
    the right, one row per configuration of the other keys."""
    if not panels:
        return None
    titles = list(dict.fromkeys(p.title for p in panels))[:MAX_PANELS // 2]
    claims = list(dict.fromkeys(p.claim for p in panels))
    modes = ordered_modes(line.gradient for p in panels for line in p.lines)
    styles = _styles(modes)
    baselines = sorted({line.baseline for p in panels for line in p.lines})
    dashes = {b: _LINES[i % len(_LINES)] for i, b in enumerate(baselines)}
    figure = Figure(figsize=(5.2 * len(claims), 3.6 * len(titles)), layout="constrained")
    axes = figure.subplots(len(titles), len(claims), squeeze=False)
    for panel in panels:
        if panel.title not in titles:
            continue
        ax = axes[titles.index(panel.title), claims.index(panel.claim)]
        ax.axhspan(panel.low, panel.high, color="0.85", zorder=0, label="claimed")
        for line in panel.lines:
            style = styles[line.gradient]
            ax.plot(line.x, line.y, color=style["color"], marker=style["marker"],
                    linestyle=dashes[line.baseline], markersize=5, label=line.label)
        xs = np.concatenate([line.x for line in panel.lines])
        if key == "alpha":
            ax.set_xlabel("order alpha")
        else:
            _steps_axis(ax, xs)
            ax.set_xlabel("number of steps N" if key == "n_steps" else name)
        _log_scale(ax, "y")
        ax.set_ylabel("memory / baseline" if panel.claim == "memory" else
                      "speed-up over baseline")
        ax.set_title(f"{panel.claim}: {panel.title}", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    figure.suptitle(title)
    return _save(figure, path)

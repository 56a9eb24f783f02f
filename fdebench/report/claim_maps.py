"""Claim maps: where each ratio claim of the published adjoint holds, as a function of the
number of steps N, the order alpha and the batch size.

From the claim values of :func:`fdebench.report.claims.claim_values` (one per mode run and
baseline, with the run's configuration), for every task whose runs vary a *map key* (``n_steps``,
``alpha``, ``batch_size``):

* a figure per task and map key: the measured memory ratio and speed-up against the key (mean
  over seeds), one line per mode and baseline, the claimed band shaded, one row of panels per
  configuration of the other varying keys;
* a sentence per task, mode, baseline and claim, computed from every value: the claim *holds at*
  a key value when no value measured there is worse than claimed (as a cell of the Claims table:
  within or better), so "holds for N >= 50 (measured N: 10 ... 400)", "holds for N <= 25",
  "holds at every measured N", "holds nowhere measured", or the values where it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from . import figures
from .grouping import config_label, format_value, ordered_modes
from .series import STEP_KEYS
from .tables import markdown_table

__all__ = ["MAP_KEYS", "MapLine", "MapPanel", "map_panels", "map_section", "where_it_holds"]

#: the configuration keys a claim is mapped over, and how a sentence names them
MAP_KEYS = {"n_steps": "N", "alpha": "alpha", "batch_size": "batch"}
WORSE = "worse"


class RatioClaim(Protocol):
    """What a map needs of a ratio claim (:class:`fdebench.report.claims.Claim`)."""

    name: str
    low: float
    high: float

    @property
    def claimed(self) -> str: ...


@dataclass(frozen=True)
class MapLine:
    """One mode against one baseline: the mean ratio (over seeds) at each value of the key."""

    gradient: str
    baseline: str
    x: np.ndarray
    y: np.ndarray

    @property
    def label(self) -> str:
        return f"{self.gradient} vs {self.baseline}"


@dataclass(frozen=True)
class MapPanel:
    """The lines of one claim at one configuration of the other varying keys."""

    claim: str
    title: str
    low: float
    high: float
    lines: list[MapLine]


def _other_keys(values: pd.DataFrame, config: Sequence[str], key: str) -> list[str]:
    """The configuration columns besides ``key`` (and, for ``n_steps``, the step size that
    sets it) that vary among ``values``."""
    skip = set(STEP_KEYS) if key == "n_steps" else {key}
    return [c for c in config if c not in skip and c in values.columns
            and values[c].nunique(dropna=True) > 1]


def map_panels(values: pd.DataFrame, claims: Sequence[RatioClaim], config: Sequence[str],
               key: str) -> list[MapPanel]:
    """The panels of one task's claim ``values`` (``config``: their configuration columns)
    over ``key``: one per ratio claim and configuration of the other varying keys in which
    ``key`` takes two or more values."""
    panels = []
    for claim in claims:
        of_claim = values[(values["claim"] == claim.name) & values[key].notna()]
        others = _other_keys(of_claim, config, key)
        groups = of_claim.groupby(others, dropna=False, sort=True) if others else \
            [((), of_claim)]
        for values_of_others, rows in groups:
            if rows[key].nunique() < 2:
                continue
            point = values_of_others if isinstance(values_of_others, tuple) else \
                (values_of_others,)
            lines = []
            for mode in ordered_modes(rows["gradient"]):
                for baseline in sorted(rows.loc[rows["gradient"] == mode, "baseline"].unique()):
                    these = rows[(rows["gradient"] == mode) & (rows["baseline"] == baseline)]
                    mean = these.groupby(key)["value"].mean()
                    lines.append(MapLine(mode, baseline, mean.index.to_numpy(float),
                                         mean.to_numpy(float)))
            panels.append(MapPanel(claim.name, config_label(others, point), claim.low,
                                   claim.high, lines))
    return panels


def _values_text(xs: list[float]) -> str:
    shown = [format_value(x) for x in xs]
    return ", ".join(shown) if len(shown) <= 3 else f"{shown[0]} ... {shown[-1]}"


def where_it_holds(holds: dict[float, bool], name: str) -> str:
    """The sentence for a claim that holds (``True``) or not at each measured value of a key
    called ``name``: ``holds for N >= 50 (measured N: 10 ... 400)`` and the like."""
    measured = sorted(holds)
    yes = [x for x in measured if holds[x]]
    suffix = f" (measured {name}: {_values_text(measured)})"
    if not yes:
        return "holds nowhere measured" + suffix
    if len(yes) == len(measured):
        return f"holds at every measured {name}" + suffix
    if yes == measured[-len(yes):]:
        return f"holds for {name} >= {format_value(yes[0])}" + suffix
    if yes == measured[:len(yes)]:
        return f"holds for {name} <= {format_value(yes[-1])}" + suffix
    return f"holds at {name} = {', '.join(format_value(x) for x in yes)} only" + suffix


def _sentences(values: pd.DataFrame, claims: Sequence[RatioClaim], key: str) -> pd.DataFrame:
    """One row per mode and baseline: the sentence of each ratio claim over ``key``."""
    rows = []
    ratio = values[values["claim"].isin([c.name for c in claims]) & values[key].notna()]
    for (mode, baseline), group in ratio.groupby(["gradient", "baseline"], sort=False):
        row = {"gradient": mode, "vs": baseline}
        for claim in claims:
            of_claim = group[group["claim"] == claim.name]
            if of_claim[key].nunique() < 2:
                continue
            holds = (of_claim["outcome"] != WORSE).groupby(of_claim[key]).all()
            row[f"{claim.name} ({claim.claimed})"] = where_it_holds(
                {float(x): bool(v) for x, v in holds.items()}, MAP_KEYS[key])
        if len(row) > 2:
            rows.append(row)
    order = {m: i for i, m in enumerate(ordered_modes(ratio["gradient"]))}
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return table.sort_values(["gradient", "vs"], key=lambda s: s.map(order) if s.name ==
                             "gradient" else s, kind="stable")


def map_section(values: pd.DataFrame, claims: Sequence[RatioClaim], config: Sequence[str],
                png: Callable[[str, str], Path] | None = None,
                figure_lines: Callable[[Path | None, str, str], list[str]] | None = None,
                ) -> list[str]:
    """The "Claim maps" lines of claim ``values`` (``config``: their configuration columns):
    per task and map key that varies, the sentences of the ratio ``claims`` and their figure
    (``png(task, kind)``: where it goes; ``figure_lines``: how it is embedded; without them,
    no figures)."""
    lines: list[str] = []
    for task, task_values in values.groupby("task", sort=False):
        for key, name in MAP_KEYS.items():
            if key not in task_values.columns:
                continue
            table = _sentences(task_values, claims, key)
            if table.empty:
                continue
            lines += [f"#### `{task}` over {name}", "", markdown_table(table), ""]
            if png is None or figure_lines is None:
                continue
            panels = map_panels(task_values, claims, config, key)
            drawn = figures.claim_map_figure(panels, png(str(task), f"claim_map_{key}"),
                                             f"{task}: claims against {name}", key, name)
            lines += figure_lines(drawn, f"claim map over {name}", (
                f"Measured ratio against {name} (mean over seeds), one line per mode and "
                "baseline; shaded: the claimed band; left: memory (mode / baseline, lower is "
                "better), right: speed-up (baseline time / mode time, higher is better)."))
    if not lines:
        return []
    return ["### Claim maps", "",
            "Where each claim holds as the number of steps N, the order alpha or the batch "
            "size varies: at a value the claim holds when no value measured there (any other "
            "configuration, any seed) is worse than claimed.", "", *lines]

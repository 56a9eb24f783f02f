"""The published adjoint's claims, checked against stored records: a report section "Claims".

Kang, Zhao, Song, Ji & Tay, "Efficient training of neural fractional-order differential
equation via adjoint backpropagation", AAAI 2025 (arXiv:2503.16666, code ``torchfde``), claim
that their adjoint, against direct differentiation, (1) needs 33-67 % of its memory, (2) trains
2-3x faster, (3) at comparable accuracy.  Each claim is computed from the records of every
gradient mode against each *direct baseline* present at the same task, configuration and seed:
the ``direct`` runs of the mode's own engine (``fdebench direct``) and of every engine in
:data:`BASELINE_ENGINES` (``textbook direct``: the scheme as research code writes it, the
implementation the paper measured against):

* memory ratio = ``peak_mem_bytes`` of the mode / the baseline's;
* speed-up = the baseline's ``time_per_iter_s`` / the mode's;
* accuracy: the task's headline metric (the first metric with a declared direction that both
  have; see ``metric_directions``), mean over seeds, against the baseline's: comparable when the
  difference is within ``max(tolerance, spread)``, the tolerance being
  :data:`ACCURACY_TOLERANCE` (1 percentage point) for a metric whose higher values are better
  (a fraction: an accuracy) and :data:`RELATIVE_TOLERANCE` (10 %) of the baseline's value for
  one whose lower values are better (an error), the spread the standard deviation of the
  baseline's metric over seeds.

Memory and speed come from every run, cost-only (``cost_only``: measured at full size without
training to convergence) and trained alike; accuracy from trained runs only.  Each measured value
is *within* the claim, *better* (beyond the claimed range in the favourable direction: less
memory, more speed, a better metric) or *worse*.  A (task, mode, baseline) cell holds when no
value is worse (``better than claimed`` when all are better); a claim holds against a baseline
when every cell holds, does not hold when none does, and otherwise holds only for the cells
listed.  Where the runs vary the number of steps, the order or the batch size, the claim maps
(:mod:`.claim_maps`) say where each claim holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..results import OK
from .claim_maps import map_section
from .grouping import config_keys, declared, metric_names, ordered_modes, with_modes
from .tables import markdown_table

__all__ = [
    "ACCURACY_TOLERANCE", "BASELINE_ENGINES", "CLAIMS", "RELATIVE_TOLERANCE", "Claim",
    "cell_verdicts", "claim_values", "claims_section", "overall_verdict",
]

#: an accuracy (a fraction) is comparable within this absolute difference: 1 percentage point
ACCURACY_TOLERANCE = 0.01
#: an error metric (lower is better: mse, param_rel_err, loss) is comparable within this
#: relative difference of the baseline's value
RELATIVE_TOLERANCE = 0.10
#: engines whose ``direct`` runs are a baseline for the modes of every engine (besides each
#: mode's own engine's direct)
BASELINE_ENGINES = ("textbook",)
#: the engine of records that do not name one
DEFAULT_ENGINE = "fdebench"
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
    #: the record field a ratio claim reads (``None``: the accuracy claim)
    field: str | None = None

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
          0.33, 0.67, "lower", "peak_mem_bytes"),
    Claim("speed", "the adjoint trains 2-3x faster than direct",
          "time_per_iter_s(direct) / time_per_iter_s(mode), same configuration and seed",
          2.0, 3.0, "higher", "time_per_iter_s"),
    Claim("accuracy", "at accuracy comparable to direct",
          "headline metric (trained runs), mean over seeds, minus direct's; comparable within 1 "
          "percentage point (higher-is-better metrics) or 10% of direct's value (lower-is-"
          "better), or the seeds' spread (std of direct's metric) when larger"),
)
RATIO_CLAIMS = tuple(c for c in CLAIMS if c.field is not None)


def _directions(runs: pd.DataFrame) -> dict[str, str]:
    """Each metric's declared direction (``higher`` / ``lower``), from the records'
    ``metric_directions``; metrics without one are never compared."""
    out: dict[str, str] = {}
    for metric, values in declared(runs, "metric_directions").items():
        given = [v for v in values if v in ("higher", "lower")]
        if given:
            out[metric] = given[-1]
    return out


def _engine(runs: pd.DataFrame) -> pd.Series:
    if "engine" not in runs.columns:
        return pd.Series(DEFAULT_ENGINE, runs.index)
    engine = runs["engine"].astype(object)
    return engine.where(engine.notna(), DEFAULT_ENGINE).astype(str)


def _cost_only(runs: pd.DataFrame) -> pd.Series:
    flag = runs["cost_only"] if "cost_only" in runs.columns else pd.Series(False, runs.index)
    return flag.fillna(False).astype(bool)


def _pairs(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Every (mode run, direct baseline run) of the same configuration (the engine aside) and
    seed, where the baseline's engine is the mode's own or one of :data:`BASELINE_ENGINES`;
    the baseline's columns carry the suffix ``_base`` and ``baseline`` names it."""
    on = [k for k in keys if k != "engine"] + ["seed" if "seed" in runs.columns else "_all"]
    runs = runs.assign(_all=0, _engine=_engine(runs), _cost_only=_cost_only(runs))
    direct = runs[runs["gradient"] == "direct"]
    modes = runs[runs["gradient"] != "direct"]
    pairs = modes.merge(direct, on=on, suffixes=("", "_base"))
    keep = (pairs["_engine_base"] == pairs["_engine"]) | pairs["_engine_base"].isin(
        BASELINE_ENGINES)
    pairs = pairs[keep]
    return pairs.assign(baseline=pairs["_engine_base"] + " direct")


def _ratio_rows(task: str, pairs: pd.DataFrame, keys: list[str]) -> list[dict]:
    """Memory ratios and speed-ups of every mode against each baseline, per configuration and
    seed, cost-only and trained runs alike."""
    rows = []
    for claim in RATIO_CLAIMS:
        mode = pd.to_numeric(pairs[claim.field], errors="coerce")
        base = pd.to_numeric(pairs[f"{claim.field}_base"], errors="coerce")
        value = mode / base if claim.favourable == "lower" else base / mode
        keep = (mode > 0) & (base > 0) & np.isfinite(value)
        for (_, pair), v in zip(pairs[keep].iterrows(), value[keep], strict=True):
            rows.append({"claim": claim.name, "task": task, "gradient": pair["gradient"],
                         "baseline": pair["baseline"], "value": v,
                         "outcome": claim.classify(v),
                         "cost_only": bool(pair["_cost_only"] or pair["_cost_only_base"]),
                         **{k: pair[k] for k in keys if k != "engine"}})
    return rows


def _accuracy_rows(task: str, pairs: pd.DataFrame, keys: list[str],
                   directions: dict[str, str], metrics: list[str]) -> list[dict]:
    """The headline metric of every mode against each baseline's, per configuration (trained
    runs only: a cost-only run has no metrics)."""
    trained = pairs[~(pairs["_cost_only"] | pairs["_cost_only_base"])]
    group = [k for k in keys if k != "engine"]
    rows = []
    for (mode, baseline, *values), config in trained.groupby(
            ["gradient", "baseline", *group], dropna=False, sort=False):
        row = _compare(config, metrics, directions)
        if row is not None:
            rows.append({"claim": "accuracy", "task": task, "gradient": mode,
                         "baseline": baseline, "cost_only": False, **row,
                         **dict(zip(group, values, strict=True))})
    return rows


def _compare(pairs: pd.DataFrame, metrics: list[str], directions: dict[str, str]) -> dict | None:
    """Difference of the first directed metric both sides have (mean over seeds; the
    baseline's seeds counted once each), and its outcome."""
    for metric in (m for m in metrics if m in directions):
        if f"{metric}_base" not in pairs.columns:
            continue
        base = pd.to_numeric(pairs.drop_duplicates("run_id_base")[f"{metric}_base"],
                             errors="coerce").dropna()
        values = pd.to_numeric(pairs.drop_duplicates("run_id")[metric], errors="coerce").dropna()
        if base.empty or values.empty:
            continue
        higher = directions[metric] == "higher"
        reference = base.mean()
        tolerance = ACCURACY_TOLERANCE if higher else RELATIVE_TOLERANCE * abs(reference)
        tolerance = max(tolerance, base.std() if len(base) > 1 else 0.0)
        difference = values.mean() - reference
        gain = difference if higher else -difference
        outcome = WITHIN if abs(difference) <= tolerance else BETTER if gain > 0 else WORSE
        return {"metric": metric, "higher": higher, "value": difference,
                "tolerance": tolerance, "outcome": outcome}
    return None


COLUMNS = ["claim", "task", "gradient", "baseline", "value", "outcome", "cost_only", "metric",
           "higher", "tolerance"]


def claim_values(runs: pd.DataFrame) -> pd.DataFrame:
    """Every measured value of every claim: columns ``claim``, ``task``, ``gradient``,
    ``baseline`` (``fdebench direct``, ``textbook direct``), ``value``, ``outcome`` (within /
    better / worse), ``cost_only`` (a value from a cost-only run), for accuracy ``metric``,
    ``higher`` (its direction) and ``tolerance``, then the configuration's keys (``alpha``,
    ``n_steps``, ...).  Only ``ok`` runs of tasks with a direct baseline and another mode."""
    rows: list[dict] = []
    runs = with_modes(runs)  # revolve+soe is a mode compared with the direct baselines
    ok = runs[runs["status"] == OK] if "status" in runs.columns else runs
    directions = _directions(ok)
    for task, task_runs in ok.groupby("task", sort=False):
        if "direct" not in set(task_runs["gradient"]):
            continue
        keys = config_keys(task_runs)
        pairs = _pairs(task_runs, keys)
        if pairs.empty:
            continue
        rows += _ratio_rows(str(task), pairs, keys)
        rows += _accuracy_rows(str(task), pairs, keys, directions, metric_names(task_runs))
    table = pd.DataFrame(rows)
    return table.reindex(columns=[*COLUMNS, *(c for c in table.columns if c not in COLUMNS)])


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
        scale, unit = (100, " pp") if bool(group["higher"].iloc[0]) else (1, "")
        return (f"{metric}: {low * scale:+.3g}{unit} to {high * scale:+.3g}{unit} "
                f"(tolerance ±{group['tolerance'].max() * scale:.3g}{unit})")
    fmt = "{:.2f}" if claim == "memory" else "{:.2f}x"
    return fmt.format(low) if math.isclose(low, high) else \
        f"{fmt.format(low)} to {fmt.format(high)}"


def _runs_used(group: pd.DataFrame) -> str:
    """Which kinds of run a cell's values come from, with the numbers of steps."""
    cost = group["cost_only"].astype(bool)
    parts = [f"{count} {kind}" for count, kind in ((int(cost.sum()), "cost-only"),
                                                   (int((~cost).sum()), "trained")) if count]
    if "n_steps" in group.columns and group["n_steps"].notna().any():
        steps = sorted({int(n) for n in group["n_steps"].dropna()})
        parts.append(f"N = {steps[0]}" if len(steps) == 1 else f"N = {steps[0]}-{steps[-1]}")
    return ", ".join(parts)


def cell_verdicts(values: pd.DataFrame) -> pd.DataFrame:
    """One row per claim, task, mode and baseline: the measured range, how many values and
    from which runs, the verdict."""
    rows = []
    for claim in CLAIMS:
        of_claim = values[values["claim"] == claim.name]
        for (task, baseline), group_values in of_claim.groupby(["task", "baseline"], sort=False):
            for mode in ordered_modes(group_values["gradient"]):
                group = group_values[group_values["gradient"] == mode]
                rows.append({"claim": claim.name, "task": task, "gradient": mode,
                             "baseline": baseline, "measured": _measured(claim.name, group),
                             "n": len(group), "runs": _runs_used(group),
                             "verdict": _cell_verdict(group["outcome"])})
    return pd.DataFrame(rows, columns=["claim", "task", "gradient", "baseline", "measured", "n",
                                       "runs", "verdict"])


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


def verdict_table(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per claim and baseline: the statement, the claimed range, the verdict."""
    rows = []
    for claim in CLAIMS:
        of_claim = cells[cells["claim"] == claim.name]
        for baseline in sorted(of_claim["baseline"].unique()) or [None]:
            these = of_claim[of_claim["baseline"] == baseline]
            rows.append({"claim": claim.statement, "claimed": claim.claimed,
                         "vs": baseline or "", "measure": claim.measure,
                         "verdict": overall_verdict(these)})
    return pd.DataFrame(rows)


def claims_section(runs: pd.DataFrame, png: Callable[[str, str], Path] | None = None,
                   figure_lines: Callable[[Path | None, str, str], list[str]] | None = None,
                   ) -> list[str]:
    """The "Claims" section of a report (nothing when no task has a direct baseline and
    another mode), closed by the claim maps (:mod:`.claim_maps`) where the runs vary N, alpha
    or the batch size; ``png(task, kind)`` and ``figure_lines`` place their figures."""
    values = claim_values(runs)
    if values.empty:
        return []
    cells = cell_verdicts(values)
    lines = ["## Claims", "",
             "The claims of the published adjoint (Kang et al., AAAI 2025, arXiv:2503.16666) "
             "against direct differentiation, checked on every gradient mode of these runs "
             "against each direct baseline present (`fdebench direct`: this engine's; "
             "`textbook direct`: the scheme as research code writes it, the baseline the paper "
             "measured against), `ok` runs only, computed from the records by "
             "`fdebench.report.claims`. Memory and speed come from cost-only and trained runs "
             "alike, accuracy from trained runs only (`runs` says which each verdict used). A "
             "value is within the claimed range, better (beyond it in the favourable "
             "direction) or worse; a task/mode cell holds when no value is worse (*better "
             "than claimed* when all are better); a claim holds when every cell holds.", ""]
    lines += [markdown_table(verdict_table(cells)), ""]
    table = cells.assign(claim=cells["claim"].map({c.name: c.claimed for c in CLAIMS}))
    lines += ["Per task, mode and baseline (the range over configurations and seeds; `n`: "
              "values):", "", markdown_table(table.astype(str)), ""]
    config = [c for c in values.columns if c not in COLUMNS]
    return lines + map_section(values, RATIO_CLAIMS, config, png, figure_lines)

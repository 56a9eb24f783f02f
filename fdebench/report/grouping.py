"""Which columns of a task's runs define a configuration, and how to print them.

A *configuration* is one point of the suite's grid without the gradient mode and the seed: the
config keys that vary within the task (``alpha``, ``method``, ``step_size``, ``n_steps``, task
parameters such as ``noise``).  Outcome and measurement columns, ``env.*`` and the task's
metrics are never config keys.  When run ids follow the ``task[key=value,...]`` pattern, only
the keys they name (plus the discretisation and the device) count, so that an unknown
measurement column cannot split the rows of one configuration.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "GRADIENT_ORDER", "config_keys", "config_label", "format_value", "metric_names",
    "ordered_modes", "with_n_steps",
]

#: gradient modes in the order tables and legends show them; others follow, sorted
GRADIENT_ORDER = ("direct", "adjoint", "checkpoint")
#: identity, outcome and measurement fields of a run record: never config keys
NOT_CONFIG = frozenset({
    "suite", "run_id", "config_hash", "task", "gradient", "seed",
    "status", "message", "traceback", "started_at", "wall_s",
    "time_per_iter_s", "time_per_iter_iqr_s", "time_forward_s", "time_backward_s",
    "epoch_time_s", "setup_time_s", "data_time_s", "data",
    "peak_mem_bytes", "peak_reserved_bytes", "nvml_peak_used_bytes",
    "nfe_forward", "nfe_backward", "grad_rel_err", "grad_cosine", "metric_names", "train_curve",
    "timed_iters", "iterations", "stopped_early",
})
#: config keys whether or not the run ids name them (n_steps is derived from step_size)
ALWAYS_CONFIG = ("alpha", "method", "t_end", "n_steps", "step_size", "device")
_RUN_ID = re.compile(r"\[(.*)\]\s*$")


def ordered_modes(modes: Iterable[Any]) -> list[str]:
    """The distinct gradient modes in ``modes``: direct, adjoint, checkpoint, then the rest."""
    distinct = {str(m) for m in modes if not _missing(m)}
    known = [m for m in GRADIENT_ORDER if m in distinct]
    return known + sorted(distinct - set(known))


def metric_names(runs: pd.DataFrame) -> list[str]:
    """The task's quality metrics, headline first: the ordered union of ``metric_names``
    lists, restricted to columns present."""
    names: list[str] = []
    for value in runs.get("metric_names", pd.Series(dtype=object)):
        if isinstance(value, list):
            names += [n for n in value if n not in names]
    return [n for n in names if n in runs.columns]


def _run_id_keys(run_ids: pd.Series) -> set[str] | None:
    """The keys named in ``task[key=value,...]`` run ids, or ``None`` if some id is not of
    that form."""
    keys: set[str] = set()
    for run_id in run_ids:
        match = _RUN_ID.search(str(run_id)) if isinstance(run_id, str) else None
        if match is None:
            return None
        keys |= {part.split("=", 1)[0].strip() for part in match[1].split(",") if "=" in part}
    return keys


def _is_candidate(runs: pd.DataFrame, column: str, metrics: list[str]) -> bool:
    """Whether ``column`` may be a config key: a scalar, non-measurement column that varies."""
    if column in NOT_CONFIG or column in metrics or column.startswith("env."):
        return False
    values = runs[column]
    if values.map(lambda v: isinstance(v, (list, dict))).any():
        return False
    return values.nunique(dropna=False) > 1


def config_keys(runs: pd.DataFrame) -> list[str]:
    """The config keys of one task's runs (those that vary, gradient and seed excluded), the
    discretisation first (alpha, method, t_end, n_steps, step_size, device) then the rest.

    Only ``ok`` runs count when there are any: a failed run's record may lack fields."""
    ok = runs[runs["status"] == "ok"]
    runs = ok if len(ok) else runs
    metrics = metric_names(runs)
    keys = [c for c in runs.columns if _is_candidate(runs, c, metrics)]
    named = _run_id_keys(runs["run_id"]) if len(runs) else None
    if named is not None:
        keys = [k for k in keys if k in named or k in ALWAYS_CONFIG]
    first = [k for k in ALWAYS_CONFIG if k in keys]
    return first + [k for k in keys if k not in first]


def _missing(value: Any) -> bool:
    """``None`` or a float NaN (pandas' missing values)."""
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def format_value(value: Any) -> str:
    """A config value as text: integral floats without ``.0``, missing values empty."""
    if _missing(value):
        return ""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return str(value)


def config_label(keys: list[str], values: Iterable[Any]) -> str:
    """``"alpha=0.5, n_steps=100"`` for one configuration (``"all runs"`` without keys)."""
    parts = [f"{k}={format_value(v)}" for k, v in zip(keys, values, strict=True)]
    return ", ".join(parts) or "all runs"


def with_n_steps(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``n_steps`` filled in from ``t_end / step_size`` where it is missing."""
    if not {"t_end", "step_size"} <= set(runs.columns):
        return runs
    derived = (pd.to_numeric(runs["t_end"], errors="coerce")
               / pd.to_numeric(runs["step_size"], errors="coerce")).round()
    current = runs["n_steps"] if "n_steps" in runs.columns else derived * np.nan
    return runs.assign(n_steps=pd.to_numeric(current, errors="coerce").fillna(derived))

"""Which columns of a task's runs define a configuration, and how to print them.

A *configuration* is one point of the suite's grid without the gradient mode and the seed: the
config keys that vary within the task (``alpha``, ``method``, ``step_size``, ``n_steps``, task
parameters such as ``noise``).  The record schema (:mod:`fdebench.results.schema`) says which
columns are configuration: a record lists its ``config_keys`` and the ``id_keys`` its run id
names; only those (plus the discretisation and the device) count, so that a measurement
column can never split the rows of one configuration.  Records written before ``id_keys``
existed fall back to every varying column that is not a record field or a metric.

A *gradient mode* in a report is the record's ``gradient`` with its history when that is not
``auto`` (:func:`with_modes`): ``revolve+soe`` runs the compressed scheme, which is part of how
it differentiates, so it is compared with ``direct`` and ``adjoint`` at the same configuration
rather than split into a configuration of its own (``history`` and ``soe_tol`` are never
config keys).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..results import OK, RECORD_FIELDS

__all__ = [
    "GRADIENT_ORDER", "MODE_KEYS", "config_keys", "config_label", "declared", "format_value",
    "metric_names", "ordered_modes", "with_modes",
]

#: gradient modes in the order tables and legends show them; others follow, sorted
GRADIENT_ORDER = ("direct", "adjoint", "checkpoint")
#: configuration keys that belong to the gradient mode's label (:func:`with_modes`)
MODE_KEYS = ("history", "soe_tol")
#: identity, outcome and measurement fields of a run record: never config keys
NOT_CONFIG = frozenset(RECORD_FIELDS) - {"device"} | {"gradient", "seed", *MODE_KEYS}
#: config keys whether or not the run ids name them (``n_steps``: the runner's, from
#: ``t_end`` and ``step_size``, stored in every record and never recomputed here)
ALWAYS_CONFIG = ("alpha", "method", "t_end", "n_steps", "step_size", "device")


def ordered_modes(modes: Iterable[Any]) -> list[str]:
    """The distinct gradient modes in ``modes``: direct, adjoint, checkpoint, then the rest."""
    distinct = {str(m) for m in modes if not _missing(m)}
    known = [m for m in GRADIENT_ORDER if m in distinct]
    return known + sorted(distinct - set(known))


def declared(runs: pd.DataFrame, field: str) -> dict[str, pd.Series]:
    """What the records declare under the mapping ``field`` (``metric_directions``,
    ``true_values``), key by key: loaded records have it flattened into ``field.key`` columns
    (:func:`fdebench.results.load`), a frame built by hand may hold the dicts themselves."""
    out = {column.removeprefix(f"{field}."): runs[column] for column in runs.columns
           if column.startswith(f"{field}.")}
    if field in runs.columns:
        for value in runs[field]:
            for key in value if isinstance(value, dict) else ():
                out.setdefault(key, runs[field].map(
                    lambda v, k=key: v.get(k) if isinstance(v, dict) else None))
    return out


def metric_names(runs: pd.DataFrame) -> list[str]:
    """The task's quality metrics, headline first: the ordered union of ``metric_names``
    lists, restricted to columns present."""
    names: list[str] = []
    for value in runs.get("metric_names", pd.Series(dtype=object)):
        if isinstance(value, list):
            names += [n for n in value if n not in names]
    return [n for n in names if n in runs.columns]


def _named_keys(runs: pd.DataFrame) -> set[str] | None:
    """The union of the records' ``id_keys`` (``None`` when some record predates them)."""
    if "id_keys" not in runs.columns:
        return None
    keys: set[str] = set()
    for value in runs["id_keys"]:
        if not isinstance(value, list):
            return None
        keys |= set(value)
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
    ok = runs[runs["status"] == OK]
    runs = ok if len(ok) else runs
    metrics = metric_names(runs)
    keys = [c for c in runs.columns if _is_candidate(runs, c, metrics)]
    named = _named_keys(runs) if len(runs) else None
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


def with_modes(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with each ``gradient`` labelled by its history when that is not ``auto``
    (``revolve+soe``, ``adjoint+stepwise``), and by ``soe_tol`` too (``revolve+soe(1e-06)``)
    when the ``soe`` runs use several; records without a history are left as they are.
    Idempotent: a labelled gradient is not labelled again."""
    if "history" not in runs.columns or runs.empty:
        return runs
    history = runs["history"].map(format_value)
    labelled = runs["gradient"].map(lambda g: "+" in str(g))
    mark = ~labelled & ~history.isin(["", "auto"])
    if not mark.any():
        return runs
    suffix = "+" + history
    soe = mark & (history == "soe")
    if "soe_tol" in runs.columns and runs.loc[soe, "soe_tol"].nunique() > 1:
        suffix = suffix.where(~soe, suffix + "(" + runs["soe_tol"].map(format_value) + ")")
    gradient = runs["gradient"].astype(object).where(~mark, runs["gradient"].astype(str) + suffix)
    return runs.assign(gradient=gradient)


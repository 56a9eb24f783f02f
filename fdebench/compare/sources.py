"""The two kinds of results ``fdebench compare`` reads, as one shape: runs x numeric metrics.

* harness results: a results folder, a parent of several, or a ``runs.jsonl`` file (read with
  :func:`fdebench.results.load`, the latest record of each run).  A run is a ``run_id``
  (``suite/run_id`` when the folder holds several suites); its metrics are the records' numeric
  columns; ``config_hash`` and ``status`` come along.
* a pytest-benchmark JSON file (``--benchmark-json``, or one of ``--benchmark-autosave``'s
  files).  A run is a benchmark's ``fullname``; its metrics are the numeric ``stats`` (``median``,
  ``mean``, ``min``, ...) and the numeric ``extra_info`` entries, by name (an ``extra_info`` key
  that is also a statistic's name becomes ``extra_info.<key>``).
"""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import InputError, MissingInput
from ..results import load

__all__ = ["BENCHMARKS", "RUNS", "Results", "read_results"]

RUNS = "harness results"
BENCHMARKS = "pytest-benchmark JSON"


@dataclass
class Results:
    """One side of a comparison."""

    path: Path
    kind: str  # RUNS or BENCHMARKS
    #: run key -> metric -> value (numbers only; a missing metric is absent)
    metrics: dict[str, dict[str, float]]
    #: run key -> how to show it (the benchmark's short name where it is unique)
    labels: dict[str, str]
    #: run key -> config hash (harness results)
    config_hash: dict[str, Any] = field(default_factory=dict)
    #: run key -> (status, message) (harness results)
    status: dict[str, tuple[str, str]] = field(default_factory=dict)
    #: what the results were measured on, when the file says (benchmark JSON: the CPU)
    machine: str | None = None

    @property
    def metric_names(self) -> set[str]:
        return {name for values in self.metrics.values() for name in values}


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a real number (not a bool), else ``None``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def _read_benchmarks(path: Path) -> Results:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise InputError(f"{path}: not a pytest-benchmark JSON file (no 'benchmarks' list)")
    metrics: dict[str, dict[str, float]] = {}
    names: dict[str, str] = {}
    for bench in data["benchmarks"]:
        key = bench.get("fullname") or bench["name"]
        stats = {k: v for k, v in bench.get("stats", {}).items() if _number(v) is not None}
        values = {k: float(v) for k, v in stats.items()}
        for k, v in bench.get("extra_info", {}).items():
            if _number(v) is not None:
                values[f"extra_info.{k}" if k in stats else k] = float(v)
        metrics[key] = values
        names[key] = bench.get("name") or key
    unique = len(set(names.values())) == len(names)
    labels = {key: names[key] if unique else key for key in metrics}
    info = data.get("machine_info", {})
    cpu = info.get("cpu", {}).get("brand_raw") if isinstance(info.get("cpu"), dict) else None
    torch = info.get("torch_version")
    machine = ", ".join(filter(None, [cpu, torch and f"torch {torch}"])) or None
    return Results(path, BENCHMARKS, metrics, labels, machine=machine)


def _numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Columns whose non-missing values are all real numbers (bools and strings excluded)."""
    columns = []
    for column in frame.columns:
        values = frame[column].dropna()
        if len(values) and all(_number(v) is not None for v in values):
            columns.append(column)
    return columns


def _read_runs(path: Path) -> Results:
    frame = load(path)
    several = frame["suite"].nunique() > 1
    keys = [f"{s}/{r}" if several else str(r) for s, r in zip(frame["suite"], frame["run_id"],
                                                               strict=True)]
    columns = _numeric_columns(frame)
    metrics, config_hash, status = {}, {}, {}
    for key, (_, row) in zip(keys, frame.iterrows(), strict=True):
        metrics[key] = {c: float(row[c]) for c in columns
                        if row[c] is not None and not math.isnan(float(row[c]))}
        config_hash[key] = row.get("config_hash")
        message = row.get("message")
        status[key] = (str(row["status"]), "" if not isinstance(message, str) else message)
    return Results(path, RUNS, metrics, {k: k for k in keys}, config_hash, status)


def read_results(path: str | Path) -> Results:
    """The results at ``path``: a ``.json`` file is read as pytest-benchmark output, anything
    else as harness results.  A missing path raises ``FileNotFoundError`` naming it."""
    path = Path(path)
    if not path.exists():
        raise MissingInput(f"no results at {path}: no such file or folder")
    if path.is_file() and path.suffix == ".json":
        return _read_benchmarks(path)
    return _read_runs(path)

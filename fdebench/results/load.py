"""Stored run records as one pandas table (one row per run, the latest record of each)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import MissingInput
from .storage import read_records

__all__ = ["RUNS_FILE", "load", "runs_files"]

#: the file a suite's records are appended to, inside ``results/<suite>/``
RUNS_FILE = "runs.jsonl"
#: columns every loaded table has, even when no record sets them
CORE_COLUMNS = ("suite", "run_id", "task", "gradient", "status")


def runs_files(path: str | Path) -> list[Path]:
    """The records files ``path`` names: a ``.jsonl`` file, a suite folder holding
    ``runs.jsonl``, or a parent folder of suites (every ``*/runs.jsonl``, sorted)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise MissingInput(f"no results at {path}: no such file or folder")
    if (path / RUNS_FILE).is_file():
        return [path / RUNS_FILE]
    files = sorted(path.glob(f"*/{RUNS_FILE}"))
    if not files:
        raise MissingInput(
            f"no results in {path}: expected {path / RUNS_FILE} or {path}/<suite>/{RUNS_FILE}"
        )
    return files


def _records(files: list[Path]) -> list[dict[str, Any]]:
    """All records of ``files`` in order; a record without ``suite`` gets its folder's name."""
    records = []
    for file in files:
        for record in read_records(file):
            if record.get("suite") is None:
                record["suite"] = file.parent.name
            records.append(record)
    return records


def _latest(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the last record of each ``(suite, run_id)`` (re-runs replace earlier records), in
    the order of those last records; records without a run id are all kept."""
    latest: dict[Any, dict[str, Any]] = {}
    for i, record in enumerate(records):
        run_id = record.get("run_id")
        key = (record["suite"], run_id) if run_id is not None else i
        latest.pop(key, None)  # re-insert so the order is that of the latest records
        latest[key] = record
    return list(latest.values())


def _flatten(records: list[dict[str, Any]]) -> pd.DataFrame:
    """``pd.json_normalize`` with ``None`` dropped for ``env`` and keys that are objects
    elsewhere (so a missing ``env`` adds no stray ``env`` column next to ``env.*``)."""
    nested = {"env"} | {k for r in records for k, v in r.items() if isinstance(v, dict)}
    records = [{k: v for k, v in r.items() if not (v is None and k in nested)} for r in records]
    return pd.json_normalize(records, sep=".") if records else pd.DataFrame()


def load(path: str | Path) -> pd.DataFrame:
    """The run records under ``path`` as a DataFrame, one row per run.

    ``path`` is a suite folder (``results/quickstart``, reading its ``runs.jsonl``), a parent
    folder of suites (``results/``, reading every ``*/runs.jsonl``) or a ``.jsonl`` file.  When a
    run id appears several times in a suite the last record wins.  Nested objects are flattened
    into dotted columns (``env.torch_version``); list values (``train_curve``, ``metric_names``)
    stay Python lists.  The columns ``suite, run_id, task, gradient, status`` always exist.
    Raises ``FileNotFoundError`` naming ``path`` when there is nothing to read.
    """
    records = _latest(_records(runs_files(path)))
    frame = _flatten(records)
    for column in CORE_COLUMNS:
        if column not in frame.columns:
            frame[column] = pd.Series([None] * len(frame), dtype=object)
    return frame

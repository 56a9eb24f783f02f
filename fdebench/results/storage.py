"""Run records on disk: one JSON object per line of ``runs.jsonl``, appended as runs finish.

Each record is written with a single ``write`` and then flushed and ``fsync``-ed, so a run that
finished is on disk before the next one starts: Ctrl-C or ``kill -9`` loses at most the run in
progress.  A crash in the middle of a write leaves a truncated last line; :func:`read_records`
skips it with a warning and :func:`append_record` starts the next record on a fresh line.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from .schema import OK

__all__ = ["append_record", "completed_ok", "read_records"]


def _to_json(value: Any) -> Any:
    """``json.dumps`` fallback for numpy scalars and arrays (``.tolist()``) and paths."""
    if hasattr(value, "tolist"):  # numpy arrays and scalars, without importing numpy
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"run record value {value!r} of type {type(value).__name__} is not JSON")


def _needs_newline(path: Path) -> bool:
    """Whether ``path`` ends in a partial line (a crash mid-write) that the next record must
    not be glued to."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with path.open("rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line to ``path`` (parents created), flushed and fsync-ed.

    Non-finite floats are written as ``NaN``/``Infinity`` (Python's ``json`` reads them back).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, default=_to_json) + "\n"
    if _needs_newline(path):
        line = "\n" + line
    with path.open("a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


def _parse_line(line: str, path: Path, number: int, last: bool) -> dict[str, Any] | None:
    """The record on one line, or ``None`` (with a warning) when it is not a JSON object."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        where = "truncated last line" if last else "unreadable line"
        warnings.warn(f"{path}:{number}: skipping {where} ({error})", stacklevel=3)
        return None
    if not isinstance(record, dict):
        warnings.warn(f"{path}:{number}: skipping a line that is not a JSON object", stacklevel=3)
        return None
    return record


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Every record of the JSON-lines file ``path``, in file order.

    Blank lines are ignored; a line that does not parse (normally the last one, cut short by a
    crash) is skipped with a warning instead of failing.  A missing file raises
    ``FileNotFoundError``.
    """
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    records = []
    for i, line in enumerate(lines):
        if line.strip():
            record = _parse_line(line, path, i + 1, last=i == last)
            if record is not None:
                records.append(record)
    return records


def completed_ok(path: str | Path) -> dict[str, str | None]:
    """``run_id -> config_hash`` of the runs whose latest record in ``path`` has status ``ok``.

    For resuming a suite: a run can be skipped when ``done.get(run_id) == config_hash``.  The
    latest record of a run id decides (a later failed re-run means it is not done).  A missing
    file means nothing is done yet.
    """
    path = Path(path)
    if not path.exists():
        return {}
    latest = {r["run_id"]: r for r in read_records(path) if r.get("run_id") is not None}
    return {run_id: r.get("config_hash") for run_id, r in latest.items()
            if r.get("status") == OK}


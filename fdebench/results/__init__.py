"""Run records: append them to ``results/<suite>/runs.jsonl`` and load them into pandas.

No torch here: reports and notebooks read results without the engine.
"""

from .load import RUNS_FILE, load
from .schema import (
    ERROR,
    MEASUREMENT_FIELDS,
    NAN,
    OK,
    OOM,
    RECORD_FIELDS,
    STATUSES,
    TIMEOUT,
    RunRecord,
    amend,
    collisions,
)
from .storage import append_record, completed_ok, read_records

__all__ = [
    "ERROR", "MEASUREMENT_FIELDS", "NAN", "OK", "OOM", "RECORD_FIELDS", "RUNS_FILE", "STATUSES",
    "TIMEOUT", "RunRecord", "amend", "append_record", "collisions", "completed_ok", "load",
    "read_records",
]

"""Run records: append them to ``results/<suite>/runs.jsonl`` and load them into pandas.

No torch here: reports and notebooks read results without the engine.
"""

from .load import RUNS_FILE, load
from .schema import MEASUREMENT_FIELDS, RECORD_FIELDS, RunRecord
from .storage import append_record, completed_ok, read_records

__all__ = [
    "MEASUREMENT_FIELDS", "RECORD_FIELDS", "RUNS_FILE", "RunRecord", "append_record",
    "completed_ok", "load", "read_records",
]

"""Run records: append them to ``results/<suite>/runs.jsonl`` and load them into pandas.

No torch here: reports and notebooks read results without the engine.
"""

from .load import RUNS_FILE, load
from .storage import append_record, completed_ok, read_records

__all__ = ["RUNS_FILE", "append_record", "completed_ok", "load", "read_records"]

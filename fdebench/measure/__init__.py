"""Measurement recipes shared by the whole project: time, peak memory, environment.

Knows nothing of FDEs.
"""

from .environment import fingerprint
from .errors import relative_error
from .memory import AllocatorPeak, ProcessPeak
from .timing import median_iqr, now

__all__ = ["AllocatorPeak", "ProcessPeak", "fingerprint", "median_iqr", "now", "relative_error"]

"""Reports from stored results only (no torch, no engine): markdown tables and PNG figures.

``write_report("results/quickstart", "reports")`` writes ``reports/quickstart/README.md``.
"""

from .markdown import write_report, write_suite_report
from .series import growth_exponent

__all__ = ["growth_exponent", "write_report", "write_suite_report"]

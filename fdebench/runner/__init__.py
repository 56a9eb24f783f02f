"""Suites -> runs -> records.  The only package that combines engine, tasks, measure, results."""

from .description import RunDescription
from .executors import EXECUTORS
from .grid import RunSpec, expand
from .suite import plan, run_suite
from .suite_file import Measure, Suite, SuiteError, bundled_suites, find_suite, load_suite

__all__ = [
    "EXECUTORS", "Measure", "RunDescription", "RunSpec", "Suite", "SuiteError", "bundled_suites",
    "expand", "find_suite", "load_suite", "plan", "run_suite",
]

"""Suites -> runs -> records.  The only package that combines engine, tasks, measure, results."""

from .config import Suite, SuiteError, bundled_suites, find_suite, load_suite
from .executors import EXECUTORS
from .grid import RunSpec, expand
from .suite import plan, run_suite

__all__ = [
    "EXECUTORS", "RunSpec", "Suite", "SuiteError", "bundled_suites", "expand", "find_suite",
    "load_suite", "plan", "run_suite",
]

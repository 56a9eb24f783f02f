"""``fdebench compare``: two harness results folders or two pytest-benchmark JSON files, run by
run, against thresholds such as ``peak_mem_bytes:+10%,grad_rel_err:<1e-8``.

No torch here: comparing stored results needs neither the engine nor a device.
"""

from __future__ import annotations

from pathlib import Path

from .compare import Comparison, compare
from .render import FORMATS, render
from .sources import Results, read_results
from .spec import Threshold, parse_fail_on

__all__ = [
    "FORMATS", "Comparison", "Results", "Threshold", "compare", "compare_paths",
    "parse_fail_on", "read_results", "render",
]


def compare_paths(baseline: str | Path, current: str | Path, fail_on: str | None = None,
                  *, allow_missing: bool = False) -> Comparison:
    """Parse ``fail_on``, read both sides and compare them (errors raise ``ValueError`` or
    ``FileNotFoundError`` with a one-line message per problem)."""
    thresholds = parse_fail_on(fail_on) if fail_on is not None else []
    return compare(read_results(baseline), read_results(current), thresholds,
                   allow_missing=allow_missing)

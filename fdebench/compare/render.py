"""The comparison as text: a table (terminal or markdown), a summary, the regressions."""

from __future__ import annotations

from ..errors import InputError
from .compare import Comparison

__all__ = ["FORMATS", "render"]

#: ``--format`` -> tabulate table format
FORMATS = {"terminal": "simple", "markdown": "github"}


def render(comparison: Comparison, fmt: str = "terminal") -> str:
    """The table of changes, then ``N runs compared: ...`` and one line per regression."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; valid formats: {', '.join(sorted(FORMATS))}")
    table = comparison.table
    lines = []
    if len(table):
        shown = table if table["limit"].astype(bool).any() else table.drop(columns=["limit",
                                                                                   "result"])
        lines += [shown.to_markdown(index=False, tablefmt=FORMATS[fmt],
                                    disable_numparse=True), ""]
    else:
        lines += ["no metric changed", ""]
    count = len(comparison.regressions)
    lines.append(f"{comparison.runs} runs compared, {len(table)} rows: "
                 + (f"{count} regression(s):" if count else "no regression"))
    lines += [f"- {line}" for line in comparison.regressions]
    return "\n".join(lines) + "\n"

"""Regression thresholds parsed from ``--fail-on`` strings like ``peak_mem_bytes:+10%``.

Grammar: a comma-separated list of ``METRIC:LIMIT`` items, ``METRIC`` a record column or a
benchmark statistic / ``extra_info`` key, ``LIMIT`` one of

=========  ==========================================================================
``+N%``    the current value may exceed the baseline by at most N percent
``-N%``    the current value may fall below the baseline by at most N percent
``+N``     ... exceed the baseline by at most N, in the metric's own units
``-N``     ... fall below the baseline by at most N, in the metric's own units
``+Npp``   ``+N`` in percentage points: N / 100 (for fractions such as ``test_accuracy``)
``-Npp``   ``-N`` in percentage points: ``test_accuracy:-1pp`` allows 0.95 -> 0.94
``<N``     the current value must be below N, whatever the baseline
``>N``     the current value must be above N, whatever the baseline
=========  ==========================================================================

A metric may have several items; each is checked.  Relative limits scale the baseline, so a
baseline of 0 allows no increase at all: gate such metrics with ``<N``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import InputError

__all__ = ["Threshold", "parse_fail_on"]

_ITEM = re.compile(r"^(?P<metric>[A-Za-z_][\w.\-]*):(?P<op>[-+<>])(?P<number>[^%]+?)"
                   r"(?P<unit>%|pp)?$")
GRAMMAR = "METRIC:LIMIT with LIMIT one of +N%, -N%, +N, -N, +Npp, -Npp, <N, >N"


@dataclass(frozen=True)
class Threshold:
    """One ``METRIC:LIMIT`` item; :meth:`limit` turns it into a bound on the current value."""

    metric: str
    op: str  # "+", "-", "<" or ">"
    amount: float
    unit: str  # "%", "pp" or "" (the metric's units)
    text: str  # the item as written

    @property
    def needs_baseline(self) -> bool:
        """Whether the bound depends on the baseline value (``+``/``-`` limits)."""
        return self.op in "+-"

    @property
    def upper(self) -> bool:
        """Whether the bound is an upper bound (``+`` and ``<``)."""
        return self.op in "+<"

    def limit(self, baseline: float) -> float:
        """The bound the current value must respect, given the baseline value."""
        if not self.needs_baseline:
            return self.amount
        sign = 1.0 if self.op == "+" else -1.0
        if self.unit == "%":
            return baseline + sign * abs(baseline) * self.amount / 100
        return baseline + sign * (self.amount / 100 if self.unit == "pp" else self.amount)

    def fails(self, baseline: float, current: float) -> bool:
        """Whether ``current`` breaks this threshold (``+``/``-``: the limit itself passes;
        ``<``/``>``: strict)."""
        bound = self.limit(baseline)
        if self.op == "+":
            return current > bound
        if self.op == "-":
            return current < bound
        return current >= bound if self.op == "<" else current <= bound

    def describe(self, baseline: float) -> str:
        """``<= 11,000,000 (+10%)`` or ``< 1e-08``: the bound (and the change that set it)."""
        if not self.needs_baseline:
            return f"{self.op} {format_number(self.amount)}"
        relation = "<=" if self.op == "+" else ">="
        return (f"{relation} {format_number(self.limit(baseline))} "
                f"({self.op}{self.amount:g}{self.unit})")


def format_number(value: float) -> str:
    """Large values (bytes) as integers with thousands separators, others with 4 significant
    digits; ``-`` for a missing value."""
    if value is None or math.isnan(value):
        return "-"
    if 1e4 <= abs(value) < 1e15 or (float(value).is_integer() and abs(value) >= 1000):
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _parse_item(item: str) -> Threshold:
    match = _ITEM.match(item)
    if match is None:
        raise InputError(f"malformed --fail-on item {item!r}: expected {GRAMMAR}")
    op, unit = match["op"], match["unit"] or ""
    try:
        amount = float(match["number"])
    except ValueError:
        raise InputError(f"malformed --fail-on item {item!r}: {match['number']!r} is not a "
                         f"number; expected {GRAMMAR}") from None
    if not math.isfinite(amount) or (op in "+-" and amount < 0):
        raise InputError(f"malformed --fail-on item {item!r}: the amount after {op!r} must be a "
                         "finite number >= 0")
    if unit and op in "<>":
        raise InputError(f"malformed --fail-on item {item!r}: {op}N takes a plain number, "
                         f"not {unit!r}")
    return Threshold(match["metric"], op, amount, unit, item)


def parse_fail_on(spec: str) -> list[Threshold]:
    """The thresholds of ``spec`` (``"peak_mem_bytes:+10%,grad_rel_err:<1e-8"``), in order.

    Raises ``ValueError`` naming the first malformed item and the grammar.
    """
    items = [item.strip() for item in spec.split(",")]
    if not spec.strip() or any(not item for item in items):
        raise InputError(f"malformed --fail-on {spec!r}: empty item; expected a comma-separated "
                         f"list of {GRAMMAR}")
    return [_parse_item(item) for item in items]

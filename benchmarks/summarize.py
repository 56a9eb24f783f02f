"""Markdown report of a pytest-benchmark JSON file written by :mod:`benchmarks.bench_engine`.

Usage (from the repository root)::

    python -m benchmarks.summarize .benchmarks/<machine>/<run>.json > summary.md

It prints the table of every benchmark (median time, peak memory (allocator) and its ratio to
``N x |y|``) and the performance targets, each with its measured value and PASS or FAIL:

1. adjoint peak memory (allocator) <= 0.3 x direct's at N = 200 (per field, method);
2. adjoint time <= 1.5 x direct time (per field, method, N);
3. alpha = 1, euler: fdebench direct time <= 1.25 x torchdiffeq's (per N);
4. MLP field: time(N=400) / time(N=100) <= 4^1.3 (per method, gradient);
5. adjoint peak memory (allocator) <= 1.3 x N x |y| at N = 200 (per field, method).

The memory targets are evaluated twice: with every grid time returned (what the benchmarks time:
``ys`` and its cotangent then add ``2 (N + 1) |y|`` whatever the gradient mode) and with only the
final time returned (the solver's own memory).  Target 5 also lists the marginal memory per step,
the least-squares slope of the peak against N in units of ``|y|`` (``least_squares_slope`` of
fdebench.report.series, the one behind every growth exponent).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fdebench.report.series import least_squares_slope

__all__ = ["Check", "Row", "checks", "load", "main", "render"]

MIB = 2**20
MEMORY_N = 200
VARIANTS = (("all", "all outputs returned"), ("final", "final output only"))


@dataclass(frozen=True)
class Row:
    """One benchmark: its configuration, median time (s) and peak memory (allocator) (bytes)."""

    field: str
    method: str
    gradient: str
    n: int
    alpha: float
    solver: str
    median: float
    state_bytes: int
    peak: int | None
    peak_final: int | None

    def peak_of(self, variant: str) -> int | None:
        """The peak memory (allocator) with ``"all"`` outputs or the ``"final"`` one only."""
        return self.peak if variant == "all" else self.peak_final

    def ratio(self, variant: str) -> float | None:
        """Peak memory (allocator bytes) over ``N x |y|``."""
        peak = self.peak_of(variant)
        return None if peak is None else peak / (self.n * self.state_bytes)


@dataclass(frozen=True)
class Check:
    """One target evaluated on one group of benchmarks."""

    target: str
    group: str
    value: float | None
    limit: float
    detail: str = ""

    @property
    def result(self) -> str:
        """``PASS``, ``FAIL`` or ``MISSING`` (a benchmark of the group is absent)."""
        if self.value is None:
            return "MISSING"
        return "PASS" if self.value <= self.limit else "FAIL"


def load(path: str | Path) -> list[Row]:
    """The rows of a ``--benchmark-json`` or autosave file (skips foreign benchmarks)."""
    data = json.loads(Path(path).read_text())
    rows = []
    for bench in data["benchmarks"]:
        info = bench.get("extra_info", {})
        if "field" not in info:
            continue
        rows.append(
            Row(
                field=info["field"], method=info["method"], gradient=info["gradient"],
                n=int(info["n_steps"]), alpha=float(info["alpha"]),
                solver=info.get("solver", "fdebench"), median=float(bench["stats"]["median"]),
                state_bytes=int(info["state_bytes"]), peak=info.get("peak_mem_bytes"),
                peak_final=info.get("peak_mem_bytes_final"),
            )
        )
    return rows


def _index(rows: Iterable[Row]) -> dict[tuple, Row]:
    return {(r.field, r.method, r.gradient, r.n, r.alpha, r.solver): r for r in rows}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def checks(rows: list[Row]) -> list[Check]:
    """Evaluate the five targets of the module docstring."""
    idx = _index(rows)
    frac = sorted({(r.field, r.method) for r in rows if r.solver == "fdebench" and r.alpha < 1})
    ns = sorted({r.n for r in rows if r.alpha < 1})
    alpha = next((r.alpha for r in rows if r.alpha < 1), 0.5)
    out: list[Check] = []

    def get(field, method, gradient, n, a=alpha, solver="fdebench") -> Row | None:
        return idx.get((field, method, gradient, n, a, solver))

    for variant, label in VARIANTS:
        for field, method in frac:
            adj, direct = (get(field, method, g, MEMORY_N) for g in ("adjoint", "direct"))
            value = _ratio(adj and adj.peak_of(variant), direct and direct.peak_of(variant))
            out.append(Check(f"1. adjoint/direct peak memory, N={MEMORY_N} ({label})",
                             f"{field} {method}", value, 0.3))
    for field, method in frac:
        for n in ns:
            adj, direct = get(field, method, "adjoint", n), get(field, method, "direct", n)
            value = _ratio(adj and adj.median, direct and direct.median)
            out.append(Check("2. adjoint/direct time", f"{field} {method} N={n}", value, 1.5))
    for n in sorted({r.n for r in rows if r.alpha == 1}):
        ours = get("mlp", "euler", "direct", n, 1.0, "fdebench")
        ref = get("mlp", "euler", "direct", n, 1.0, "torchdiffeq")
        value = _ratio(ours and ours.median, ref and ref.median)
        out.append(Check("3. alpha=1 euler: fdebench/torchdiffeq time", f"mlp N={n}", value, 1.25))
    for method in sorted({m for f, m in frac if f == "mlp"}):
        for gradient in ("direct", "adjoint", "checkpoint"):
            hi, lo = get("mlp", method, gradient, 400), get("mlp", method, gradient, 100)
            value = _ratio(hi and hi.median, lo and lo.median)
            out.append(Check("4. MLP time(N=400)/time(N=100)", f"{method} {gradient}", value,
                             4**1.3))
    for variant, label in VARIANTS:
        for field, method in frac:
            adj = get(field, method, "adjoint", MEMORY_N)
            points = [
                (r.n, r.peak_of(variant) / r.state_bytes)
                for n in ns
                if (r := get(field, method, "adjoint", n)) and r.peak_of(variant) is not None
            ]
            slope = least_squares_slope(*zip(*points, strict=True)) if points else None
            detail = "" if slope is None else f"marginal {slope:.2f} x S per step"
            out.append(Check(f"5. adjoint peak / (N x S), N={MEMORY_N} ({label})",
                             f"{field} {method}", adj and adj.ratio(variant), 1.3, detail))
    return out


def _fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def _mib(x: int | None) -> str:
    return _fmt(None if x is None else x / MIB, ".1f")


def render(rows: list[Row], source: str = "") -> str:
    """The markdown report: tables of the benchmarks, then the targets."""
    lines = [f"# fdebench benchmarks{f' ({source})' if source else ''}", ""]
    frac = sorted(
        (r for r in rows if r.alpha < 1),
        key=lambda r: (r.field != "mlp", r.field, r.method, r.gradient, r.n),
    )
    if frac:
        lines += [
            f"## alpha = {frac[0].alpha}: one forward+backward pass",
            "",
            "Peak memory (allocator bytes) with every grid time returned (as timed) and, in the "
            "last two columns, with only the final time returned; S = |y| = state bytes "
            f"({frac[0].state_bytes} for {frac[0].field}).",
            "",
            "| field | method | gradient | N | median time (s) | peak extra (MiB) | "
            "peak / (N x S) | final-only peak (MiB) | final-only / (N x S) |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r.field} | {r.method} | {r.gradient} | {r.n} | {r.median:.4f} | "
            f"{_mib(r.peak)} | {_fmt(r.ratio('all'), '.2f')} | {_mib(r.peak_final)} | "
            f"{_fmt(r.ratio('final'), '.2f')} |"
            for r in frac
        ]
        lines.append("")
    classic = sorted((r for r in rows if r.alpha == 1), key=lambda r: (r.n, r.solver))
    if classic:
        lines += [
            "## alpha = 1, forward Euler, direct gradients: fdebench vs torchdiffeq",
            "",
            "| field | solver | N | median time (s) | peak extra (MiB) | final-only peak (MiB) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {r.field} | {r.solver} | {r.n} | {r.median:.4f} | {_mib(r.peak)} | "
            f"{_mib(r.peak_final)} |"
            for r in classic
        ]
        lines.append("")
    results = checks(rows)
    lines += [
        "## Targets",
        "",
        "| target | group | measured | limit | result | note |",
        "|---|---|---:|---:|---|---|",
    ]
    lines += [
        f"| {c.target} | {c.group} | {_fmt(c.value, '.3f')} | {c.limit:.3g} | {c.result} | "
        f"{c.detail} |"
        for c in results
    ]
    lines += ["", "## Target totals", "", "| target | PASS | FAIL | MISSING |"]
    lines.append("|---|---:|---:|---:|")
    for target in dict.fromkeys(c.target for c in results):
        got = [c.result for c in results if c.target == target]
        lines.append(
            f"| {target} | {got.count('PASS')} | {got.count('FAIL')} | {got.count('MISSING')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: print the report of one benchmark JSON file."""
    parser = argparse.ArgumentParser(description="Summarise a benchmarks/ pytest-benchmark run.")
    parser.add_argument("json", type=Path, help="file from --benchmark-json or --benchmark-save")
    args = parser.parse_args(argv)
    print(render(load(args.json), source=args.json.name), end="")


if __name__ == "__main__":
    main()

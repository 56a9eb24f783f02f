"""Long horizons: what the fractional history costs over the field evaluations, and its growth.

Run from the repository root (one torch thread unless ``FDEBENCH_BENCH_THREADS`` says otherwise)::

    python -m benchmarks.long_horizon > long-horizon.md          # about 6 minutes on 2 cores
    python -m benchmarks.long_horizon --steps 400,1600 --rounds 3

One forward+backward pass of ``fdeint`` (euler, direct gradients, final output only, loss
``ys[-1].square().mean()``, t in [0, 1]) on a state of 128 x 64 for two cheap fields
(:mod:`benchmarks.common.fields`: ``mlp-64-256``, ``linear-64``), at ``alpha = 1`` (the classical
Euler
method: the same field evaluations, no history) and at ``alpha = 0.5`` with the fast history sums
and (up to ``--stepwise-max`` steps) the stepwise ones.  The passes of one field and ``N`` are
timed in rounds, each round running every side once in a rotating order, so that load which
comes and goes hits all sides; a ratio is the median of the per-round ratios (as
:func:`benchmarks.common.gate.time_ratio`), a time the median over rounds.

It prints a markdown summary: the table, the targets of the fast-history issue (fractional
overhead, ``alpha = 0.5`` time over ``alpha = 1`` time, at most 1.5 for the MLP at N = 1600, 2.0
at N = 6400, 2.5 for the linear field at N = 1600) with PASS or FAIL, and the growth exponent
``k`` of the MLP's ``alpha = 0.5`` time, ``t ~ N^k`` fitted by least squares in log-log over
every N measured (target: ``k <= 1.3``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from fdebench.measure import now
from fdebench.report.series import growth_exponent

from .common.fields import set_threads
from .common.workload import make_workload

FIELDS = ("mlp-64-256", "linear-64")
STEPS = (400, 1600, 6400)
#: (field, N) -> the largest fractional overhead the issue allows
TARGETS = {("mlp-64-256", 1600): 1.5, ("mlp-64-256", 6400): 2.0, ("linear-64", 1600): 2.5}
GROWTH_TARGET = 1.3
SIDES = ("alpha1", "fast", "stepwise")


@dataclass(frozen=True)
class Cell:
    """One field and N: median times (s) per side and median per-round ratios over alpha1."""

    field: str
    n: int
    times: dict[str, float]
    ratios: dict[str, float]


def interleaved(sides: dict[str, Callable[[], object]], rounds: int,
                device: torch.device | str = "cpu") -> list[dict[str, float]]:
    """Time every side once per round (after one untimed call each), rotating the order, with
    the project's one timing recipe (:func:`fdebench.measure.now`: the device synchronised)."""
    device = torch.device(device)
    for run in sides.values():
        run()
    names, out = list(sides), []
    for i in range(rounds):
        order = names[i % len(names):] + names[: i % len(names)]
        times = {}
        for name in order:
            start = now(device)
            sides[name]()
            times[name] = now(device) - start
        out.append(times)
    return out


def measure(field: str, n: int, rounds: int, stepwise: bool) -> Cell:
    """One cell: alpha = 1, alpha = 0.5 fast and (if ``stepwise``) alpha = 0.5 stepwise."""
    def side(alpha: float, history: str) -> Callable[[], None]:
        work = make_workload(field, "euler", "direct", n, alpha, "cpu", outputs="final",
                             history=history)
        return work.run

    sides = {"alpha1": side(1.0, "auto"), "fast": side(0.5, "fast")}
    if stepwise:
        sides["stepwise"] = side(0.5, "stepwise")
    samples = interleaved(sides, rounds)
    times = {name: statistics.median(s[name] for s in samples) for name in sides}
    ratios = {name: statistics.median(s[name] / s["alpha1"] for s in samples)
              for name in sides if name != "alpha1"}
    return Cell(field, n, times, ratios)


def _machine() -> str:
    cpu = platform.processor() or "?"
    try:
        for line in open("/proc/cpuinfo"):  # noqa: SIM115 -- Linux only, read once
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip() or "?"
    except OSError:
        commit = "?"
    return (f"{cpu}, {torch.get_num_threads()} torch thread(s), torch {torch.__version__}, "
            f"commit {commit}, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC")


def render(cells: list[Cell], rounds: int) -> str:
    """The markdown summary (module docstring)."""
    lines = [
        "# Long horizons: fractional overhead of the history sums",
        "",
        f"Machine: {_machine()}; {rounds} interleaved rounds per cell; euler, direct gradients, "
        "state 128 x 64, final output only.",
        "",
        "| field | N | alpha = 1 (ms) | alpha = 0.5 fast (ms) | fast / alpha = 1 "
        "| alpha = 0.5 stepwise (ms) | stepwise / alpha = 1 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cells:
        step = (f"{c.times['stepwise'] * 1e3:,.0f} | {c.ratios['stepwise']:.2f}"
                if "stepwise" in c.times else "not run | ")
        lines.append(f"| {c.field} | {c.n} | {c.times['alpha1'] * 1e3:,.0f} | "
                     f"{c.times['fast'] * 1e3:,.0f} | {c.ratios['fast']:.2f} | {step} |")
    lines += ["", "| target | measured | limit | result |", "|---|---:|---:|---|"]
    index = {(c.field, c.n): c for c in cells}
    for (field, n), limit in TARGETS.items():
        cell = index.get((field, n))
        value = cell.ratios["fast"] if cell else None
        result = "MISSING" if value is None else ("PASS" if value <= limit else "FAIL")
        shown = "" if value is None else f"{value:.2f}"
        lines.append(f"| fractional overhead, {field}, N = {n} | {shown} | {limit} | {result} |")
    for side, label in (("fast", "alpha = 0.5, fast"), ("alpha1", "alpha = 1")):
        points = [(c.n, c.times[side]) for c in cells if c.field == "mlp-64-256"]
        k = growth_exponent(*zip(*points, strict=True)) if points else None
        if k is None:
            continue
        span = f"N = {min(n for n, _ in points)}..{max(n for n, _ in points)}"
        if side == "fast":
            result = "PASS" if k <= GROWTH_TARGET else "FAIL"
            lines.append(f"| time growth N^k, mlp-64-256, {label}, {span} | {k:.2f} | "
                         f"{GROWTH_TARGET} | {result} |")
        else:
            lines.append(f"| time growth N^k, mlp-64-256, {label} (reference), {span} | "
                         f"{k:.2f} | | |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default=",".join(map(str, STEPS)))
    parser.add_argument("--fields", default=",".join(FIELDS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stepwise-max", type=int, default=1600,
                        help="largest N at which the stepwise sums are timed too")
    args = parser.parse_args(argv)
    set_threads(int(os.environ.get("FDEBENCH_BENCH_THREADS", "1")))
    cells = []
    for field in args.fields.split(","):
        for n in map(int, args.steps.split(",")):
            cell = measure(field, n, args.rounds, stepwise=n <= args.stepwise_max)
            print(f"{field} N={n}: " + ", ".join(
                f"{k} {v * 1e3:.0f} ms" for k, v in cell.times.items()), file=sys.stderr,
                flush=True)
            cells.append(cell)
    print(render(cells, args.rounds), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

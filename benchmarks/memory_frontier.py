"""Below the trajectory floor: the compressed history (``soe``) with binomial checkpoints
(``revolve``) against the exact adjoint, on the targets of issue 19.

Run from the repository root (one torch thread unless ``FDEBENCH_BENCH_THREADS`` says otherwise)::

    python -m benchmarks.memory_frontier > memory-frontier.md       # about 10 minutes on 2 cores
    python -m benchmarks.memory_frontier --steps 400,1600 --rounds 1 --skip-rss

One forward+backward pass of ``fdeint`` (euler, alpha = 0.5, final output only, loss
``ys[-1].square().mean()``, t in [0, 1]) of the ``mlp-64-256`` field
(:mod:`benchmarks.common.fields`:
state 128 x 64 float32, ``Linear(64, 256) -> Tanh -> Linear(256, 64)`` row-wise), and:

* memory: the allocator peak (:class:`fdebench.measure.AllocatorPeak`, the field's parameters'
  gradients preallocated) of ``revolve`` + ``soe`` at every ``--steps``, of ``adjoint`` (history
  ``auto``) at the first and ``--time-steps``; with ``--skip-rss`` unset also the peak RSS above
  a warm baseline (a 50-step pass) in a fresh process for both at ``--time-steps``;
* work: the field evaluations of each ``revolve`` pass (forward, backward);
* time: ``revolve`` + ``soe`` over ``adjoint`` at ``--time-steps``, median of per-round ratios of
  interleaved rounds (as :mod:`benchmarks.long_horizon`);
* accuracy (float64, the same field, N = ``--accuracy-steps``): the parameter gradient of
  ``revolve`` + ``soe`` against ``adjoint`` + ``stepwise`` (the exact scheme) at ``soe_tol`` =
  1e-4, 1e-6, 1e-8, and against ``direct`` + ``soe`` (the same compressed scheme);
* float32: each mode's gradient against the float64 exact scheme's.

It prints a markdown summary with every target's figure and PASS or FAIL.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence

import torch

from fdebench.engine import fdeint
from fdebench.engine.revolve import checkpoints_for
from fdebench.engine.soe import sum_of_exponentials
from fdebench.measure import AllocatorPeak, ProcessPeak

from .common.fields import make_field, set_threads
from .common.workload import make_workload
from .long_horizon import _machine, interleaved

FIELD = "mlp-64-256"
ALPHA = 0.5
STEPS = (400, 1600, 6400, 25600)
MiB = 2**20
TARGETS = {"peak_mib": 32.0, "growth": 6.0, "nfe_per_step": 5.0, "time_ratio": 3.0,
           "accuracy": 1e-7, "exact_adjoint": 1e-12, "float32_ratio": 2.0}


def _workload(gradient: str, history: str, n: int, dtype: torch.dtype = torch.float32):
    return make_workload(FIELD, "euler", gradient, n, ALPHA, "cpu", outputs="final",
                         history=history, dtype=dtype)


def allocator_peak(gradient: str, history: str, n: int) -> tuple[float, dict[str, int]]:
    """Peak MiB of one pass (after an untimed one) and its field evaluations."""
    work = _workload(gradient, history, n)
    work.zero_grad()
    work.run()
    work.zero_grad()
    with AllocatorPeak(torch.device("cpu")) as peak:
        work.run()
    return peak.peak_bytes / MiB, work.nfe


def rss_probe(gradient: str, history: str, n: int) -> float:
    """Peak RSS above a warm baseline, MiB (run in a fresh process: :func:`rss`)."""
    warm = _workload(gradient, history, 50)
    warm.zero_grad()
    warm.run()
    work = _workload(gradient, history, n)
    work.zero_grad()
    import psutil

    base = psutil.Process().memory_info().rss
    with ProcessPeak(torch.device("cpu")) as peak:
        work.run()
    return (peak.result["peak_rss_bytes"] - base) / MiB


def rss(gradient: str, history: str, n: int) -> float:
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory_frontier", "--rss-probe",
                          f"{gradient},{history},{n}"], capture_output=True, text=True,
                         check=True, env={**os.environ, "FDEBENCH_BENCH_THREADS": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])["rss_mib"]


def time_ratio(n: int, rounds: int) -> tuple[dict[str, float], float]:
    sides = {"revolve": _workload("revolve", "soe", n), "adjoint": _workload("adjoint", "auto", n)}
    for work in sides.values():
        work.zero_grad()
    samples = interleaved({name: work.run for name, work in sides.items()}, rounds)
    times = {name: statistics.median(s[name] for s in samples) for name in sides}
    return times, statistics.median(s["revolve"] / s["adjoint"] for s in samples)


def _gradient(dtype: torch.dtype, gradient: str, history: str, n: int,
              tol: float = 1e-8) -> torch.Tensor:
    """The parameter gradient of one pass of the field in ``dtype`` (the same float32 weights
    and initial state, cast)."""
    module, y0 = make_field(FIELD)
    module, y0 = module.to(dtype), y0.to(dtype)
    t = torch.tensor([0.0, 1.0], dtype=dtype)
    ys = fdeint(module, y0, t, alpha=ALPHA, method="euler", step_size=1.0 / n,
                gradient=gradient, history=history, soe_tol=tol)
    grads = torch.autograd.grad(ys[-1].square().mean(), list(module.parameters()))
    return torch.cat([g.reshape(-1) for g in grads]).double()


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def accuracy(n: int) -> dict[str, float]:
    f64 = torch.float64
    exact = _gradient(f64, "adjoint", "stepwise", n)
    out = {f"tol={tol:g}": _rel(_gradient(f64, "revolve", "soe", n, tol), exact)
           for tol in (1e-4, 1e-6, 1e-8)}
    out["revolve vs direct (soe)"] = _rel(_gradient(f64, "revolve", "soe", n),
                                          _gradient(f64, "direct", "soe", n))
    out["float32 adjoint"] = _rel(_gradient(torch.float32, "adjoint", "stepwise", n), exact)
    out["float32 revolve"] = _rel(_gradient(torch.float32, "revolve", "soe", n), exact)
    return out


def _check(value: float, limit: float) -> str:
    return "PASS" if value <= limit else "FAIL"


def render(peaks, adjoint_peaks, rss_figures, times, ratio, acc, args) -> str:
    y_bytes = 128 * 64 * 4
    lines = [
        "# Memory frontier: revolve + soe against the exact adjoint",
        "",
        f"Machine: {_machine()}; {FIELD} (state 128 x 64 float32, hidden 256), euler, "
        f"alpha = {ALPHA}, final output only, one forward + backward pass.",
        "",
        "| N | K (modes) | c (checkpoints) | floor (N+1)\\|y\\| MiB | revolve+soe peak MiB "
        "| adjoint peak MiB | field evals / N |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, (peak, nfe) in peaks.items():
        k = len(sum_of_exponentials(ALPHA, 1.0 / n, 1.0, 1e-8))
        evals = (nfe["nfe_forward"] + nfe["nfe_backward"]) / n
        adj = f"{adjoint_peaks[n]:.1f}" if n in adjoint_peaks else ""
        lines.append(f"| {n} | {k} | {checkpoints_for(n)} | {(n + 1) * y_bytes / MiB:.1f} | "
                     f"{peak:.1f} | {adj} | {evals:.2f} |")
    n_t = args.time_steps
    lines += ["", "| target | measured | limit | result |", "|---|---:|---:|---|"]
    if n_t in peaks:
        value = peaks[n_t][0]
        lines.append(f"| allocator peak, revolve + soe, N = {n_t} (MiB) | {value:.1f} | "
                     f"{TARGETS['peak_mib']:g} | {_check(value, TARGETS['peak_mib'])} |")
    ns = sorted(peaks)
    if len(ns) > 1:
        growth = peaks[ns[-1]][0] / peaks[ns[0]][0]
        lines.append(f"| peak growth N = {ns[0]} -> {ns[-1]} ({ns[-1] // ns[0]}x the steps) | "
                     f"{growth:.2f}x | {TARGETS['growth']:g}x | "
                     f"{_check(growth, TARGETS['growth'])} |")
    worst = max((nfe["nfe_forward"] + nfe["nfe_backward"]) / n for n, (_, nfe) in peaks.items())
    lines.append(f"| field evaluations per step (worst N) | {worst:.2f} | "
                 f"{TARGETS['nfe_per_step']:g} | {_check(worst, TARGETS['nfe_per_step'])} |")
    if ratio is not None:
        lines.append(f"| time revolve+soe / adjoint, N = {n_t} ({times['revolve']:.1f} s / "
                     f"{times['adjoint']:.1f} s) | {ratio:.2f} | {TARGETS['time_ratio']:g} | "
                     f"{_check(ratio, TARGETS['time_ratio'])} |")
    if acc:
        for key in ("tol=0.0001", "tol=1e-06"):
            lines.append(f"| gradient vs exact scheme (float64, N = {args.accuracy_steps}), "
                         f"soe_{key} | {acc[key]:.2e} | (falls with tol) | |")
        value = acc["tol=1e-08"]
        lines.append(f"| gradient vs exact scheme (float64, N = {args.accuracy_steps}), "
                     f"soe_tol=1e-08 | {value:.2e} | {TARGETS['accuracy']:g} | "
                     f"{_check(value, TARGETS['accuracy'])} |")
        value = acc["revolve vs direct (soe)"]
        lines.append(f"| revolve vs direct through the soe scheme (float64) | {value:.1e} | "
                     f"{TARGETS['exact_adjoint']:g} | {_check(value, TARGETS['exact_adjoint'])} |")
        f32 = acc["float32 revolve"] / acc["float32 adjoint"]
        lines.append(f"| float32 error vs float64: revolve {acc['float32 revolve']:.2e}, "
                     f"adjoint {acc['float32 adjoint']:.2e} (ratio) | {f32:.2f} | "
                     f"{TARGETS['float32_ratio']:g} | {_check(f32, TARGETS['float32_ratio'])} |")
    for name, value in rss_figures.items():
        lines.append(f"| peak RSS above a warm baseline, fresh process, {name}, N = {n_t} "
                     f"(MiB) | {value:.0f} | | |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default=",".join(map(str, STEPS)))
    parser.add_argument("--time-steps", type=int, default=6400)
    parser.add_argument("--accuracy-steps", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-time", action="store_true")
    parser.add_argument("--rss-probe", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    set_threads(int(os.environ.get("FDEBENCH_BENCH_THREADS", "1")))
    if args.rss_probe:
        gradient, history, n = args.rss_probe.split(",")
        print(json.dumps({"rss_mib": rss_probe(gradient, history, int(n))}))
        return 0

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    steps = [int(s) for s in args.steps.split(",")]
    peaks, adjoint_peaks = {}, {}
    for n in steps:
        peaks[n] = allocator_peak("revolve", "soe", n)
        log(f"revolve+soe N={n}: {peaks[n][0]:.1f} MiB, {peaks[n][1]}")
    for n in sorted({steps[0], args.time_steps} & set(steps)):
        adjoint_peaks[n] = allocator_peak("adjoint", "auto", n)[0]
        log(f"adjoint N={n}: {adjoint_peaks[n]:.1f} MiB")
    rss_figures = {}
    if not args.skip_rss:
        for gradient, history in (("revolve", "soe"), ("adjoint", "auto")):
            rss_figures[f"{gradient}+{history}"] = rss(gradient, history, args.time_steps)
            log(f"RSS {gradient}: {rss_figures[f'{gradient}+{history}']:.0f} MiB")
    times, ratio = ({}, None) if args.skip_time else time_ratio(args.time_steps, args.rounds)
    log(f"time: {times}, ratio {ratio}")
    acc = accuracy(args.accuracy_steps) if args.accuracy_steps else {}
    log(f"accuracy: {acc}")
    print(render(peaks, adjoint_peaks, rss_figures, times, ratio, acc, args), end="")
    return 0 if all(math.isfinite(v) for v in acc.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

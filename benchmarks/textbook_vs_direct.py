"""Two direct baselines side by side: research-code direct, fdebench's direct and adjoint.

arXiv:2503.16666 (torchfde) measured its adjoint against its own direct implementation, written
the textbook way (:func:`fdebench.engine.textbook_fdeint`: a Python list history, each step's sum
rebuilt with ``torch.stack``, autograd through all of it).  This prints, for the same pass, that
baseline next to fdebench's ``direct`` (autograd through each step's field evaluation, the
history sums differentiated by hand) and ``adjoint`` (the exact discrete adjoint)::

    python -m benchmarks.textbook_vs_direct                 # N = 100 and 400, about 2 minutes
    python -m benchmarks.textbook_vs_direct --steps 400 --rounds 5

One pass: a forward solve on ``t in [0, 1]`` with ``N`` steps, final output only, and the
backward pass of ``ys[-1].square().mean()`` (:mod:`benchmarks.common.workload`), float32, on the
CPU,
one torch thread unless ``FDEBENCH_BENCH_THREADS`` says otherwise.  Field ``mlp-64-256``
(:mod:`benchmarks.common.fields`: state 128 x 64, ``Linear(64, 256) -> Tanh -> Linear(256, 64)``
row-wise), ``alpha = 0.9``, method ``euler`` (the product-rectangle rule: torchfde's
``predictor``).  Time: the median over ``--rounds`` rounds, each running every side once in a
rotating order after one untimed pass each (:func:`benchmarks.long_horizon.interleaved`).
Memory: the allocator peak of one more pass above its start, untimed
(:class:`fdebench.measure.AllocatorPeak`, the project's one memory recipe).  The last column
checks that the three compute the same gradient (relative difference from fdebench's direct,
float32 rounding).
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from fdebench.measure import fingerprint, relative_error

from .common.fields import set_threads
from .common.gate import peak_bytes
from .common.workload import Workload, make_workload
from .long_horizon import interleaved

#: side -> (solver, gradient)
SIDES = {
    "textbook direct": ("textbook", "direct"),
    "fdebench direct": ("fdebench", "direct"),
    "fdebench adjoint": ("fdebench", "adjoint"),
}
MIB = 2**20


def workloads(field: str, method: str, steps: int, alpha: float) -> dict[str, Workload]:
    return {name: make_workload(field, method, gradient, steps, alpha, "cpu", solver=solver,
                                outputs="final")
            for name, (solver, gradient) in SIDES.items()}


def measure(field: str, method: str, steps: int, alpha: float, rounds: int) -> list[dict]:
    """One row per side: median time (s), allocator peak (bytes), gradient difference."""
    works = workloads(field, method, steps, alpha)
    grads = {name: work.gradient() for name, work in works.items()}
    times = interleaved({name: work.run for name, work in works.items()}, rounds)
    rows = []
    for name, work in works.items():
        work.zero_grad()  # allocated before the window: the pass does not count them
        rows.append({
            "side": name, "steps": steps,
            "time_s": statistics.median(r[name] for r in times),
            "peak_bytes": peak_bytes(work.run, torch.device("cpu")),
            "grad_diff": relative_error(grads[name], grads["fdebench direct"]),
        })
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| side | N | time (s) | x fdebench direct | peak (MiB) | x fdebench direct | "
             "grad rel. diff |", "|---|---:|---:|---:|---:|---:|---:|"]
    base = {r["steps"]: r for r in rows if r["side"] == "fdebench direct"}
    for r in rows:
        b = base[r["steps"]]
        lines.append(
            f"| {r['side']} | {r['steps']} | {r['time_s']:.3f} | "
            f"{r['time_s'] / b['time_s']:.2f} | {r['peak_bytes'] / MIB:.1f} | "
            f"{r['peak_bytes'] / b['peak_bytes']:.2f} | {r['grad_diff']:.1e} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="100,400", help="comma-separated N (default 100,400)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--alpha", type=float, default=0.9)
    parser.add_argument("--method", default="euler")
    parser.add_argument("--field", default="mlp-64-256")
    args = parser.parse_args(argv)
    threads = set_threads()
    rows = []
    for steps in (int(s) for s in args.steps.split(",")):
        rows += measure(args.field, args.method, steps, args.alpha, args.rounds)
    env = fingerprint(torch.device("cpu"))
    print(f"field {args.field}, method {args.method}, alpha {args.alpha}, final output only, "
          f"float32, CPU ({env['cpu']}), {threads} torch thread(s), torch "
          f"{env['torch_version']}, commit {env['git_commit']}, {args.rounds} rounds\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

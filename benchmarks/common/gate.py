"""The regression gate's measurements: small, same-process, reproducible on a noisy machine.

:mod:`benchmarks.bench_gate` records these in ``benchmark.extra_info``; ``fdebench compare``
gates them against the committed baseline with :data:`FAIL_ON` (``.ci/gate`` runs both).  The
gate's test (``tests/test_gate.py``) injects regressions and calls the same functions.

* Memory is gated absolutely: ``peak_mem_bytes`` is the peak of the bytes torch's allocator
  holds during one pass above the start (:class:`fdebench.measure.AllocatorPeak`), reproducible
  to the byte, so a small relative threshold is safe.
* Time is gated only as ratios measured in one process, the two sides timed back to back in
  alternating order (:func:`time_ratio`): a slow or busy machine slows both sides alike.
  Absolute seconds (``stats.median``) are recorded but not gated.
* Fidelity: ``grad_rel_err`` of each gradient mode against direct, in float64.

Metric names in ``extra_info``:

==================================  =============================================================
``peak_mem_bytes``                  allocator peak of one forward+backward pass (final output
                                    only, so the solver's own memory) or one training step
``nfe_forward``, ``nfe_backward``   field evaluations of that pass
``<mode>_direct_mem_ratio``         ``peak_mem_bytes`` of ``adjoint``/``checkpoint`` over direct's
``<mode>_direct_time_ratio``        time of a pass in that mode over direct's, same process
``grad_rel_err``                    ``|g - g_direct| / |g_direct|`` (float64 for the engine)
``fractional_alpha1_time_ratio``    time at ``alpha = 0.5`` over ``alpha = 1`` (direct rows; in
                                    the long-horizon case at ``N = 1024``)
``steps_4x_time_ratio``             long horizon: time at ``N = 1024`` over ``N = 256``
                                    (``alpha = 0.5``): about 4 for the fast history sums, 10+
                                    for an ``O(N^2)`` history
``engine_torchdiffeq_time_ratio``   fdebench over ``torchdiffeq.odeint``, Euler, ``alpha = 1``
==================================  =============================================================
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

import torch

from fdebench.measure import AllocatorPeak, now, relative_error

from .fields import bench_device
from .task_step import TASK_CASES, make_task_step
from .workload import make_workload

__all__ = [
    "ALPHA", "FAIL_ON", "FIELD", "GRADIENTS", "LONG_STEPS", "METHODS", "RATIO_ROUNDS", "STEPS",
    "TASK_CASES", "engine_metrics", "long_horizon_metrics", "peak_bytes",
    "task_metrics", "time_ratio", "torchdiffeq_metrics",
]

FIELD = "mlp-small"
STEPS = 40
ALPHA = 0.5
METHODS = ("euler", "abm", "l1", "gl")
GRADIENTS = ("direct", "adjoint", "checkpoint")
#: rounds of each same-process time ratio (each round times both sides once)
RATIO_ROUNDS = 15
#: the long-horizon case: steps (its history buffer is 16 MiB, out of the caches), and rounds
LONG_STEPS = 1024
LONG_ROUNDS = 5

#: thresholds that pass on a healthy build (``fdebench compare --fail-on``).  Memory: the
#: allocator count is exact, 10% leaves room for a torch upgrade's kernel changes.  Time ratios:
#: measured back to back they still move 10-25% on a shared 2-core VM, so 50%; a real
#: regression (an adjoint that keeps the graph, a slow step) moves them by multiples.
FAIL_ON = ",".join([
    "peak_mem_bytes:+10%",
    "adjoint_direct_mem_ratio:+10%",
    "checkpoint_direct_mem_ratio:+10%",
    "adjoint_direct_time_ratio:+50%",
    "checkpoint_direct_time_ratio:+50%",
    "fractional_alpha1_time_ratio:+50%",
    "steps_4x_time_ratio:+50%",
    "engine_torchdiffeq_time_ratio:+50%",
    "grad_rel_err:<1e-8",
])


# ---- measurement recipes --------------------------------------------------------------------
def time_ratio(numerator: Callable[[], Any], denominator: Callable[[], Any],
               rounds: int = RATIO_ROUNDS, device: torch.device | None = None) -> float:
    """Median over ``rounds`` of ``time(numerator()) / time(denominator())``.

    One untimed call of each first; then each round times both, back to back, alternating
    which goes first, so load that comes and goes hits both sides of most rounds.
    """
    device = device or bench_device()
    numerator(), denominator()
    ratios = []
    for i in range(rounds):
        pair = [0.0, 0.0]
        for side in ((0, 1) if i % 2 == 0 else (1, 0)):
            start = now(device)
            (numerator if side == 0 else denominator)()
            pair[side] = now(device) - start
        ratios.append(pair[0] / pair[1])
    return statistics.median(ratios)


def peak_bytes(run: Callable[[], Any], device: torch.device | None = None) -> int:
    """Allocator peak of ``run()`` above its start (call after a warm-up run)."""
    with AllocatorPeak(device or bench_device()) as memory:
        run()
    return memory.peak_bytes


# ---- the gate's cases ------------------------------------------------------------------------
def _pass(method: str, gradient: str, alpha: float = ALPHA, steps: int = STEPS, **kwargs: Any):
    """A warmed-up final-output workload of the gate's size."""
    work = make_workload(FIELD, method, gradient, steps, alpha, bench_device(), outputs="final",
                         **kwargs)
    work.run()
    work.zero_grad()
    return work


def engine_metrics(method: str, gradient: str, rounds: int = RATIO_ROUNDS) -> dict[str, Any]:
    """``extra_info`` of one engine case: memory, NFE, and the mode against direct."""
    work = _pass(method, gradient)
    info: dict[str, Any] = {"peak_mem_bytes": peak_bytes(work.run), **work.nfe}
    if gradient == "direct":
        classic = _pass(method, gradient, alpha=1.0)
        info["fractional_alpha1_time_ratio"] = time_ratio(work.run, classic.run, rounds)
        return info
    direct = _pass(method, "direct")
    info[f"{gradient}_direct_mem_ratio"] = info["peak_mem_bytes"] / peak_bytes(direct.run)
    info[f"{gradient}_direct_time_ratio"] = time_ratio(work.run, direct.run, rounds)
    exact = [_pass(method, g, dtype=torch.float64) for g in (gradient, "direct")]
    info["grad_rel_err"] = relative_error(*(w.gradient() for w in exact))
    return info


def torchdiffeq_metrics(rounds: int = RATIO_ROUNDS) -> dict[str, Any]:
    """``extra_info`` of the ``alpha = 1`` Euler case: fdebench's time over torchdiffeq's."""
    ours = _pass("euler", "direct", alpha=1.0)
    theirs = _pass("euler", "direct", alpha=1.0, solver="torchdiffeq")
    return {"peak_mem_bytes": peak_bytes(ours.run), **ours.nfe,
            "engine_torchdiffeq_time_ratio": time_ratio(ours.run, theirs.run, rounds)}


def long_horizon_metrics(rounds: int = LONG_ROUNDS, history: str = "auto") -> dict[str, Any]:
    """``extra_info`` of the long-horizon case: euler, direct, ``N = LONG_STEPS``.

    A history sum that falls back to ``O(N^2)`` work (one pass over the buffer per step) more
    than doubles both ratios; ``history="stepwise"`` measures that (``tests/test_gate.py``).
    """
    work = _pass("euler", "direct", steps=LONG_STEPS, history=history)
    classic = _pass("euler", "direct", alpha=1.0, steps=LONG_STEPS)
    short = _pass("euler", "direct", steps=LONG_STEPS // 4, history=history)
    return {"peak_mem_bytes": peak_bytes(work.run), **work.nfe,
            "fractional_alpha1_time_ratio": time_ratio(work.run, classic.run, rounds),
            "steps_4x_time_ratio": time_ratio(work.run, short.run, rounds)}


def task_metrics(case: str, gradient: str, rounds: int = RATIO_ROUNDS) -> dict[str, Any]:
    """``extra_info`` of one training step of the task case ``case`` (see ``TASK_CASES``)."""
    step = make_task_step(case, gradient, bench_device())
    step.run()
    info: dict[str, Any] = {"peak_mem_bytes": peak_bytes(step.run), **step.nfe}
    if gradient != "direct":
        direct = make_task_step(case, "direct", bench_device())
        direct.run()
        info[f"{gradient}_direct_mem_ratio"] = info["peak_mem_bytes"] / peak_bytes(direct.run)
        info[f"{gradient}_direct_time_ratio"] = time_ratio(step.run, direct.run, rounds)
        info["grad_rel_err"] = relative_error(*step.gradients())
    return info



# ``python -m benchmarks.common.gate`` prints the thresholds (for .ci/gate)
if __name__ == "__main__":
    print(FAIL_ON)

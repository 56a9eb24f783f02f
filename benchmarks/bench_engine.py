"""Time and memory of one forward+backward pass of ``fdeint`` (pytest-benchmark).

Run from the repository root (a plain ``pytest`` does not collect this folder)::

    PYTHONPATH=. python -m pytest benchmarks/ --benchmark-only --benchmark-json bench.json
    python -m benchmarks.summarize bench.json

Each round solves ``D^alpha y = f(t, y)`` on ``t = linspace(0, 1, N + 1)`` and back-propagates
``ys[-1].square().mean()``.  The grid is field x method x gradient x N (``alpha = 0.5``), ids like
``mlp-euler-adjoint-N200``, grouped by field, method and N so the gradient modes sit side by side;
plus ``alpha = 1`` forward Euler against ``torchdiffeq.odeint`` on the MLP field
(``mlp-alpha1-fdebench-N200`` / ``mlp-alpha1-torchdiffeq-N200``).

Environment:

* ``FDEBENCH_BENCH_DEVICE``: torch device (default ``cuda`` if available, else ``cpu``).
* ``FDEBENCH_BENCH_ROUNDS``: timed rounds per benchmark (default 3; 1 for the conv field at
  ``N >= 200``).  One untimed warm-up round always precedes them.
* ``FDEBENCH_BENCH_THREADS``: torch intra-op threads, here and in the memory probes (default:
  all cores).  On a shared machine, 1 avoids OpenMP threads spinning against other processes.
* ``FDEBENCH_BENCH_MEMORY=0`` skips the memory measurement.
* ``FDEBENCH_BENCH_RATIOS=0`` skips the same-process time ratios (they time extra passes).

``benchmark.extra_info`` records the configuration, ``state_bytes`` (``|y|``), the field
evaluations of one pass (``nfe_forward``, ``nfe_backward``) and the peak extra memory of one
pass: ``peak_mem_bytes`` with every grid time returned (as timed) and ``peak_mem_bytes_final``
with only ``t = 1`` returned (the solver's own memory): the tensor bytes torch's allocator holds
above the start of the pass (:class:`fdebench.measure.AllocatorPeak`, the project's one memory
recipe: ``max_memory_allocated`` on CUDA, the profiler's allocation events on the CPU, in an
untimed pass of its own).

Ratios, each measured in this process so that the machine's speed and load cancel
(:func:`benchmarks.common.gate.time_ratio`: both sides timed back to back, alternating, the median
of
the per-round ratios):

* ``adjoint`` and ``checkpoint`` rows: ``<mode>_direct_time_ratio`` (this pass over the same pass
  with direct gradients) and ``<mode>_direct_mem_ratio`` (``peak_mem_bytes_final`` over
  direct's);
* ``direct`` rows at ``alpha < 1``: ``fractional_alpha1_time_ratio`` (over the same pass at
  ``alpha = 1``);
* the ``fdebench`` rows at ``alpha = 1``: ``engine_torchdiffeq_time_ratio``.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch

from .common.fields import bench_device
from .common.gate import peak_bytes, time_ratio
from .common.workload import Workload, make_workload

ALPHA = 0.5
FIELDS = ("mlp", "conv")
METHODS = ("euler", "abm", "l1", "gl")
GRADIENTS = ("direct", "adjoint", "checkpoint")
STEPS = (50, 100, 200, 400)
ALPHA1_STEPS = (100, 200, 400)
#: peak extra memory already measured, per (field, method, gradient, steps, alpha, solver), so
#: that the adjoint and checkpoint rows find direct's for their memory ratio
_PEAKS: dict[tuple, dict[str, Any]] = {}


def _rounds(field: str, steps: int) -> int:
    env = os.environ.get("FDEBENCH_BENCH_ROUNDS")
    if env:
        return int(env)
    return 1 if field == "conv" and steps >= 200 else 3


def _grid() -> list[Any]:
    return [
        pytest.param(
            field, method, gradient, steps,
            id=f"{field}-{method}-{gradient}-N{steps}",
            marks=pytest.mark.benchmark(group=f"{field}-{method}-N{steps}"),
        )
        for field in FIELDS
        for method in METHODS
        for steps in STEPS
        for gradient in GRADIENTS
    ]


def _alpha1_grid() -> list[Any]:
    return [
        pytest.param(
            solver, steps,
            id=f"mlp-alpha1-{solver}-N{steps}",
            marks=pytest.mark.benchmark(group=f"mlp-alpha1-euler-N{steps}"),
        )
        for steps in ALPHA1_STEPS
        for solver in ("fdebench", "torchdiffeq")
    ]


def _memory(
    field: str, method: str, gradient: str, steps: int, alpha: float, solver: str
) -> dict[str, Any]:
    """``extra_info`` entries for the peak extra memory of one pass (see the module docstring)."""
    if os.environ.get("FDEBENCH_BENCH_MEMORY", "1") == "0":
        return {}
    key = (field, method, gradient, steps, alpha, solver)
    if key not in _PEAKS:
        _PEAKS[key] = _measure_memory(*key)
    info = dict(_PEAKS[key])
    if gradient != "direct":
        direct = _memory(field, method, "direct", steps, alpha, solver)
        ratio = info["peak_mem_bytes_final"] / max(direct["peak_mem_bytes_final"], 1)
        info[f"{gradient}_direct_mem_ratio"] = ratio
    return info


def _measure_memory(
    field: str, method: str, gradient: str, steps: int, alpha: float, solver: str
) -> dict[str, Any]:
    """The allocator peak of one pass above its start, every grid time and the final one only
    (the one memory recipe, :class:`fdebench.measure.AllocatorPeak`, measured after a warm-up
    pass that also allocates the parameter gradients)."""
    peaks = {}
    for outputs in ("all", "final"):
        work = make_workload(field, method, gradient, steps, alpha, bench_device(),
                             solver=solver, outputs=outputs)
        work.run()
        work.zero_grad()
        peaks[outputs] = peak_bytes(work.run)
        del work
    return {"peak_mem_bytes": peaks["all"], "peak_mem_bytes_final": peaks["final"],
            "memory_measured_by": "torch allocator peak"}


def _ratios(
    work: Workload, field: str, method: str, gradient: str, steps: int, alpha: float,
    solver: str, rounds: int,
) -> dict[str, float]:
    """The same-process time ratios of this row (see the module docstring)."""
    if os.environ.get("FDEBENCH_BENCH_RATIOS", "1") == "0" or solver != "fdebench":
        return {}
    device = bench_device()
    if gradient != "direct":
        other = make_workload(field, method, "direct", steps, alpha, device)
        name = f"{gradient}_direct_time_ratio"
    elif alpha < 1:
        other = make_workload(field, method, "direct", steps, 1.0, device)
        name = "fractional_alpha1_time_ratio"
    else:
        other = make_workload(field, method, "direct", steps, 1.0, device, solver="torchdiffeq")
        name = "engine_torchdiffeq_time_ratio"
    return {name: time_ratio(work.run, other.run, rounds, device)}


def _bench(
    benchmark: Any, field: str, method: str, gradient: str, steps: int, alpha: float, solver: str
) -> None:
    device = bench_device()
    work = make_workload(field, method, gradient, steps, alpha, device, solver=solver)
    rounds = _rounds(field, steps)
    benchmark.extra_info.update(
        field=field, method=method, gradient=gradient, n_steps=steps, alpha=alpha,
        device=str(device), solver=solver, state_bytes=work.state_bytes,
        threads=torch.get_num_threads(), rounds=rounds,
    )
    benchmark.pedantic(
        work.run, setup=work.zero_grad, rounds=rounds, iterations=1, warmup_rounds=1
    )
    benchmark.extra_info.update(work.nfe)
    benchmark.extra_info.update(_ratios(work, field, method, gradient, steps, alpha, solver,
                                        rounds))
    del work
    benchmark.extra_info.update(_memory(field, method, gradient, steps, alpha, solver))


@pytest.mark.parametrize(("field", "method", "gradient", "steps"), _grid())
def test_fdeint(benchmark: Any, field: str, method: str, gradient: str, steps: int) -> None:
    """One forward+backward pass of ``fdeint`` at ``alpha = 0.5``."""
    _bench(benchmark, field, method, gradient, steps, ALPHA, "fdebench")


@pytest.mark.parametrize(("solver", "steps"), _alpha1_grid())
def test_alpha1_vs_torchdiffeq(benchmark: Any, solver: str, steps: int) -> None:
    """``alpha = 1`` forward Euler, direct gradients: ``fdeint`` against ``torchdiffeq.odeint``."""
    _bench(benchmark, "mlp", "euler", "direct", steps, 1.0, solver)

"""The regression gate's engine cases (pytest-benchmark): small, with same-process ratios.

One forward+backward pass of the ``mlp-small`` field (state 128 x 32, hidden 256), ``N = 40``
steps, ``alpha = 0.5``, final output only, for every method x gradient mode
(``test_gate_engine[euler-adjoint]``), plus ``alpha = 1`` Euler against ``torchdiffeq``
(``test_gate_alpha1_torchdiffeq``), and the long-horizon case (``test_gate_long_horizon``: euler,
direct, ``N = 1024``, the fast history sums) whose ratios catch a history that falls back to
``O(N^2)`` work.  The timed rounds give the usual pytest-benchmark
statistics; the gated numbers are in ``extra_info`` (see :mod:`benchmarks.common.gate` for each
name).
With :mod:`benchmarks.bench_tasks` this is what ``.ci/gate`` runs and compares with the baseline::

    export FDEBENCH_BENCH_THREADS=1 FDEBENCH_BENCH_DEVICE=cpu
    python -m pytest benchmarks/bench_gate.py benchmarks/bench_tasks.py --benchmark-only \\
        --benchmark-json gate.json
    fdebench compare results/baselines/gate-cpu.json gate.json \\
        --fail-on "$(python -m benchmarks.common.gate)"
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from .common import gate
from .common.fields import bench_device
from .common.workload import make_workload

ROUNDS = 5


def _record(benchmark: Any, work: Any, **config: Any) -> None:
    """Time ``work`` (one warm-up round) and record the configuration."""
    benchmark.extra_info.update(config, field=gate.FIELD, n_steps=gate.STEPS,
                                device=str(bench_device()), threads=torch.get_num_threads(),
                                memory_measured_by="torch allocator peak")
    benchmark.pedantic(work.run, setup=work.zero_grad, rounds=ROUNDS, iterations=1,
                       warmup_rounds=1)


@pytest.mark.parametrize("gradient", gate.GRADIENTS)
@pytest.mark.parametrize("method", gate.METHODS)
def test_gate_engine(benchmark: Any, method: str, gradient: str) -> None:
    """One pass of ``fdeint`` at the gate's size; extra_info from :func:`gate.engine_metrics`."""
    work = make_workload(gate.FIELD, method, gradient, gate.STEPS, gate.ALPHA, bench_device(),
                         outputs="final")
    _record(benchmark, work, method=method, gradient=gradient, alpha=gate.ALPHA)
    benchmark.extra_info.update(gate.engine_metrics(method, gradient))


def test_gate_alpha1_torchdiffeq(benchmark: Any) -> None:
    """``alpha = 1`` forward Euler, direct: fdebench timed, its time over torchdiffeq's."""
    work = make_workload(gate.FIELD, "euler", "direct", gate.STEPS, 1.0, bench_device(),
                         outputs="final")
    _record(benchmark, work, method="euler", gradient="direct", alpha=1.0)
    benchmark.extra_info.update(gate.torchdiffeq_metrics())


def test_gate_long_horizon(benchmark: Any) -> None:
    """Euler, direct, ``N = 1024``: fractional / ``alpha = 1`` and ``N = 1024`` / ``N = 256``."""
    work = make_workload(gate.FIELD, "euler", "direct", gate.LONG_STEPS, gate.ALPHA,
                         bench_device(), outputs="final")
    benchmark.extra_info.update(method="euler", gradient="direct", alpha=gate.ALPHA,
                                field=gate.FIELD, n_steps=gate.LONG_STEPS,
                                device=str(bench_device()), threads=torch.get_num_threads(),
                                memory_measured_by="torch allocator peak")
    benchmark.pedantic(work.run, setup=work.zero_grad, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(gate.long_horizon_metrics())

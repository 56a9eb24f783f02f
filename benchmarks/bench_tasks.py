"""One training step of each task at a small size, in every gradient mode (pytest-benchmark).

The cases are :data:`benchmarks.common.task_step.TASK_CASES` (one line per task), ids like
``freefall-adjoint``.  Each round is one iteration of the runner's training loop (zero the
gradients, loss, backward, optimizer step); ``extra_info`` holds the allocator peak of a step,
its field evaluations and, for ``adjoint`` and ``checkpoint``, the memory and same-process time
ratios to direct and ``grad_rel_err`` (see :func:`benchmarks.common.gate.task_metrics`).  Part of
the
regression gate (``.ci/gate``).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from .common import gate
from .common.fields import bench_device
from .common.task_step import TASK_CASES, make_task_step, task_config

ROUNDS = 5


@pytest.mark.parametrize("gradient", gate.GRADIENTS)
@pytest.mark.parametrize("case", list(TASK_CASES))
def test_task_step(benchmark: Any, case: str, gradient: str) -> None:
    """One training iteration of ``case`` under ``gradient``."""
    _, config = task_config(case, gradient)
    step = make_task_step(case, gradient, bench_device())
    benchmark.extra_info.update(
        task=TASK_CASES[case][0], gradient=gradient, method=config["method"],
        alpha=config["alpha"], n_steps=config["n_steps"], device=str(bench_device()),
        threads=torch.get_num_threads(), memory_measured_by="torch allocator peak",
    )
    benchmark.pedantic(step.run, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(gate.task_metrics(case, gradient))

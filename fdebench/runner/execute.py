"""One run, in this process: set up the task, train it under the measurement recipes, evaluate,
probe the gradient, and return the record.  Every outcome is a record with a status."""

from __future__ import annotations

import gc
import time
import traceback
from datetime import datetime, timezone
from typing import Any

import torch

from ..errors import InputError
from ..measure import AllocatorPeak, ProcessPeak, fingerprint, median_iqr, now
from ..results import ERROR, NAN, OOM, RunRecord
from ..tasks import TASKS, NonFinite, Step, Task
from .description import RunDescription
from .fidelity import fidelity
from .suite_file import Measure

__all__ = ["execute", "failure_record", "resolve_device"]


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when torch sees a GPU, else the CPU; a device that is not there is bad
    input (:class:`~fdebench.errors.InputError`)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' requested but torch sees no CUDA device "
                         "(torch.cuda.is_available() is False); use --device cpu")
    return torch.device(device)


def _steps(task: Task, device: torch.device, count: int, steps: list[Step]) -> bool:
    """Up to ``count`` training iterations appended to ``steps``, each followed by the task's
    untimed :meth:`~fdebench.tasks.Task.after_iteration`; ``True`` once the task asks to stop."""
    for _ in range(count):
        steps.append(task.train_step(lambda: now(device)))
        if task.after_iteration():
            return True
    return False


#: timed iterations of a cost-only run whose suite leaves ``timed_iters`` open
COST_ONLY_TIMED = 3


def _budget(iterations: int, measure: Measure,
            cost_only: bool = False) -> tuple[int, int, int]:
    """``(warm-up, memory, timed)`` iterations out of the task's ``iterations``: the memory
    iteration and at least one timed iteration come before the warm-up is granted.  A
    cost-only run takes exactly the warm-up, the memory iteration and the timed ones
    (``timed_iters``, else :data:`COST_ONLY_TIMED`), whatever the task's training budget."""
    if cost_only:
        return measure.warmup_iters, 1, measure.timed_iters or COST_ONLY_TIMED
    memory = 1 if iterations >= 1 else 0
    warmup = min(measure.warmup_iters, max(iterations - memory - 1, 0))
    timed = iterations - warmup - memory
    if measure.timed_iters is not None:
        timed = min(timed, measure.timed_iters)
    return warmup, memory, timed


def _mean(values: list[int]) -> float | None:
    """The mean of ``values`` (``None`` when empty)."""
    return sum(values) / len(values) if values else None


def _train(task: Task, measure: Measure, device: torch.device,
           cost_only: bool = False) -> dict[str, Any]:
    """The training loop: warm-up iterations; one untimed iteration inside the allocator
    window (``peak_mem_bytes``; on the CPU the profiler that counts it would slow a timed
    iteration down); the timed iterations inside the process-memory window; then the untimed
    rest of the training budget.  A task that stops early (see
    :meth:`~fdebench.tasks.Task.after_iteration`) leaves fewer iterations, maybe none timed.
    Returns record fields by name."""
    warmup, memory, timed = _budget(task.iterations, measure, cost_only)
    steps: list[Step] = []
    stopped = _steps(task, device, warmup, steps)
    peak_mem = None
    if memory and not stopped:
        task.optimizer.zero_grad(set_to_none=True)  # freed before the window: see AllocatorPeak
        gc.collect()
        with AllocatorPeak(device) as allocator:
            steps.append(task.train_step(lambda: now(device)))
        peak_mem = allocator.peak_bytes
        stopped = task.after_iteration()
    first_timed = len(steps)
    with ProcessPeak(device) as process:
        if not stopped:
            stopped = _steps(task, device, timed, steps)
    window = steps[first_timed:first_timed + timed]
    if not stopped and not cost_only:
        stopped = _steps(task, device, task.iterations - len(steps), steps)
    median, iqr = median_iqr([s.total_s for s in window])
    last = window[-1] if window else None
    return {
        "time_per_iter_s": median,
        "time_per_iter_iqr_s": iqr,
        "time_forward_s": median_iqr([s.forward_s for s in window])[0],
        "time_backward_s": median_iqr([s.backward_s for s in window])[0],
        "nfe_forward": last.nfe_forward if last else None,
        "nfe_backward": last.nfe_backward if last else None,
        "nfe_forward_mean": _mean([s.nfe_forward for s in steps]),
        "nfe_backward_mean": _mean([s.nfe_backward for s in steps]),
        "timed_iters": len(window),
        "iterations": len(steps),
        "stopped_early": stopped,
        "train_curve": [s.loss for s in steps],
        "peak_mem_bytes": peak_mem,
        **process.result,
    }


def _status(exc: BaseException) -> str:
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return OOM
    return NAN if isinstance(exc, NonFinite) else ERROR


def _new_record(run: RunDescription) -> RunRecord:
    return RunRecord(suite=run.suite, run_id=run.run_id, config_hash=run.config_hash,
                     task=run.task, config=dict(run.config), id_keys=list(run.id_keys),
                     device=run.device)


def failure_record(run: RunDescription, status: str, message: str,
                   wall_s: float | None = None) -> dict[str, Any]:
    """The stored record of a run whose worker left none (killed, timed out, lost)."""
    record = _new_record(run)
    record.update({"status": status, "message": message, "wall_s": wall_s})
    return record.to_json()


def execute(run: RunDescription) -> dict[str, Any]:
    """Run ``run`` and return its stored record.

    The record is filled through :meth:`~fdebench.results.RunRecord.update`: a field name the
    record does not declare (a misspelt measurement) fails the run with status ``error`` and a
    message naming it, instead of vanishing from the stored record."""
    started = time.perf_counter()
    config = run.config
    cost_only = bool(config.get("cost_only", False))  # measure at full size, train no further
    record = _new_record(run)
    record.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        if run.measure.threads:
            torch.set_num_threads(run.measure.threads)
        device = resolve_device(run.device)
        record.update({"device": device.type})
        record.update({"env": fingerprint(device)})
        cls = TASKS[run.task]
        record.update({"metric_names": list(cls.metrics), "metric_directions": dict(cls.metrics)})
        torch.manual_seed(config["seed"])
        task = cls(config, device)
        setup_started = time.perf_counter()
        task.setup()
        record.update({"setup_time_s": time.perf_counter() - setup_started,
                       "data_time_s": task.data_time_s, "data": task.data})
        task.snapshot()
        record.update({"true_values": task.true_values()})
        record.update(_train(task, run.measure, device, cost_only))
        record.update({"state_bytes": task.state_bytes or None})
        if not cost_only:
            record.update({"metrics": task.evaluate(), "alpha_learned": task.alpha_learned()})
        record.update(fidelity(task, config, fine=not cost_only))
    except Exception as exc:  # every failure becomes a record; the suite goes on
        record.update({"status": _status(exc),
                       "message": f"{type(exc).__name__}: {exc}".splitlines()[0][:500],
                       "traceback": traceback.format_exc()})
    record.wall_s = time.perf_counter() - started
    return record.to_json()

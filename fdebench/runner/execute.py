"""One run, in this process: set up the task, train it under the measurement recipes, evaluate,
probe the gradient, and return the record.  Every outcome is a record with a status."""

from __future__ import annotations

import math
import time
import traceback
from datetime import datetime, timezone
from typing import Any

import torch

from ..measure import PeakMemory, fingerprint, median_iqr, now
from ..tasks import TASKS, Task

__all__ = ["NonFinite", "base_record", "execute", "resolve_device"]


class NonFinite(RuntimeError):
    """A non-finite loss or gradient (status ``nan``)."""


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    return torch.device(device)


def _iteration(task: Task, device: torch.device) -> dict[str, float]:
    """One training iteration with its forward/backward times and evaluation counts."""
    task.optimizer.zero_grad(set_to_none=True)
    nfe0, t0 = task.nfe, now(device)
    loss = task.loss(task.model)
    nfe1, t1 = task.nfe, now(device)
    loss.backward()
    nfe2, t2 = task.nfe, now(device)
    value = loss.item()
    grads_finite = all(bool(torch.isfinite(p.grad).all()) for p in task.model.parameters()
                       if p.grad is not None)
    if not (math.isfinite(value) and grads_finite):
        raise NonFinite(f"non-finite {'loss' if not math.isfinite(value) else 'gradient'} "
                        f"({value}) at iteration")
    task.optimizer.step()
    return {"loss": value, "forward": t1 - t0, "backward": t2 - t1, "total": now(device) - t0,
            "nfe_forward": nfe1 - nfe0, "nfe_backward": nfe2 - nfe1}


def _run(task: Task, device: torch.device, count: int, steps: list[dict[str, float]]) -> bool:
    """Up to ``count`` iterations appended to ``steps``, each followed by the task's untimed
    :meth:`~fdebench.tasks.Task.after_iteration`; ``True`` once the task asks to stop."""
    for _ in range(count):
        steps.append(_iteration(task, device))
        if task.after_iteration():
            return True
    return False


def _train(task: Task, measure: dict[str, Any], device: torch.device) -> dict[str, Any]:
    """The training loop: warm-up iterations, then timed iterations inside the memory window,
    then the untimed rest of the training budget.  A task that stops early (see
    :meth:`~fdebench.tasks.Task.after_iteration`) leaves fewer timed iterations, maybe none."""
    warmup = min(measure["warmup_iters"], max(task.iterations - 1, 0))
    timed = task.iterations - warmup
    if measure["timed_iters"] is not None:
        timed = min(timed, measure["timed_iters"])
    steps: list[dict[str, float]] = []
    stopped = _run(task, device, warmup, steps)
    with PeakMemory(device) as memory:
        stopped = stopped or _run(task, device, timed, steps)
    if not stopped:
        stopped = _run(task, device, task.iterations - warmup - timed, steps)
    window = steps[warmup:warmup + timed]
    median, iqr = median_iqr([s["total"] for s in window])
    return {
        "time_per_iter_s": median,
        "time_per_iter_iqr_s": iqr,
        "time_forward_s": median_iqr([s["forward"] for s in window])[0],
        "time_backward_s": median_iqr([s["backward"] for s in window])[0],
        "nfe_forward": window[-1]["nfe_forward"] if window else None,
        "nfe_backward": window[-1]["nfe_backward"] if window else None,
        "timed_iters": len(window),
        "iterations": len(steps),
        "stopped_early": stopped,
        "train_curve": [s["loss"] for s in steps],
        **memory.result,
    }


def _fidelity(task: Task, gradient: str) -> dict[str, float]:
    """This mode's parameter gradient against direct's, same batch and initial weights."""
    reference = task.gradient_probe("direct")
    grad = reference if gradient == "direct" else task.gradient_probe(gradient)
    denom = reference.norm().item()
    rel = (grad - reference).norm().item() / denom if denom else 0.0
    cos = torch.nn.functional.cosine_similarity(grad, reference, dim=0).item()
    return {"grad_rel_err": rel, "grad_cosine": cos}


def _status(exc: BaseException) -> str:
    if isinstance(exc, torch.OutOfMemoryError | MemoryError):
        return "oom"
    return "nan" if isinstance(exc, NonFinite) else "error"


def base_record(spec: dict[str, Any], status: str = "ok", message: str = "") -> dict[str, Any]:
    """The identity and outcome fields every record of ``spec`` starts with."""
    return {
        "suite": spec["suite"], "run_id": spec["run_id"], "config_hash": spec["config_hash"],
        "task": spec["task"], **spec["config"], "device": spec["device"],
        "status": status, "message": message, "traceback": None,
    }


def execute(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``spec`` (``run_id, task, config, config_hash, suite, measure, device``)."""
    started = time.perf_counter()
    config = spec["config"]
    record = base_record(spec)
    record["started_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        if spec["measure"].get("threads"):
            torch.set_num_threads(spec["measure"]["threads"])
        device = resolve_device(spec["device"])
        record["device"] = device.type
        record["env"] = fingerprint(device)
        cls = TASKS[spec["task"]]
        record["metric_names"] = list(cls.metrics)
        torch.manual_seed(config["seed"])
        task = cls(config, device)
        setup_started = time.perf_counter()
        task.setup()
        record["setup_time_s"] = time.perf_counter() - setup_started
        record["data_time_s"], record["data"] = task.data_time_s, task.data
        task.snapshot()
        record.update(_train(task, spec["measure"], device))
        record.update(task.evaluate())
        record.update(_fidelity(task, config["gradient"]))
    except Exception as exc:  # every failure becomes a record; the suite goes on
        record["status"] = _status(exc)
        record["message"] = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        record["traceback"] = traceback.format_exc()
    record["wall_s"] = time.perf_counter() - started
    return record

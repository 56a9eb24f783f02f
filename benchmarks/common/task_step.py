"""One training step of a task at a small size: the unit :mod:`benchmarks.bench_tasks` times.

``TASK_CASES`` maps a case id to ``(task name, parameters)``: the parameters override the task's
defaults as a suite entry would (:meth:`fdebench.tasks.Task.resolve`).
Benchmarking a new task is one more line here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from fdebench.measure import now
from fdebench.tasks import Task, get_task

__all__ = ["TASK_CASES", "TaskStep", "make_task_step", "task_config"]

TASK_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "freefall": ("freefall", {}),
    "lotka_volterra": ("lotka_volterra", {"method": "abm"}),
    "synthetic": ("synthetic", {"batch": 64, "hidden": 128}),
    "image_classification-synthetic": ("image_classification", {
        "dataset": "synthetic", "channels": 1, "image_size": 16, "width": 16, "batch_size": 32,
        "max_train_samples": 64, "max_test_samples": 32, "max_steps": 100, "step_size": 0.1}),
    "image_classification-digits": ("image_classification", {
        "dataset": "digits", "width": 16, "batch_size": 32, "max_train_samples": 64,
        "max_test_samples": 32, "max_steps": 100, "step_size": 0.1}),
    "node_classification-sbm": ("node_classification", {
        "dataset": "sbm", "model": "learnable", "n_nodes": 2000, "hidden": 32, "dropout": 0.0,
        "step_size": 0.1}),
}


def task_config(case: str, gradient: str, seed: int = 0) -> tuple[type[Task], dict[str, Any]]:
    """The task class of ``case`` and its resolved configuration under ``gradient``."""
    if case not in TASK_CASES:
        raise ValueError(f"unknown task case {case!r}; valid cases: {', '.join(TASK_CASES)}")
    name, params = TASK_CASES[case]
    cls = get_task(name)
    config = cls.resolve({**params, "gradient": gradient, "seed": seed})
    reason = cls.skip(config)
    if reason:
        raise ValueError(f"task case {case!r} cannot run: {reason}")
    return cls, config


@dataclass
class TaskStep:
    """A set-up task; :meth:`run` is one training iteration, as the runner does it."""

    task: Task
    gradient: str
    #: field evaluations of the last step: ``{"nfe_forward": ..., "nfe_backward": ...}``
    nfe: dict[str, int] = field(default_factory=dict)

    def run(self) -> None:
        step = self.task.train_step(lambda: now(self.task.device))
        self.nfe = {"nfe_forward": step.nfe_forward, "nfe_backward": step.nfe_backward}

    def gradients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This mode's parameter gradient and direct's at the initial weights, flattened (what
        the runner's ``grad_rel_err`` compares: the probe loss, float64 where the task says so).
        """
        return self.task.gradient_probe(self.gradient), self.task.gradient_probe("direct")


def make_task_step(case: str, gradient: str, device: torch.device, seed: int = 0) -> TaskStep:
    """Set up the task of ``case`` under ``gradient`` on ``device``."""
    cls, config = task_config(case, gradient, seed)
    torch.manual_seed(seed)
    task = cls(config, device)
    task.setup()
    task.snapshot()
    return TaskStep(task, gradient)

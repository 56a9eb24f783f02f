"""Set a task up as the runner does, for the task tests (imported by them, not a test file)."""

from __future__ import annotations

from typing import Any

import torch

from fdebench.tasks import Task

CPU = torch.device("cpu")


def config(cls: type[Task], **over: Any) -> dict[str, Any]:
    """A resolved configuration, as the runner resolves it (:meth:`Task.resolve`)."""
    return cls.resolve(over)


def make(cls: type[Task], **over: Any) -> Task:
    """A set-up task on the CPU with its initial weights snapshotted, as the runner makes it."""
    cfg = config(cls, **over)
    assert cls.skip(cfg) is None
    torch.manual_seed(cfg["seed"])
    task = cls(cfg, CPU)
    task.setup()
    task.snapshot()
    return task

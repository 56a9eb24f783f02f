"""Benchmark tasks.  ``TASKS`` maps a task name to its class.

Modules named in the environment variable ``FDEBENCH_TASK_MODULES`` (comma-separated, importable)
are imported too, and the classes in their ``TASKS`` list are registered: a way to benchmark
your own task without editing fdebench.
"""

from __future__ import annotations

import importlib
import os

from .backends import ENGINES, Incompatible, all_methods, incompatible
from .base import ENGINE_DEFAULTS, HIGHER, LOWER, FDEBlock, NonFinite, Step, Task
from .freefall import FreeFall
from .image_classification import ImageClassification
from .lotka_volterra import LotkaVolterra
from .node_classification import NodeClassification
from .synthetic import Synthetic

__all__ = [
    "ENGINES", "ENGINE_DEFAULTS", "HIGHER", "LOWER", "TASKS", "FDEBlock", "Incompatible",
    "NonFinite", "Step", "Task",
    "all_methods", "get_task", "incompatible", "load_plugins",
]

TASKS: dict[str, type[Task]] = {
    FreeFall.name: FreeFall,
    ImageClassification.name: ImageClassification,
    LotkaVolterra.name: LotkaVolterra,
    NodeClassification.name: NodeClassification,
    Synthetic.name: Synthetic,
}


def load_plugins() -> None:
    """Register the task classes of the modules named in ``FDEBENCH_TASK_MODULES``."""
    for name in filter(None, os.environ.get("FDEBENCH_TASK_MODULES", "").split(",")):
        for cls in importlib.import_module(name.strip()).TASKS:
            TASKS[cls.name] = cls


load_plugins()


def get_task(name: str) -> type[Task]:
    """The task class called ``name``; unknown names raise listing the valid ones."""
    try:
        return TASKS[name]
    except KeyError:
        valid = ", ".join(sorted(TASKS))
        raise ValueError(f"unknown task {name!r}; valid tasks: {valid}") from None

"""Executors: how a suite's runs are spread over processes, GPUs and machines.

An executor is a context manager that executes runs (each a
:class:`~fdebench.runner.description.RunDescription`) and yields events (:mod:`.base`):
:class:`Started` when a run begins on a node, :class:`Finished` with its record when it ends.
The driver (:func:`fdebench.runner.suite.run_suite`) is the only one that writes records.
Whatever the executor, every run executes in a fresh process of its own
(:class:`fdebench.runner.worker.RunProcess`: peak memory per run, a crash takes nothing else
down) within the suite's time limit, and a run that could not report (killed, lost with its
machine) still ends in a record.

- ``local`` (:mod:`.local`): this machine, ``--jobs`` runs at a time, one GPU set per run;
- ``ray`` (:mod:`.ray_executor`): one Ray task per run on a Ray cluster.
"""

from .base import Event, Executor, Finished, Started, with_threads
from .local import LocalExecutor, gpu_slots
from .ray_executor import RayExecutor

__all__ = ["EXECUTORS", "Event", "Executor", "Finished", "LocalExecutor", "RayExecutor",
           "Started", "gpu_slots", "with_threads"]

#: the executors, by the name ``fdebench run --executor`` takes
EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor, "ray": RayExecutor}

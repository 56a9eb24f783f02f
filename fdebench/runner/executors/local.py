"""The ``local`` executor: this machine, ``jobs`` runs at a time.

On CUDA each concurrent run gets GPUs of its own (``CUDA_VISIBLE_DEVICES``, ``resources.gpus``
per run, default one), so two runs never share a GPU and memory figures stay per run; with
several jobs each run gets its share of the cores as torch threads, unless the suite sets
``measure.threads``.  One job is the plain sequential loop: start a run, wait, record.
"""

from __future__ import annotations

import os
import platform
import time
from collections import deque
from collections.abc import Iterator
from multiprocessing.connection import wait

import torch

from ...errors import InputError
from ..description import RunDescription
from ..execute import resolve_device
from ..suite_file import Resources
from ..worker import RunProcess
from .base import Event, Finished, Started, with_threads

__all__ = ["LocalExecutor", "gpu_slots", "visible_gpus"]


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [gpu.strip() for gpu in listed.split(",") if gpu.strip()]
    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_slots(visible: list[str], jobs: int, per_run: int) -> list[str | None]:
    """The ``CUDA_VISIBLE_DEVICES`` of each of ``jobs`` concurrent runs: ``per_run`` of the
    ``visible`` GPUs each, never shared (``None``: the run's GPUs are not pinned)."""
    if per_run == 0:
        return [None] * jobs
    if jobs * per_run > len(visible):
        fits = len(visible) // per_run
        fix = f"use --jobs {fits}" if fits else "lower the suite's `resources.gpus`"
        raise InputError(
            f"--jobs {jobs} needs {jobs * per_run} GPUs ({per_run} per run, never shared: see "
            f"the suite's `resources`), but {len(visible)} visible "
            f"({','.join(visible) or 'none'}); {fix}")
    return [",".join(visible[i * per_run:(i + 1) * per_run]) for i in range(jobs)]


def _cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LocalExecutor:
    """Runs on this machine, ``jobs`` at a time (default 1: one after another)."""

    name = "local"

    def __init__(self, *, jobs: int | None, address: str | None, resources: Resources,
                 device: str) -> None:
        if address is not None:
            raise InputError("--address names a Ray cluster: use it with --executor ray")
        self.jobs = jobs or 1
        self.device = resolve_device(device).type
        per_run = resources.gpus_on(self.device)
        self._slots = gpu_slots(visible_gpus() if per_run else [], self.jobs, per_run)
        self._threads = max(_cores() // self.jobs, 1) if self.jobs > 1 else None
        self._running: dict[int, tuple[RunProcess, int]] = {}  # index -> (run, slot)
        self.node = platform.node()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        """Kill the runs still going (Ctrl-C, an error in the driver)."""
        for run, _ in self._running.values():
            run.kill()
        self._running.clear()

    def _start(self, index: int, run: RunDescription, slot: int, limit: float) -> None:
        environ = dict(os.environ)
        if self._slots[slot] is not None:
            environ["CUDA_VISIBLE_DEVICES"] = self._slots[slot]
        process = RunProcess(with_threads(run, self._threads), limit, environ)
        self._running[index] = (process, slot)

    def _ended(self) -> list[tuple[int, int, RunProcess]]:
        """Wait until some run ends or reaches its time limit; those runs, with their slots."""
        runs = [run for run, _ in self._running.values()]
        timeout = max(min(run.deadline for run in runs) - time.monotonic(), 0.0)
        ready = set(wait([run.sentinel for run in runs], timeout))
        now = time.monotonic()
        return [(index, slot, run) for index, (run, slot) in self._running.items()
                if run.sentinel in ready or now >= run.deadline]

    def run(self, runs: list[RunDescription], limit: float) -> Iterator[Event]:
        pending, free = deque(enumerate(runs)), deque(range(self.jobs))
        while pending or self._running:
            while pending and free:
                index, run = pending.popleft()
                self._start(index, run, free.popleft(), limit)
                yield Started(index, self.node)
            for index, slot, run in self._ended():
                del self._running[index]
                free.append(slot)
                yield Finished(index, run.record())


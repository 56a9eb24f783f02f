"""Tiny tasks for the runner's tests (registered through FDEBENCH_TASK_MODULES)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import ClassVar

import psutil
import torch

from fdebench.tasks import FDEBlock, Task


class Decay(Task):
    """Fit the rate of ``D^a y = -k y``: a few milliseconds per iteration."""

    name = "fake_ok"
    params: ClassVar[dict] = {"iters": 4, "sleep": 0.0}
    metrics: ClassVar[dict] = {"rate_error": "lower"}

    def setup(self) -> None:
        note_pid()
        self.rate = torch.nn.Parameter(torch.tensor(0.5, device=self.device))
        field = _Rate(self.rate)
        t = torch.linspace(0, self.config["t_end"], self.n_steps(self.config) + 1)
        self.model = FDEBlock(field, t.to(self.device), **self.engine_kwargs())
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)

    def loss(self, model):
        time.sleep(self.config["sleep"])
        return self.probe_loss(model)

    def probe_loss(self, model):
        y0 = torch.ones(3, device=self.device, dtype=self.rate.dtype)
        y0 = y0.to(next(model.parameters()).dtype)
        return (model(y0)[-1] - 0.5).square().mean()

    def evaluate(self):
        return {"rate_error": abs(self.rate.item() - 1.0)}


def note_pid() -> None:
    """Leave this run's process id in ``$FDEBENCH_TEST_PIDS`` (if set): a test can then check
    that no run outlived its driver."""
    folder = os.environ.get("FDEBENCH_TEST_PIDS")
    if folder:
        Path(folder, str(os.getpid())).touch()


class _Rate(torch.nn.Module):
    def __init__(self, rate):
        super().__init__()
        self.rate = rate

    def forward(self, t, y):
        return -self.rate * y


class Raises(Decay):
    name = "fake_raise"

    def loss(self, model):
        raise RuntimeError("boom\nsecond line")


class NotFinite(Decay):
    name = "fake_nan"

    def loss(self, model):
        return super().loss(model) * float("nan")


class StopsEarly(Decay):
    """Asks to stop after ``stop_after`` iterations; counts the runner's calls of the hook."""

    name = "fake_stop"
    params: ClassVar[dict] = {"iters": 8, "sleep": 0.0, "stop_after": 3}

    def setup(self) -> None:
        super().setup()
        self.hook_calls = 0

    def after_iteration(self) -> bool:
        self.hook_calls += 1
        return self.hook_calls >= self.config["stop_after"]

    def evaluate(self):
        return {**super().evaluate(), "hook_calls": self.hook_calls}


class Slow(Decay):
    name = "fake_slow"

    def setup(self) -> None:
        note_pid()
        time.sleep(60)


class Exits(Decay):
    """Its process dies without a word, as in a segfault or a native abort."""

    name = "fake_exit"

    def setup(self) -> None:
        os._exit(3)


class LosesItsRayWorker(Decay):
    """Kills the Ray worker whose task started this run (the parent of its fork server), then
    waits to be taken down with it."""

    name = "fake_lose"

    def setup(self) -> None:
        note_pid()
        worker = psutil.Process(os.getppid()).parent()
        if not worker.cmdline()[0].startswith("ray::"):
            raise RuntimeError(f"not started by a Ray worker: {worker.cmdline()[:2]}")
        worker.kill()
        time.sleep(60)


TASKS = [Decay, Raises, NotFinite, StopsEarly, Slow, Exits, LosesItsRayWorker]

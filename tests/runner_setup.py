"""Suites of fake tasks for the runner's tests (imported by them, not a test file)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
#: the environment that registers tests/fake_tasks.py here and in every run's process
ENV = {
    "FDEBENCH_TASK_MODULES": "fake_tasks",
    "PYTHONPATH": os.pathsep.join(
        [str(TESTS), str(TESTS.parent), os.environ.get("PYTHONPATH", "")]
    ),
}


def use_fake_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Register the fake tasks in this process and, through the environment, in runs."""
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    import fake_tasks

    from fdebench.tasks import TASKS

    for cls in fake_tasks.TASKS:
        monkeypatch.setitem(TASKS, cls.name, cls)


def write(folder: Path, text: str, name: str = "suite.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def records(results: Path, suite: str) -> list[dict]:
    """The records of ``suite`` under ``results``, in file order."""
    lines = (results / suite / "runs.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]

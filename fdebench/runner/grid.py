"""Grid expansion: a suite -> the list of runs, each with a readable id and a config hash."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from ..tasks import TASKS, incompatible
from .config import Suite

__all__ = ["RunSpec", "expand"]

#: always part of a run id; other keys join when they vary between a task's runs
ID_KEYS = ("alpha", "gradient", "seed", "step_size")


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    task: str
    config: dict[str, Any]
    config_hash: str
    skip: str | None = None  # why this run cannot run (it is listed, never executed)
    id_keys: tuple[str, ...] = ()  # the configuration keys the run id names


def _configs(suite: Suite):
    """(task, resolved config) for every task entry x grid point x seed, in suite order."""
    for entry in suite.tasks:
        cls = TASKS[entry.task]
        known = cls.resolve({})
        base = {"cost_only": suite.measure.cost_only}
        base.update({k: v for k, v in suite.defaults.items() if k in known})
        base.update(entry.params)
        grid = {**suite.grid, **entry.grid}
        keys = list(grid)
        for values in itertools.product(*(grid[k] for k in keys)):
            for seed in suite.seeds:
                point = {**base, **dict(zip(keys, values, strict=True)), "seed": seed}
                yield entry.task, cls.resolve(point)


def _skip(task: str, config: dict[str, Any]) -> str | None:
    """Why a run cannot run: its engine's reason (e.g. ``rk4`` or ``backsolve`` with alpha < 1,
    a method the engine lacks; see :func:`fdebench.tasks.incompatible`), else the task's."""
    problem = incompatible(config)
    return problem.reason if problem else TASKS[task].skip(config)


def _fmt(value: Any) -> str:
    return repr(value) if isinstance(value, str) and not value.isidentifier() else str(value)


def expand(suite: Suite, device: str) -> list[RunSpec]:
    """Every run of the suite (skipped ones included), with ``n_steps`` resolved."""
    pairs = list(_configs(suite))
    varying: dict[str, set[str]] = {}
    for task in {t for t, _ in pairs}:
        configs = [c for t, c in pairs if t == task]
        varying[task] = {k for k in configs[0] if len({json.dumps(c[k]) for c in configs}) > 1}
    runs, seen = [], set()
    for task, config in pairs:
        keys = sorted(set(ID_KEYS) | varying[task])
        run_id = f"{task}[{','.join(f'{k}={_fmt(config[k])}' for k in keys)}]"
        if run_id in seen:  # the same configuration listed twice: run it once
            continue
        seen.add(run_id)
        payload = {"task": task, "config": config, "measure": suite.measure.__dict__,
                   "device": device}
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
        runs.append(RunSpec(run_id, task, config, digest, _skip(task, config), tuple(keys)))
    return runs

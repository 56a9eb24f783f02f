"""Grid expansion: a suite -> the list of runs, each with a readable id and a config hash."""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from typing import Any

from ..tasks import ENGINE_DEFAULTS, TASKS, incompatible
from .suite_file import Suite

__all__ = ["RunSpec", "expand"]

#: always part of a run id; other keys join when they vary between a task's runs
ID_KEYS = ("alpha", "gradient", "seed", "step_size")
#: keys that joined the configuration after suites had been run (issue 19).  At their default
#: they stay out of the config hash and out of the run id even when they vary, so a run that
#: leaves them there keeps the id and hash it had before them (a results folder written then
#: resumes, its records compare like for like); a run that sets one is named by it
#: (``synthetic[alpha=0.5,gradient=revolve,history=soe,seed=0,step_size=0.05]``)
LATER_KEYS = ("history", "soe_tol")


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


def _at_default(config: dict[str, Any], key: str) -> bool:
    """Whether ``key`` is one of :data:`LATER_KEYS` and ``config`` leaves it at its default."""
    return key in LATER_KEYS and config.get(key, ENGINE_DEFAULTS[key]) == ENGINE_DEFAULTS[key]


def _hash(task: str, config: dict[str, Any], suite: Suite, device: str) -> str:
    """The config hash of a run: its task, configuration (:data:`LATER_KEYS` at their default
    left out), measurement recipe and device."""
    config = {k: v for k, v in config.items() if not _at_default(config, k)}
    payload = {"task": task, "config": config, "measure": suite.measure.__dict__,
               "device": device}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def expand(suite: Suite, device: str) -> list[RunSpec]:
    """Every run of the suite (skipped ones included), with ``n_steps`` resolved."""
    pairs = list(_configs(suite))
    varying: dict[str, set[str]] = {}
    for task in {t for t, _ in pairs}:
        configs = [c for t, c in pairs if t == task]
        varying[task] = {k for k in configs[0] if len({json.dumps(c[k]) for c in configs}) > 1}
    runs, seen = [], set()
    for task, config in pairs:
        keys = sorted(k for k in set(ID_KEYS) | varying[task] if not _at_default(config, k))
        run_id = f"{task}[{','.join(f'{k}={_fmt(config[k])}' for k in keys)}]"
        if run_id in seen:  # the same configuration listed twice: run it once
            continue
        seen.add(run_id)
        runs.append(RunSpec(run_id, task, config, _hash(task, config, suite, device),
                            _skip(task, config), tuple(keys)))
    return runs

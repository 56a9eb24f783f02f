"""Suite files: YAML -> validated :class:`Suite`, with one message per problem.

PyYAML parses the file; the schema below is checked explicitly (each task contributes its own
keys, so the schema is built per task), and every message names the file, the line (from the
YAML node marks) and the key, e.g. ``suites/x.yaml:12: tasks[0].alpha: must be in (0, 1], got 1.5``.
"""

from __future__ import annotations

import itertools
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..engine import GRADIENTS, HISTORIES, SOE_TOLERANCES
from ..errors import InputError
from ..results import collisions
from ..tasks import ENGINE_DEFAULTS, ENGINES, TASKS, all_methods, incompatible

__all__ = [
    "BUNDLED", "Measure", "Resources", "Suite", "SuiteError", "TaskEntry", "bundled_suites",
    "find_suite", "load_suite",
]

#: the suites shipped inside the package (package data: there in any install)
BUNDLED = Path(__file__).resolve().parents[1] / "suites"


def bundled_suites() -> dict[str, Path]:
    """Name -> file of every bundled suite, sorted by name."""
    return {p.stem: p for p in sorted(BUNDLED.glob("*.yaml"))}


def find_suite(name: str | Path) -> Path:
    """The suite file ``name`` names: an existing file, else a bundled suite by name (with or
    without ``.yaml``, or as ``suites/<name>.yaml``); otherwise bad input listing the bundled
    suites."""
    path = Path(name)
    if path.is_file():
        return path
    bundled = bundled_suites()
    stem = path.name.removesuffix(".yaml").removesuffix(".yml")
    if stem in bundled and (path.parent == Path(".") or path.parent.name == "suites"):
        return bundled[stem]
    raise InputError(f"no suite file {name}; bundled suites: {', '.join(bundled)} "
                     "(see `fdebench suites`)")


class SuiteError(InputError):
    """Every problem found in a suite file, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Measure:
    warmup_iters: int = 1
    timed_iters: int | None = None  # None: every iteration after the warm-up
    time_limit_s: float = 600.0
    threads: int | None = None  # torch intra-op threads per run; None: torch's default
    #: the default of every run's ``cost_only`` (a task entry or the grid may set it per run):
    #: measure the cost only, the warm-up, memory and timed iterations at full size, then no
    #: training to convergence, no evaluation and no fine-step gradient reference (the record
    #: says ``cost_only``; its metrics are absent)
    cost_only: bool = False


@dataclass(frozen=True)
class Resources:
    """What one run holds while it runs (the Ray executor reserves it; see
    fdebench.runner.executors)."""

    cpus: int = 1
    gpus: int | None = None  # None: one GPU per run on CUDA, none on the CPU

    def gpus_on(self, device: str) -> int:
        """GPUs per run on ``device`` (``cpu`` or ``cuda``): one per run on CUDA by default, so
        that two runs never share a GPU and its memory figures stay per run."""
        if self.gpus is not None:
            return self.gpus
        return 1 if device == "cuda" else 0


@dataclass
class TaskEntry:
    task: str
    params: dict[str, Any]
    grid: dict[str, list[Any]]


@dataclass
class Suite:
    name: str
    path: Path | None
    device: str = "auto"
    description: str = ""
    seeds: list[int] = field(default_factory=lambda: [0])
    measure: Measure = field(default_factory=Measure)
    resources: Resources = field(default_factory=Resources)
    defaults: dict[str, Any] = field(default_factory=dict)
    grid: dict[str, list[Any]] = field(default_factory=dict)
    tasks: list[TaskEntry] = field(default_factory=list)


# ---- value checks: each returns a problem or None ---------------------------------------------
def _number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _positive(v: Any) -> str | None:
    return None if _number(v) and v > 0 else f"must be a positive number, got {v!r}"


def _boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else f"must be true or false, got {v!r}"


def _alpha(v: Any) -> str | None:
    return None if _number(v) and 0 < v <= 1 else f"must be a number in (0, 1], got {v!r}"


def _one_of(choices) -> Any:
    def check(v: Any) -> str | None:
        if v in choices:
            return None
        return f"unknown value {v!r}; valid values: {', '.join(sorted(choices))}"
    return check


def _method(v: Any) -> str | None:
    """A method of some engine (which engine has which is checked with the other engine keys,
    see :func:`_combinations`)."""
    if v in all_methods():
        return None
    per_engine = "; ".join(f"{', '.join(sorted(e.methods))} (engine {name})"
                           for name, e in ENGINES.items())
    return f"unknown value {v!r}; valid values: {per_engine}"


def _soe_tol(v: Any) -> str | None:
    """The relative error of the sum of exponentials of ``history: soe``: the engine's range."""
    low, high = SOE_TOLERANCES
    return None if _number(v) and low <= v <= high else (
        f"must be a number in [{low:g}, {high:g}], got {v!r}")


ENGINE_CHECKS = {
    "alpha": _alpha,
    "method": _method,
    "gradient": _one_of(GRADIENTS),
    "step_size": _positive,
    "t_end": _positive,
    "engine": _one_of(ENGINES),
    "rtol": _positive,
    "atol": _positive,
    "learn_alpha": _boolean,
    "history": _one_of(HISTORIES),
    "soe_tol": _soe_tol,
    "cost_only": _boolean,
}
#: the keys whose combination an engine may refuse (see fdebench.tasks.backends.incompatible)
COMBINED = ("engine", "method", "gradient", "alpha", "learn_alpha", "history")


def _typed(default: Any) -> Any:
    """The check for a task parameter: the type of its default."""
    def check(v: Any) -> str | None:
        if isinstance(default, bool):
            ok = isinstance(v, bool)
        elif isinstance(default, int):
            ok = isinstance(v, int) and not isinstance(v, bool)
        elif isinstance(default, float):
            ok = _number(v)
        else:
            ok = isinstance(v, type(default))
        return None if ok else f"must be of type {type(default).__name__}, got {v!r}"
    return check


def _within(default: Any, low: float, high: float) -> Any:
    """The check for a numeric task parameter with a range: its type, then ``[low, high]``."""
    typed = _typed(default)

    def check(v: Any) -> str | None:
        if problem := typed(v):
            return problem
        return None if low <= v <= high else f"must be in [{low:g}, {high:g}], got {v!r}"
    return check


def key_checks(task: str) -> dict[str, Any]:
    """Every key a task accepts and its check."""
    checks = dict(ENGINE_CHECKS)
    cls = TASKS[task]
    checks.update({k: _typed(v) for k, v in cls.params.items()})
    checks.update({k: _one_of(v) for k, v in cls.choices.items()})
    checks.update({k: _within(cls.params[k], *bounds) for k, bounds in cls.ranges.items()})
    return checks


def record_collisions(task: str) -> list[str]:
    """Why the runs of ``task`` cannot be recorded, if they cannot: a configuration key
    (parameter) or metric that names a record field, or a metric named like a parameter, would
    overwrite it in the flat record (see :func:`fdebench.results.collisions`)."""
    cls = TASKS[task]
    return [f"task {task!r} cannot be recorded: {problem}"
            for problem in collisions(cls.resolve({}), cls.metrics)]


def all_keys() -> set[str]:
    return set(ENGINE_DEFAULTS) | {k for t in TASKS.values() for k in t.params}


# ---- YAML with line numbers -------------------------------------------------------------------
def _lines(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map each key path (``("tasks", 0, "alpha")``) to its 1-based line in the file."""
    out = {} if out is None else out
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            out[(*path, key.value)] = key.start_mark.line + 1
            _lines(value, (*path, key.value), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _lines(item, (*path, i), out)
    return out


class _Checker:
    """Collects problems as ``file:line: key: message``."""

    def __init__(self, source: str, lines: dict[tuple, int]) -> None:
        self.source, self.lines, self.problems = source, lines, []

    def add(self, path: tuple, message: str) -> None:
        line = next((self.lines[path[:i]] for i in range(len(path), -1, -1)
                     if path[:i] in self.lines), None)
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        prefix = f"{self.source}:{line}" if line else self.source
        self.problems.append(f"{prefix}: {where or 'suite'}: {message}")

    def mapping(self, value: Any, path: tuple, allowed: set[str] | None) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping, got {type(value).__name__}")
            return {}
        for key in value:
            if allowed is not None and key not in allowed:
                self.add((*path, key), f"unknown key; valid keys: {', '.join(sorted(allowed))}")
        return value

    def values(self, params: dict, path: tuple, checks: dict) -> None:
        for key, value in params.items():
            check = checks.get(key)
            if check and (problem := check(value)):
                self.add((*path, key), problem)

    def grid(self, grid: Any, path: tuple, checks: dict) -> dict[str, list]:
        grid = self.mapping(grid, path, set(checks))
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                self.add((*path, key), f"a grid entry must be a non-empty list, got {values!r}")
                continue
            check = checks.get(key)
            for i, value in enumerate(values):
                if check and (problem := check(value)):
                    self.add((*path, key, i), problem)
        return {k: v for k, v in grid.items() if isinstance(v, list)}


TOP_KEYS = {"name", "description", "device", "seeds", "measure", "resources", "defaults", "grid",
            "tasks"}
MEASURE_CHECKS = {
    "warmup_iters": lambda v: None if isinstance(v, int) and not isinstance(v, bool) and v >= 0
    else f"must be an integer >= 0, got {v!r}",
    "timed_iters": lambda v: None if v is None or (isinstance(v, int) and not isinstance(v, bool)
                                                   and v >= 1)
    else f"must be an integer >= 1 or null, got {v!r}",
    "time_limit_s": _positive,
    "threads": lambda v: None if v is None or (isinstance(v, int) and not isinstance(v, bool)
                                               and v >= 1)
    else f"must be an integer >= 1 or null, got {v!r}",
    "cost_only": _boolean,
}
RESOURCE_CHECKS = {
    "cpus": lambda v: None if isinstance(v, int) and not isinstance(v, bool) and v >= 1
    else f"must be an integer >= 1, got {v!r}",
    # whole GPUs only: a fraction would let two runs share a GPU and each other's memory figures
    "gpus": lambda v: None if v is None or (isinstance(v, int) and not isinstance(v, bool)
                                            and v >= 0)
    else f"must be an integer >= 0 or null (one per run on CUDA), got {v!r}",
}


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite file; raise :class:`SuiteError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SuiteError([f"{path}: cannot read suite file: {exc.strerror}"]) from None
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or exc
        raise SuiteError([f"{where}: invalid YAML: {problem}"]) from None
    return parse_suite(data, str(path), _lines(node) if node is not None else {}, path)


def parse_suite(data: Any, source: str = "<suite>", lines: dict | None = None,
                path: Path | None = None) -> Suite:
    """Validate already-parsed suite data (see :func:`load_suite`)."""
    c = _Checker(source, lines or {})
    data = c.mapping(data, (), TOP_KEYS)
    suite = Suite(name=data.get("name"), path=path)
    if not (isinstance(suite.name, str) and re.fullmatch(r"[A-Za-z0-9_-]+", suite.name)):
        c.add(("name",), f"a name of letters, digits, '-' and '_' is required, got {suite.name!r}")
    suite.description = str(data.get("description", ""))
    suite.device = data.get("device", "auto")
    if suite.device not in ("auto", "cpu", "cuda"):
        c.add(("device",), f"must be auto, cpu or cuda, got {suite.device!r}")
    suite.seeds = data.get("seeds", [0])
    if not (isinstance(suite.seeds, list) and suite.seeds
            and all(isinstance(s, int) and not isinstance(s, bool) for s in suite.seeds)):
        c.add(("seeds",), f"must be a non-empty list of integers, got {suite.seeds!r}")
    measure = c.mapping(data.get("measure"), ("measure",), set(MEASURE_CHECKS))
    c.values(measure, ("measure",), MEASURE_CHECKS)
    suite.measure = Measure(**{k: v for k, v in measure.items() if k in MEASURE_CHECKS})
    resources = c.mapping(data.get("resources"), ("resources",), set(RESOURCE_CHECKS))
    c.values(resources, ("resources",), RESOURCE_CHECKS)
    suite.resources = Resources(**{k: v for k, v in resources.items() if k in RESOURCE_CHECKS})
    suite.defaults = c.mapping(data.get("defaults"), ("defaults",), all_keys())
    c.values(suite.defaults, ("defaults",), ENGINE_CHECKS)
    suite.grid = c.grid(data.get("grid"), ("grid",), {k: None for k in all_keys()}
                        | ENGINE_CHECKS)
    suite.tasks = _tasks(c, data.get("tasks"), suite)
    if c.problems:
        raise SuiteError(list(dict.fromkeys(c.problems)))
    return suite


def _tasks(c: _Checker, entries: Any, suite: Suite) -> list[TaskEntry]:
    if not isinstance(entries, list) or not entries:
        c.add(("tasks",), "a non-empty list of task entries is required")
        return []
    out = []
    for i, entry in enumerate(entries):
        path = ("tasks", i)
        entry = c.mapping(entry, path, None)
        name = entry.get("task")
        if name not in TASKS:
            valid = ", ".join(sorted(TASKS))
            c.add((*path, "task"), f"unknown task {name!r}; valid tasks: {valid}")
            continue
        for problem in record_collisions(name):
            c.add(path, problem)
        checks = key_checks(name)
        c.mapping(entry, path, set(checks) | {"task", "grid"})
        params = {k: v for k, v in entry.items() if k in checks}
        c.values(params, path, checks)
        shared = {k: v for k, v in suite.defaults.items() if k in checks}
        c.values(shared, ("defaults",), checks)
        for key, values in suite.grid.items():
            if key not in checks:
                c.add(("grid", key), f"not a parameter of task {name!r}")
            else:
                for j, value in enumerate(values):
                    if problem := checks[key](value):
                        c.add(("grid", key, j), problem)
        grid = c.grid(entry.get("grid"), (*path, "grid"), checks)
        _combinations(c, path, shared, params, {**suite.grid, **grid})
        out.append(TaskEntry(task=name, params=params, grid=grid))
    return out


def _combinations(c: _Checker, path: tuple, shared: dict, params: dict,
                  grid: dict[str, list]) -> None:
    """A suite error for every engine combination that the task entry fixes and no engine can
    run (e.g. ``gradient: backsolve`` with ``alpha: 0.5``, ``engine: torchdiffeq`` with
    ``method: abm``, ``gradient: revolve`` with ``history: auto`` at ``alpha: 0.5``): one whose
    keys (:class:`~fdebench.tasks.Incompatible`) are all fixed by the entry or the defaults.
    When the grid varies one of its keys, the combination is a listed skip instead
    (:mod:`.grid`)."""
    fixed = {**{k: ENGINE_DEFAULTS[k] for k in COMBINED}, **shared, **params}
    options = {k: [v for v in grid[k] if not ENGINE_CHECKS[k](v)] if k in grid else [fixed[k]]
               for k in COMBINED}
    if any(ENGINE_CHECKS[k](v) for k, values in options.items() for v in values):
        return  # a bad value, already reported
    for values in itertools.product(*options.values()):
        problem = incompatible(dict(zip(COMBINED, values, strict=True)))
        if problem is None or any(k in grid for k in problem.keys):
            continue
        key = next((k for k in problem.keys if k in params), None)
        where = (*path, key) if key else next(
            (("defaults", k) for k in problem.keys if k in shared), path)
        c.add(where, problem.reason)

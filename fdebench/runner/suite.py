"""Run a suite: expand it, skip what is already recorded ``ok``, hand the rest to an executor
(each run in a process of its own with a time limit, one or several at a time, here or on a Ray
cluster: see :mod:`.executors`), append each record as its run ends, and keep going whatever
happens.  This driver is the only writer of records."""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

from tqdm import tqdm

from ..errors import InputError
from ..results import OK, RUNS_FILE, amend, append_record, completed_ok
from .description import RunDescription
from .executors import EXECUTORS, Executor, Started
from .grid import RunSpec, expand
from .suite_file import Suite

__all__ = ["plan", "run_suite"]


def plan(suite: Suite, device: str | None = None, only: str | None = None) -> list[RunSpec]:
    """The runs of ``suite`` on ``device`` (default: the suite's), filtered by ``only``."""
    runs = expand(suite, device or suite.device)
    return [r for r in runs if _matches(r.run_id, only)] if only else runs


def _matches(run_id: str, pattern: str) -> bool:
    """A glob where only ``*`` and ``?`` are wildcards (run ids contain brackets); without
    wildcards, a substring."""
    if "*" not in pattern and "?" not in pattern:
        return pattern in run_id
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, run_id) is not None


def _describe(suite: Suite, run: RunSpec, device: str) -> RunDescription:
    """What a worker needs to execute ``run`` (see :func:`.execute.execute`)."""
    return RunDescription(suite=suite.name, run_id=run.run_id, task=run.task, config=run.config,
                          config_hash=run.config_hash, id_keys=run.id_keys,
                          measure=suite.measure, device=device)


class _Concurrency:
    """Which runs are going on which node, and the most that ran beside each one."""

    def __init__(self) -> None:
        self.running: dict[str, set[int]] = defaultdict(set)
        self.node: dict[int, str] = {}
        self.peak: dict[int, int] = {}

    def start(self, index: int, node: str) -> None:
        self.node[index] = node
        together = self.running[node]
        together.add(index)
        for other in together:
            self.peak[other] = max(self.peak.get(other, 0), len(together))

    def end(self, index: int) -> tuple[str | None, int | None]:
        """``(node, concurrent_runs)`` of a run that ended (``None``: it never said it
        started)."""
        node = self.node.pop(index, None)
        if node is not None:
            self.running[node].discard(index)
        return node, self.peak.pop(index, None)


class _Progress:
    """The progress bar: finished/total and an ETA, how many run now, ok and failed."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.bar = tqdm(total=total, disable=quiet, unit="run", dynamic_ncols=True,
                        file=sys.stderr)
        self.running, self.ok, self.failed = 0, 0, 0

    def started(self) -> None:
        self.running += 1
        self._show()

    def finished(self, status: str) -> None:
        self.running -= 1
        self.ok += status == OK
        self.failed += status != OK
        self.bar.update(1)
        self._show()

    def _show(self) -> None:
        self.bar.set_description(f"{self.running} running", refresh=False)
        self.bar.set_postfix(ok=self.ok, failed=self.failed)

    def close(self) -> None:
        self.bar.close()


def _execute(suite: Suite, todo: list[RunSpec], executor: Executor, path: Path, counts: Counter,
             quiet: bool) -> None:
    """Run ``todo`` on ``executor``; append each record as its run ends, saying how it ran."""
    runs = [_describe(suite, run, executor.device) for run in todo]
    concurrency, progress = _Concurrency(), _Progress(len(runs), quiet)
    try:
        for event in executor.run(runs, suite.measure.time_limit_s):
            if isinstance(event, Started):
                concurrency.start(event.index, event.node)
                progress.started()
                continue
            node, together = concurrency.end(event.index)
            record = amend(event.record, executor=executor.name, node=node,
                           concurrent_runs=together)
            append_record(path, record)
            counts[record["status"]] += 1
            progress.finished(record["status"])
    finally:
        progress.close()


def run_suite(
    suite: Suite,
    results_dir: Path,
    *,
    device: str | None = None,
    only: str | None = None,
    force: bool = False,
    quiet: bool = False,
    executor: str = "local",
    jobs: int | None = None,
    address: str | None = None,
) -> Counter:
    """Execute the suite's runs; return the count of each status (``skipped`` and ``cached``
    included).  Records go to ``results_dir/<suite>/runs.jsonl`` as each run ends; a progress
    bar shows finished/total, an ETA, the runs going on, ok and failed, unless ``quiet``.

    ``executor`` (see :mod:`.executors`) runs them, ``jobs`` at a time (default: one locally,
    the cluster's capacity on Ray), on the Ray cluster at ``address`` if given."""
    if executor not in EXECUTORS:
        raise InputError(f"unknown executor {executor!r}; valid executors: "
                         f"{', '.join(sorted(EXECUTORS))}")
    # the options (and a device that is not there) are refused before anything is written
    runner = EXECUTORS[executor](jobs=jobs, address=address, resources=suite.resources,
                                 device=device or suite.device)
    path = results_dir / suite.name / RUNS_FILE
    done = {} if force else completed_ok(path)
    counts: Counter = Counter()
    runs = plan(suite, device, only)
    todo = [r for r in runs if not r.skip and done.get(r.run_id) != r.config_hash]
    counts["skipped"] = sum(1 for r in runs if r.skip)
    counts["cached"] = len(runs) - len(todo) - counts["skipped"]
    if todo:
        with runner:
            _execute(suite, todo, runner, path, counts, quiet)
    return +counts

"""Run a suite: expand it, skip what is already recorded ``ok``, execute each run in a process
of its own (forked from a torch-preloaded server) with a time limit, append its record at once,
and keep going whatever happens."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..results import RUNS_FILE, append_record, completed_ok
from .config import Suite
from .execute import failure_record, resolve_device
from .grid import RunSpec, expand
from .worker import start_run

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


def _subprocess(spec: dict[str, Any], limit: float) -> dict[str, Any] | str:
    """Run one spec in a process of its own (see :mod:`.worker`); its record, or why there is
    none."""
    with tempfile.TemporaryDirectory(prefix="fdebench-") as tmp:
        spec_path, out_path, err_path = (Path(tmp, n) for n in ("spec.json", "record.json",
                                                                "stderr.txt"))
        spec_path.write_text(json.dumps(spec))
        process = start_run(spec_path, out_path, err_path)
        try:
            process.join(limit)
        except BaseException:  # Ctrl-C: take the run down with the suite
            _kill(process)
            raise
        if process.is_alive():
            _kill(process)
            return f"timeout: exceeded the time limit of {limit:g} s"
        if out_path.exists():
            return json.loads(out_path.read_text())
        if process.exitcode == -signal.SIGKILL:
            return "oom: killed by SIGKILL (out of memory?)"
        stderr = err_path.read_text(errors="replace") if err_path.exists() else ""
        tail = stderr.strip().splitlines()[-1:] or ["no output"]
        return f"error: worker exited with code {process.exitcode}: {tail[0]}"


def _kill(process: BaseProcess) -> None:
    """Kill the run and anything it started (it leads its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.join()


def _failure(spec: dict[str, Any], reason: str, wall: float) -> dict[str, Any]:
    """The record of a run whose worker left none (``reason`` is ``"status: message"``)."""
    status, message = reason.split(": ", 1)
    return failure_record(spec, status, message, wall)


def run_suite(
    suite: Suite,
    results_dir: Path,
    *,
    device: str | None = None,
    only: str | None = None,
    force: bool = False,
    quiet: bool = False,
) -> Counter:
    """Execute the suite's runs; return the count of each status (``skipped`` and ``cached``
    included).  Records go to ``results_dir/<suite>/runs.jsonl`` as each run ends; a progress
    bar shows the current run, finished/total and an ETA unless ``quiet``."""
    resolve_device(device or suite.device)  # a device that is not there: refused up front
    path = results_dir / suite.name / RUNS_FILE
    done = {} if force else completed_ok(path)
    counts: Counter = Counter()
    runs = plan(suite, device, only)
    todo = [r for r in runs if not r.skip and done.get(r.run_id) != r.config_hash]
    counts["skipped"] = sum(1 for r in runs if r.skip)
    counts["cached"] = len(runs) - len(todo) - counts["skipped"]
    bar = tqdm(todo, disable=quiet, unit="run", dynamic_ncols=True, file=sys.stderr)
    for run in bar:
        bar.set_description(run.run_id)
        spec = {"suite": suite.name, "run_id": run.run_id, "task": run.task,
                "config": run.config, "config_hash": run.config_hash, "id_keys": run.id_keys,
                "measure": suite.measure.__dict__, "device": device or suite.device}
        start = time.perf_counter()
        outcome = _subprocess(spec, suite.measure.time_limit_s)
        if isinstance(outcome, str):
            outcome = _failure(spec, outcome, time.perf_counter() - start)
        append_record(path, outcome)
        counts[outcome["status"]] += 1
        bar.set_postfix({k: v for k, v in counts.items() if v and k not in ("skipped", "cached")})
    return +counts

"""Run a suite: expand it, skip what is already recorded ``ok``, execute each run in a fresh
subprocess with a time limit, append its record at once, and keep going whatever happens."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..results import RUNS_FILE, append_record, completed_ok
from .config import Suite
from .execute import base_record
from .grid import RunSpec, expand

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
    """Run one spec in a fresh process; its record, or why there is none."""
    with tempfile.TemporaryDirectory(prefix="fdebench-") as tmp:
        spec_path, out_path = Path(tmp, "spec.json"), Path(tmp, "record.json")
        spec_path.write_text(json.dumps(spec))
        cmd = [sys.executable, "-m", "fdebench.runner.worker", str(spec_path), str(out_path)]
        # freed tensors go back to the system, so RSS tracks live memory (see measure.memory)
        env = {"MALLOC_MMAP_THRESHOLD_": "65536", **os.environ}
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                text=True, start_new_session=True, env=env)
        try:
            _, stderr = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return f"timeout: exceeded the time limit of {limit:g} s"
        if out_path.exists():
            return json.loads(out_path.read_text())
        if proc.returncode == -signal.SIGKILL:
            return "oom: killed by SIGKILL (out of memory?)"
        tail = (stderr or "").strip().splitlines()[-1:] or ["no output"]
        return f"error: worker exited with code {proc.returncode}: {tail[0]}"


def _failure(spec: dict[str, Any], reason: str, wall: float) -> dict[str, Any]:
    """The record of a run whose worker left none (``reason`` is ``"status: message"``)."""
    return {**base_record(spec, *reason.split(": ", 1)), "wall_s": wall}


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
                "config": run.config, "config_hash": run.config_hash,
                "measure": suite.measure.__dict__, "device": device or suite.device}
        start = time.perf_counter()
        outcome = _subprocess(spec, suite.measure.time_limit_s)
        if isinstance(outcome, str):
            outcome = _failure(spec, outcome, time.perf_counter() - start)
        append_record(path, outcome)
        counts[outcome["status"]] += 1
        bar.set_postfix({k: v for k, v in counts.items() if v and k not in ("skipped", "cached")})
    return +counts

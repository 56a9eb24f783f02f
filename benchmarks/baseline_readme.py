"""Print the README of a regression-gate baseline: ``python -m benchmarks.baseline_readme FILE``.

``.ci/gate --refresh`` writes it next to the baseline, from the JSON file's own machine and commit
information, so the README always says where and when the committed numbers were measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TEMPLATE = """\
# Regression-gate baselines

`{name}` is the CPU baseline of the regression gate: `.ci/gate` (which `.ci/run` runs after
the tests) compares a fresh run of `benchmarks/bench_gate.py` and `benchmarks/bench_tasks.py`
with it through `fdebench compare`, with the thresholds `FAIL_ON` of `benchmarks/common/gate.py`.

- measured: {date} (UTC), commit {commit}{dirty}
- machine: {cpu}, {cores} logical cores, {system}; Python {python}, torch {torch},
  one torch thread
- command: `bash .ci/gate --refresh` (that is, `FDEBENCH_BENCH_THREADS=1 FDEBENCH_BENCH_DEVICE=cpu
  python -m pytest benchmarks/bench_gate.py benchmarks/bench_tasks.py --benchmark-only
  --benchmark-json {name}`), {count} benchmarks

Memory (`peak_mem_bytes`, torch allocator bytes) is gated against these numbers absolutely; time
only through the same-process ratios in `extra_info`; absolute seconds are here for reference.
The allocator counts depend on the torch version, not on the machine's load: refresh the
baseline (and commit it with this README) when torch, the gate's cases or the engine's memory
use change on purpose, or when CI moves to a different kind of machine.
"""


def render(path: Path) -> str:
    data = json.loads(path.read_text())
    machine, commit = data.get("machine_info", {}), data.get("commit_info", {})
    cpu = machine.get("cpu", {})
    return TEMPLATE.format(
        name=path.name, date=data.get("datetime", "?")[:19].replace("T", " "),
        commit=str(commit.get("id", "?"))[:12], dirty=" (with uncommitted changes)"
        if commit.get("dirty") else "", cpu=cpu.get("brand_raw", "?"),
        cores=cpu.get("count", "?"), system=f"{machine.get('system', '?')} "
        f"{machine.get('release', '')}".strip(), python=machine.get("python_version", "?"),
        torch=machine.get("torch_version", "?"), count=len(data.get("benchmarks", [])),
    )


if __name__ == "__main__":
    print(render(Path(sys.argv[1])), end="")

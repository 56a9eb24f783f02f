"""Peak extra memory of one forward+backward pass, measured in a fresh process.

Run from the repository root::

    python -m benchmarks.memory_probe --field mlp --method euler --gradient adjoint \\
        --steps 200 --alpha 0.5 [--device cpu] [--solver fdebench] [--outputs both]

It prints one JSON object on stdout.  The process builds the field, runs one warm-up pass at
2 steps (so torch, its kernels and the allocator are initialised), collects garbage, records a
baseline and runs one pass at ``--steps`` steps; ``peak_extra_bytes`` maps each output mode
(``all``: every grid time is returned, as the benchmarks do; ``final``: only ``t = 1``, see
:mod:`benchmarks.workload`) to the peak minus the baseline.  The modes are measured one after the
other in the same process, each from its own baseline.

How the peak is measured:

* CUDA: ``torch.cuda.max_memory_allocated()`` after ``reset_peak_memory_stats()``, minus
  ``memory_allocated()`` just before the pass (exact, allocator-level).
* CPU on Linux: the kernel's resident-set high-water mark ``VmHWM`` of ``/proc/self/status``,
  reset to the current RSS by writing ``5`` to ``/proc/self/clear_refs`` just before the pass.
  It is exact (every page fault updates it) and resettable, so neither of the alternatives'
  problems arises: ``ru_maxrss`` is a process-lifetime peak (the warm-up or an earlier mode could
  have set it), and sampling RSS from a thread every millisecond misses short peaks and competes
  for the GIL and the 2 cores.  Where ``clear_refs`` cannot be written the probe falls back to
  sampling with psutil every 1 ms, combined with ``ru_maxrss`` when that rose during the pass.
  ``peak_extra_bytes`` is ``peak RSS - baseline RSS`` (psutil, after ``gc.collect()``).

RSS only sees memory that the C allocator takes from and gives back to the kernel, so
:func:`probe` starts the process with ``MALLOC_MMAP_THRESHOLD_=65536`` (glibc): every
allocation of 64 KiB or more is its own mapping and is unmapped when freed.  RSS then tracks the
live tensors instead of glibc's heap, which keeps freed memory around and reuses it.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import torch

from fdebench.engine import GRADIENTS, METHODS

from .fields import FIELDS, set_threads
from .workload import OUTPUTS, SOLVERS, Workload, make_workload

__all__ = ["REPO_ROOT", "main", "measure", "probe"]

REPO_ROOT = Path(__file__).resolve().parent.parent
WARMUP_STEPS = 2
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "131072"}


def probe(
    field: str,
    method: str,
    gradient: str,
    steps: int,
    alpha: float,
    device: str | torch.device = "cpu",
    *,
    solver: str = "fdebench",
    outputs: str = "both",
    threads: int | None = None,
    timeout: float = 3600.0,
) -> dict[str, Any]:
    """Run ``python -m benchmarks.memory_probe`` in a fresh process and return its JSON report.

    ``threads`` defaults to :func:`benchmarks.fields.bench_threads` (the benchmarks' setting).
    Raises ``RuntimeError`` with the child's stderr if it fails.
    """
    cmd = [
        sys.executable, "-m", "benchmarks.memory_probe",
        "--field", field, "--method", method, "--gradient", gradient,
        "--steps", str(steps), "--alpha", repr(float(alpha)), "--device", str(device),
        "--solver", solver, "--outputs", outputs,
    ]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    env = {**os.environ, **MALLOC_ENV}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
    )
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"memory probe failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-4000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(work: Workload, device: torch.device) -> tuple[int, str]:
    """Peak bytes above the current baseline during ``work.run()``, and how they were measured.

    Call it in a process where a warm-up pass has already run (see the module docstring).
    """
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        work.run()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base, "cuda max_memory_allocated"
    me = psutil.Process()
    base = me.memory_info().rss
    if _reset_high_water_mark():
        work.run()
        return max(0, _status_kib("VmHWM") * 1024 - base), "VmHWM (reset via clear_refs)"
    return max(0, _sampled_peak(work, me) - base), "psutil sampling 1 ms + ru_maxrss"


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as fh:
        match = re.search(rf"^{key}:\s+(\d+) kB", fh.read(), re.MULTILINE)
    if match is None:
        raise OSError(f"no {key} in /proc/self/status")
    return int(match.group(1))


def _reset_high_water_mark() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); ``False`` where that is impossible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        _status_kib("VmHWM")
    except OSError:
        return False
    return True


def _sampled_peak(work: Workload, me: psutil.Process) -> int:
    """Fallback: the max of RSS sampled every 1 ms and of ``ru_maxrss`` if the pass raised it."""
    peak, done = me.memory_info().rss, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, me.memory_info().rss)
            time.sleep(0.001)

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        work.run()
    finally:
        done.set()
        sampler.join()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if after > before:  # the pass set a new lifetime peak: ru_maxrss (KiB on Linux) is exact
        peak = max(peak, after * (1 if sys.platform == "darwin" else 1024))
    return peak


def run_probe(args: argparse.Namespace) -> dict[str, Any]:
    """Measure what ``args`` asks for in this process (the body of the CLI)."""
    threads = set_threads(args.threads)
    device = torch.device(args.device)
    modes = OUTPUTS if args.outputs == "both" else (args.outputs,)
    common = dict(solver=args.solver)
    peaks: dict[str, int] = {}
    how = ""
    for mode in modes:
        warm = make_workload(
            args.field, args.method, args.gradient, WARMUP_STEPS, args.alpha, device,
            outputs=mode, **common,
        )
        warm.run()
        del warm
    for mode in modes:
        work = make_workload(
            args.field, args.method, args.gradient, args.steps, args.alpha, device,
            outputs=mode, **common,
        )
        work.zero_grad()  # allocates the parameter gradients: baseline, not solver memory
        peaks[mode], how = measure(work, device)
        state_bytes = work.state_bytes
        del work
    return {
        "field": args.field, "method": args.method, "gradient": args.gradient,
        "n_steps": args.steps, "alpha": args.alpha, "device": str(device),
        "solver": args.solver, "threads": threads, "state_bytes": state_bytes,
        "peak_extra_bytes": peaks, "measured_by": how,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--field", choices=FIELDS, required=True)
    parser.add_argument("--method", choices=sorted(METHODS), required=True)
    parser.add_argument("--gradient", choices=sorted(GRADIENTS), required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--alpha", type=float, required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--solver", choices=SOLVERS, default="fdebench")
    parser.add_argument("--outputs", choices=(*OUTPUTS, "both"), default="both")
    parser.add_argument("--threads", type=int, default=None, help="default: all cores")
    return parser


def main(argv: list[str] | None = None) -> None:
    """CLI entry point: print the report of :func:`run_probe` as one line of JSON."""
    print(json.dumps(run_probe(_parser().parse_args(argv))))


if __name__ == "__main__":
    main()

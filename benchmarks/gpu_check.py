"""The GPU check's measurements and report (``benchmarks/gpu_check.sh`` runs it on a GPU).

Writes ``reports/gpu-check/README.md``: the device, the CUDA tests' summary line, the small
CUDA suite's runs (status, allocator peak, NVML peak, time per iteration), and the engine's
conv-field case (state 32 x 64 x 7 x 7, N = 400, alpha = 0.5): direct against adjoint (time per
pass, allocator peak) and the fast history against the stepwise one (same-process time ratio)::

    python -m benchmarks.gpu_check --tests-log LOG --results results/gpu-check --out README.md

``--device cpu --steps 8`` runs the same code on the CPU (the project's tests do, to keep this
script working on machines that have no GPU).
"""

from __future__ import annotations

import argparse
import datetime
import re
from pathlib import Path
from typing import Any

import torch

from fdebench.measure import now

from .common.gate import peak_bytes, time_ratio
from .common.workload import make_workload

MIB = 2**20


def engine_case(device: torch.device, steps: int, rounds: int = 3) -> list[dict[str, Any]]:
    """Direct and adjoint on the conv field: median time per pass and allocator peak; and the
    fast history's time over the stepwise one's (direct)."""
    rows = []
    for gradient in ("direct", "adjoint"):
        work = make_workload("conv", "euler", gradient, steps, 0.5, device, outputs="final")
        work.run()
        work.zero_grad()
        times = []
        for _ in range(rounds):
            start = now(device)
            work.run()
            times.append(now(device) - start)
        rows.append({"case": f"conv, euler, {gradient}, N = {steps}",
                     "time_s": sorted(times)[len(times) // 2],
                     "peak_mib": peak_bytes(work.run, device) / MIB})
        del work
    fast = make_workload("conv", "euler", "direct", steps, 0.5, device, outputs="final",
                         history="fast")
    slow = make_workload("conv", "euler", "direct", steps, 0.5, device, outputs="final",
                         history="stepwise")
    ratio = time_ratio(fast.run, slow.run, rounds=rounds, device=device)
    rows.append({"case": f"conv, euler, direct, N = {steps}: history fast / stepwise time",
                 "ratio": ratio})
    return rows


def _suite_rows(results: Path) -> list[str]:
    from fdebench.results import load

    runs = load(results)
    lines = ["| run | status | peak mem (MiB) | GPU used, NVML (MiB) | time/iter (ms) |",
             "|---|---|---:|---:|---:|"]
    for _, r in runs.iterrows():
        mem, gpu, time_s = (r.get(k) for k in ("peak_mem_bytes", "nvml_peak_used_bytes",
                                               "time_per_iter_s"))
        lines.append(f"| `{r['run_id']}` | {r['status']} | {_fmt(mem, 1 / MIB)} | "
                     f"{_fmt(gpu, 1 / MIB)} | {_fmt(time_s, 1e3)} |")
    return lines


def _fmt(value: Any, scale: float) -> str:
    """``value * scale`` with one decimal; empty when missing."""
    return "" if value is None or value != value else f"{value * scale:.1f}"


def write_report(out: Path, device: torch.device, tests_log: Path | None, results: Path | None,
                 engine: list[dict[str, Any]], ray_results: Path | None = None) -> Path:
    """``out`` (a README.md) naming the device and holding every measurement."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    lines = ["# GPU check", "",
             f"Device: **{name}**, torch {torch.__version__}, "
             f"{datetime.date.today().isoformat()}; written by `benchmarks/gpu_check.sh`.", ""]
    if tests_log is not None and tests_log.exists():
        found = re.findall(r"^=*\s*(\d+ passed.*?)\s*=*$", tests_log.read_text(), re.MULTILINE)
        lines += ["## CUDA tests (`pytest -m cuda`)", "",
                  f"`{found[-1] if found else 'no summary line: see the log'}`", ""]
    if results is not None and results.exists():
        lines += ["## The `gpu-check` suite on CUDA", "", *_suite_rows(results), ""]
    if ray_results is not None and ray_results.exists():
        lines += ["## Its `synthetic` runs on CUDA with `--executor ray` (a private Ray "
                  "instance, one GPU per run)", "", *_suite_rows(ray_results), ""]
    lines += ["## Engine: conv field, alpha = 0.5", "", "| case | time per pass (s) | "
              "allocator peak (MiB) | ratio |", "|---|---:|---:|---:|"]
    for row in engine:
        time_s = f"{row['time_s']:.3f}" if "time_s" in row else ""
        peak = f"{row['peak_mib']:.1f}" if "peak_mib" in row else ""
        ratio = f"{row['ratio']:.2f}" if "ratio" in row else ""
        lines.append(f"| {row['case']} | {time_s} | {peak} | {ratio} |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--tests-log", type=Path)
    parser.add_argument("--results", type=Path)
    parser.add_argument("--ray-results", type=Path)
    parser.add_argument("--out", type=Path, default=Path("reports/gpu-check/README.md"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    print(write_report(args.out, device, args.tests_log, args.results,
                       engine_case(device, args.steps), args.ray_results))


if __name__ == "__main__":
    main()

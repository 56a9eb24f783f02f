"""benchmarks/gpu_check.py runs on any device: its report names the device and holds every
measurement (the script itself needs a GPU; this keeps its code working without one)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import torch

from benchmarks import gpu_check

ROOT = Path(__file__).resolve().parents[1]


def test_report_on_the_cpu(tmp_path):
    log = tmp_path / "tests.log"
    log.write_text("....\n===== 52 passed in 3.1s =====\n")
    out = gpu_check.write_report(tmp_path / "README.md", torch.device("cpu"), log, None,
                                 gpu_check.engine_case(torch.device("cpu"), steps=4, rounds=1))
    text = out.read_text()
    assert "Device: **CPU**" in text and "52 passed in 3.1s" in text
    rows = [line for line in text.splitlines() if line.startswith("| conv")]
    assert len(rows) == 3 and "history fast / stepwise" in rows[2]


def test_the_script_refuses_without_cuda():
    if torch.cuda.is_available():
        return
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "no CUDA device" in done.stderr


def test_report_shows_the_ray_runs_when_given(tmp_path):
    from fdebench.results import append_record

    folder = tmp_path / "ray-results" / "gpu-check"
    append_record(folder, {"run_id": "synthetic[gradient=adjoint]", "suite": "gpu-check",
                           "task": "synthetic", "status": "ok", "peak_mem_bytes": 3 * 2**20,
                           "time_per_iter_s": 0.012, "executor": "ray"})
    out = gpu_check.write_report(tmp_path / "README.md", torch.device("cpu"), None, None, [],
                                 ray_results=folder)
    text = out.read_text()
    assert "--executor ray" in text
    assert "| `synthetic[gradient=adjoint]` | ok | 3.0 |  | 12.0 |" in text

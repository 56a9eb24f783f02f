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

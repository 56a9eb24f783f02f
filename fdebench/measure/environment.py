"""The environment fingerprint stored with every run record."""

from __future__ import annotations

import platform
import socket
import subprocess
from pathlib import Path

import torch

__all__ = ["fingerprint"]


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _version() -> str:
    from .. import __version__

    return __version__


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fingerprint(device: torch.device) -> dict[str, object]:
    """fdebench version, git commit, torch and python versions, device, CPU and threads."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    return {
        "fdebench_version": _version(),
        "git_commit": _git_commit(),
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "device_name": name,
        "cpu": _cpu_name(),
        "threads": torch.get_num_threads(),
        "hostname": socket.gethostname(),
    }

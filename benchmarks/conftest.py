"""Collect ``benchmarks/bench_*.py`` when pytest is pointed at this folder.

The project's ``testpaths`` is ``tests``, so a plain ``pytest`` never enters ``benchmarks/`` and
never loads this file: the benchmarks run only on request, e.g. ``pytest benchmarks/
--benchmark-only`` from the repository root.  The torch thread count is set once per session
(see :func:`benchmarks.common.fields.set_threads`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .common.fields import bench_device, set_threads

HERE = Path(__file__).resolve().parent


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Collect ``bench_*.py`` in this folder (explicit paths are collected by pytest itself)."""
    if (
        file_path.suffix == ".py"
        and file_path.name.startswith("bench_")
        and file_path.parent == HERE
        and not parent.session.isinitpath(file_path)
    ):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


def pytest_configure(config: pytest.Config) -> None:
    """Fix torch's intra-op thread count for the whole session."""
    set_threads()


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Add torch's version and thread count to the machine info saved with the results."""
    import torch

    machine_info["torch_version"] = torch.__version__
    machine_info["torch_threads"] = torch.get_num_threads()


def pytest_report_header(config: pytest.Config) -> str:
    """Show the benchmark device and thread count in pytest's header."""
    import torch

    return f"fdebench benchmarks: device={bench_device()}, torch threads={torch.get_num_threads()}"

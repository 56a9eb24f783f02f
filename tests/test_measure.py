"""The measurement recipes: timing statistics and peak memory above a baseline."""

from __future__ import annotations

import pytest
import torch

from fdebench.measure import PeakMemory, fingerprint, median_iqr

MIB = 2**20


def test_median_and_interquartile_range():
    assert median_iqr([]) == (None, None)
    assert median_iqr([2.0]) == (2.0, 0.0)
    median, iqr = median_iqr([1.0, 2.0, 3.0, 4.0, 100.0])
    assert median == 3.0 and iqr == pytest.approx(2.0)


@pytest.mark.parametrize("mib", [40, 120])
def test_cpu_peak_sees_a_transient_allocation(mib):
    with PeakMemory(torch.device("cpu")) as memory:
        block = torch.ones(mib * MIB // 4)  # touched pages: resident
        del block
    peak = memory.result["peak_mem_bytes"]
    assert mib * MIB * 0.95 <= peak <= mib * MIB + 40 * MIB


def test_cpu_baseline_excludes_memory_held_before_the_window():
    held = torch.ones(100 * MIB // 4)
    with PeakMemory(torch.device("cpu")) as memory:
        small = torch.ones(10 * MIB // 4)
        del small
    assert memory.result["peak_mem_bytes"] < 60 * MIB
    del held


def test_fingerprint_names_the_environment():
    env = fingerprint(torch.device("cpu"))
    assert env["torch_version"] == torch.__version__
    assert env["threads"] == torch.get_num_threads()
    assert env["fdebench_version"] and env["cpu"]

"""The measurement recipes: timing statistics and peak memory above a baseline."""

from __future__ import annotations

import pytest
import torch

from fdebench.measure import AllocatorPeak, PeakMemory, fingerprint, median_iqr

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


def test_allocator_peak_counts_tensor_bytes_exactly_on_the_cpu():
    held = torch.ones(1000)  # allocated before the window: not counted
    peaks = []
    for _ in range(2):
        with AllocatorPeak(torch.device("cpu")) as memory:
            a = torch.ones(1000)     # 4000 bytes
            b = torch.ones(2000)     # +8000: the peak, 12000
            del a
            c = torch.ones(500)      # 10000 live
            del b, c
        peaks.append(memory.peak_bytes)
    assert peaks == [12000, 12000]
    del held


def test_fingerprint_names_the_environment():
    env = fingerprint(torch.device("cpu"))
    assert env["torch_version"] == torch.__version__
    assert env["threads"] == torch.get_num_threads()
    assert env["fdebench_version"] and env["cpu"]

"""The measurement recipes: timing statistics, allocator peaks, process peaks, NVML lookup."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from conftest import cuda_only
from torch.profiler import ProfilerActivity, profile

from fdebench.measure import AllocatorPeak, fingerprint, median_iqr
from fdebench.measure.memory import cpu_memory_events, nvml_uuid, pci_bus_id
from fdebench.runner.worker import MALLOC_ENV

MIB = 2**20


def test_median_and_interquartile_range():
    assert median_iqr([]) == (None, None)
    assert median_iqr([2.0]) == (2.0, 0.0)
    median, iqr = median_iqr([1.0, 2.0, 3.0, 4.0, 100.0])
    assert median == 3.0 and iqr == pytest.approx(2.0)


def test_cpu_memory_events_still_read_torch_internals():
    """The one function that reads torch's private profiler results: if torch moves or renames
    them, this fails here, by name, rather than every memory figure silently becoming 0."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        block = torch.empty(12345, dtype=torch.uint8)
        del block
    events = cpu_memory_events(prof)
    sizes = [n for _, n in events]
    assert 12345 in sizes and -12345 in sizes, events
    assert sizes.index(12345) < sizes.index(-12345)  # time order


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


def test_allocator_peak_on_the_cpu_counts_what_the_window_allocates():
    """The profiler knows the sizes of blocks allocated while it runs only: freeing a tensor
    allocated before the window does not lower the CPU count (CUDA's counters would), which is
    why the runner releases the gradients before it opens the window."""
    held = torch.ones(1000)
    with AllocatorPeak(torch.device("cpu")) as memory:
        del held                     # freed, but of unknown size to the profiler
        a = torch.ones(1500)         # +6000
        del a
    assert memory.peak_bytes == 6000


PROCESS_PEAK = """
import torch
from fdebench.measure import ProcessPeak
with ProcessPeak(torch.device("cpu")) as small:
    pass
with ProcessPeak(torch.device("cpu")) as memory:
    block = torch.ones({mib} * 2**20 // 4)  # touched pages: resident
    del block
print(small.result["peak_rss_bytes"], memory.result["peak_rss_bytes"])
"""


@pytest.mark.parametrize("mib", [40, 120])
def test_process_peak_sees_a_transient_allocation(mib):
    """In a fresh process with the runner's malloc setting (large blocks are mapped and
    unmapped, so RSS follows the tensors): a long-lived process may serve the block from
    memory it already holds, which is exactly why this figure is not ``peak_mem_bytes``."""
    env = {**os.environ, **MALLOC_ENV}
    out = subprocess.run([sys.executable, "-c", PROCESS_PEAK.format(mib=mib)], env=env,
                         capture_output=True, text=True, check=True).stdout
    base, peak = map(int, out.split())
    assert base > 0  # an absolute figure: the process's resident set, never 0
    assert base + mib * MIB * 0.95 <= peak <= base + mib * MIB + 40 * MIB


def test_nvml_lookup_keys_name_the_gpu_not_its_index():
    props = SimpleNamespace(uuid="58b4b4d4-1f2e-3a4b-8c9d-0123456789ab", pci_domain_id=0,
                            pci_bus_id=0x3B, pci_device_id=0)
    assert nvml_uuid(props) == "GPU-58b4b4d4-1f2e-3a4b-8c9d-0123456789ab"
    assert nvml_uuid(SimpleNamespace(uuid="GPU-1")) == "GPU-1"
    assert pci_bus_id(props) == "00000000:3B:00.0"
    assert nvml_uuid(SimpleNamespace()) is None and pci_bus_id(SimpleNamespace()) is None


@cuda_only
def test_nvml_reads_the_gpu_torch_uses():
    import pynvml

    from fdebench.measure.memory import nvml_handle

    device = torch.device("cuda")
    handle = nvml_handle(device)
    assert handle is not None
    torch_uuid = nvml_uuid(torch.cuda.get_device_properties(device))
    nvml_id = pynvml.nvmlDeviceGetUUID(handle)
    assert (nvml_id.decode() if isinstance(nvml_id, bytes) else nvml_id) == torch_uuid


@cuda_only
def test_allocator_peak_means_the_same_on_cuda_and_cpu():
    def work(device):
        a = torch.ones(1000, device=device)
        b = torch.ones(2000, device=device)
        del a, b

    peaks = {}
    for name in ("cpu", "cuda"):
        with AllocatorPeak(torch.device(name)) as memory:
            work(torch.device(name))
        peaks[name] = memory.peak_bytes
    # the CUDA caching allocator rounds each block up to 512 bytes
    assert peaks["cpu"] == 12000 and 12000 <= peaks["cuda"] <= 12000 + 2 * 512


def test_fingerprint_names_the_environment():
    env = fingerprint(torch.device("cpu"))
    assert env["torch_version"] == torch.__version__
    assert env["threads"] == torch.get_num_threads()
    assert env["fdebench_version"] and env["cpu"]


def test_the_one_relative_error():
    from fdebench.measure import relative_error

    reference = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert relative_error(torch.tensor([3.0, 4.5]), reference) == pytest.approx(0.1)
    assert relative_error(torch.zeros(2), torch.zeros(2)) == 0.0
    # a difference from a zero reference is never small (it used to read 0 in one copy and the
    # absolute difference in the other)
    assert relative_error(torch.tensor([1e-3, 0.0]), torch.zeros(2)) == float("inf")

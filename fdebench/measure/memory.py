"""The one memory recipe: peak above a baseline over a measured window.

* CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation at the window's start (peak
  stats reset there), ``max_memory_reserved`` likewise, and the device's used memory sampled
  with NVML (``pynvml``, from the ``nvidia-ml-py`` package) in a thread.
* CPU: the peak resident set size minus the RSS at the window's start.  The peak is the kernel's
  high-water mark ``VmHWM``, reset at the window's start by writing 5 to
  ``/proc/self/clear_refs`` (exact, and no thread competing for the cores); where that is not
  possible, RSS sampled every millisecond with ``psutil``.  Run each measurement in a fresh
  process with ``MALLOC_MMAP_THRESHOLD_`` low (the harness does) so that freed tensors go back
  to the system and earlier work does not hide in the baseline.

:class:`AllocatorPeak` is a second, narrower measure for regression gates: the peak of the bytes
held by torch's allocator above the window's start.  RSS depends on the C allocator's history
(a freed heap chunk is reused without new pages), so two identical passes in one process can
differ by megabytes; the allocator count is reproducible to the byte, on the CPU too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import psutil
import torch

__all__ = ["AllocatorPeak", "PeakMemory"]


class _Sampler(threading.Thread):
    """Calls ``read()`` every ``interval`` seconds and keeps the maximum."""

    def __init__(self, read: Callable[[], int], interval: float = 1e-3) -> None:
        super().__init__(daemon=True)
        self.read, self.interval = read, interval
        self.peak = read()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.peak = max(self.peak, self.read())

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, self.read())
        return self.peak


def _reset_high_water_mark() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _high_water_mark() is not None


def _high_water_mark() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _nvml_reader(device: torch.device) -> Callable[[], int] | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        index = device.index if device.index is not None else torch.cuda.current_device()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:  # no driver library, or not an NVIDIA device: not measured
        return None
    return lambda: int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)


class PeakMemory:
    """Context manager measuring peak memory above the baseline at entry.

    After exit, :attr:`result` holds ``peak_mem_bytes`` and, on CUDA, ``peak_reserved_bytes``
    and ``nvml_peak_used_bytes`` (``None`` when NVML is unavailable).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.result: dict[str, int | None] = {}

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._allocated = torch.cuda.memory_allocated(self.device)
            self._reserved = torch.cuda.memory_reserved(self.device)
            read = _nvml_reader(self.device)
            self._sampler = _Sampler(read) if read else None
        else:
            process = psutil.Process()
            self._cpu_baseline = process.memory_info().rss
            hwm = _reset_high_water_mark()
            self._sampler = None if hwm else _Sampler(lambda: process.memory_info().rss)
        self._baseline = self._sampler.peak if self._sampler else 0
        if self._sampler:
            self._sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        peak = self._sampler.stop() if self._sampler else None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.result = {
                "peak_mem_bytes": torch.cuda.max_memory_allocated(self.device) - self._allocated,
                "peak_reserved_bytes": torch.cuda.max_memory_reserved(self.device)
                - self._reserved,
                "nvml_peak_used_bytes": None if peak is None else peak - self._baseline,
            }
        else:
            peak = _high_water_mark() if peak is None else peak
            self.result = {"peak_mem_bytes": max(peak - self._cpu_baseline, 0)}


class AllocatorPeak:
    """Context manager: peak bytes allocated by torch on ``device`` above the window's start.

    CUDA: ``max_memory_allocated`` minus ``memory_allocated`` at entry (as :class:`PeakMemory`).
    CPU: torch has no allocation counters, so the window runs under ``torch.profiler`` with
    ``profile_memory=True`` and the peak is the running sum of the allocation events (signed
    ``nbytes``, in time order).  Deterministic, but it counts tensors only (not Python objects or
    library workspaces) and profiling slows the window down: never time inside it.
    After exit, :attr:`peak_bytes` holds the result.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_bytes = 0

    def __enter__(self) -> AllocatorPeak:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._allocated = torch.cuda.memory_allocated(self.device)
        else:
            from torch.profiler import ProfilerActivity, profile

            self._profile = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
            self._profile.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._allocated
            return
        self._profile.__exit__(*exc)
        # kineto_results holds every event, memory ones included (``name() == "[memory]"``,
        # ``nbytes()`` negative for a free); the public per-op tables only keep per-op sums.
        events = sorted(
            (e for e in self._profile.profiler.kineto_results.events()
             if e.name() == "[memory]" and e.device_type() == torch.autograd.DeviceType.CPU),
            key=lambda e: e.start_ns(),
        )
        live = peak = 0
        for event in events:
            live += event.nbytes()
            peak = max(peak, live)
        self.peak_bytes = peak

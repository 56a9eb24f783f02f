"""The one memory recipe: peaks above a baseline over a measured window.

Two measures, with one meaning each on every device:

* :class:`AllocatorPeak` -- the peak of the tensor bytes torch holds above the window's start
  (``peak_mem_bytes`` of a record).  CUDA: ``torch.cuda.max_memory_allocated`` minus
  ``memory_allocated`` at the start (peak stats reset there).  CPU: torch keeps no allocation
  counters, so the window runs under ``torch.profiler`` with ``profile_memory=True`` and the peak
  is the running sum of the allocation events (signed sizes, in time order), read by
  :func:`cpu_memory_events`.  The profiler knows the size of blocks allocated inside the window
  only, so freeing a tensor allocated before it does not lower the CPU count (it does on CUDA):
  release what an iteration frees first (the gradients) before the window opens, as the runner
  does, and both devices count the same bytes.  The same work gives the same number every time,
  to the byte, and the ratio of two modes means the same on both devices.  It counts tensors
  only (not Python objects or library workspaces), and on the CPU the profiler slows the window
  down: never time inside it (the runner measures it in an untimed iteration of its own).
* :class:`ProcessPeak` -- what the process took from the system during the window: on the CPU the
  peak resident set size (``peak_rss_bytes``; the kernel's high-water mark ``VmHWM``, reset at the
  window's start by writing 5 to ``/proc/self/clear_refs``, else RSS sampled every millisecond
  with psutil); on CUDA the peak of torch's reserved (cached) memory (``peak_reserved_bytes``)
  and the used memory of the GPU read with NVML (``nvml_peak_used_bytes``; ``pynvml`` from the
  ``nvidia-ml-py`` package, sampled in a thread, the GPU found by its UUID or PCI bus id, so
  ``CUDA_VISIBLE_DEVICES`` renumbering cannot point it at another GPU).  These are absolute
  process or device figures (libraries and the CUDA context included), never a difference, so
  they are never a measured 0.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import torch

__all__ = ["AllocatorPeak", "ProcessPeak", "cpu_memory_events", "nvml_handle"]


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


# ---- allocator bytes ------------------------------------------------------------------------
def cpu_memory_events(profile: Any) -> list[tuple[int, int]]:
    """``(time_ns, signed bytes)`` of every CPU allocation (positive) and free (negative) that
    ``profile`` (a finished ``torch.profiler.profile(profile_memory=True)``) recorded, in time
    order.

    The only place that relies on torch internals: the public per-op tables keep per-op sums
    only, so this reads ``profile.profiler.kineto_results.events()`` (memory events are named
    ``"[memory]"``).  ``tests/test_measure.py`` checks it on a known allocation and fails loudly
    when torch changes it.
    """
    events = profile.profiler.kineto_results.events()
    cpu = torch.autograd.DeviceType.CPU
    memory = [(e.start_ns(), e.nbytes()) for e in events
              if e.name() == "[memory]" and e.device_type() == cpu]
    return sorted(memory)


class AllocatorPeak:
    """Context manager: peak tensor bytes torch holds on ``device`` above the window's start.

    After exit, :attr:`peak_bytes` holds the result (see the module docstring).
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

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device) - self._allocated
            return
        self._profile.__exit__(*exc)
        live = peak = 0
        for _, nbytes in cpu_memory_events(self._profile):
            live += nbytes
            peak = max(peak, live)
        self.peak_bytes = peak


# ---- process and device figures ---------------------------------------------------------------
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


def nvml_handle(device: torch.device) -> Any:
    """The NVML handle of the GPU that torch calls ``device``, found by the GPU's UUID (else its
    PCI bus id), never by index: ``CUDA_VISIBLE_DEVICES`` renumbers torch's devices but not
    NVML's.  ``None`` when NVML is unavailable (no driver library, not an NVIDIA GPU)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no driver library, or not an NVIDIA device: not measured
        return None
    props = torch.cuda.get_device_properties(device)
    for lookup, key in ((pynvml.nvmlDeviceGetHandleByUUID, nvml_uuid(props)),
                        (pynvml.nvmlDeviceGetHandleByPciBusId, pci_bus_id(props))):
        if key is None:
            continue
        try:
            return lookup(key)
        except Exception:  # not found this way: try the next
            continue
    return None


def nvml_uuid(props: Any) -> str | None:
    """NVML's name of a GPU's UUID, ``"GPU-<uuid>"``, from torch's device properties."""
    uuid = getattr(props, "uuid", None)
    if uuid is None:
        return None
    text = str(uuid)
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def pci_bus_id(props: Any) -> str | None:
    """``"DDDDDDDD:BB:DD.0"``, NVML's PCI bus id form, from torch's device properties."""
    try:
        return f"{props.pci_domain_id:08X}:{props.pci_bus_id:02X}:{props.pci_device_id:02X}.0"
    except AttributeError:
        return None


class ProcessPeak:
    """Context manager: the process's (CPU) or the GPU's (CUDA) peak memory over the window.

    After exit, :attr:`result` holds ``peak_rss_bytes`` (CPU), or ``peak_reserved_bytes`` and
    ``nvml_peak_used_bytes`` (CUDA; ``None`` when NVML is unavailable).
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.result: dict[str, int | None] = {}
        self._sampler: _Sampler | None = None

    def __enter__(self) -> ProcessPeak:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            handle = nvml_handle(self.device)
            if handle is not None:
                import pynvml

                self._sampler = _Sampler(
                    lambda: int(pynvml.nvmlDeviceGetMemoryInfo(handle).used))
        elif not _reset_high_water_mark():
            process = psutil.Process()
            self._sampler = _Sampler(lambda: process.memory_info().rss)
        if self._sampler:
            self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        peak = self._sampler.stop() if self._sampler else None
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.result = {"peak_reserved_bytes": torch.cuda.max_memory_reserved(self.device),
                           "nvml_peak_used_bytes": peak}
        else:
            self.result = {"peak_rss_bytes": _high_water_mark() if peak is None else peak}

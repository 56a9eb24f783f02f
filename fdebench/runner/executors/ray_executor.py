"""The ``ray`` executor: one Ray task per run, on a Ray cluster.

Each run is a Ray task that holds the suite's ``resources`` (``num_cpus``, ``num_gpus``; Ray
sets the task's ``CUDA_VISIBLE_DEVICES``, so two runs never share a GPU) and is never retried.
The task does not run the benchmark in its Ray worker: it starts the run in a fresh process
exactly as the local executor does (:func:`fdebench.runner.worker.run_in_process`) and hands
back its record.  So on Ray too

- peak memory is the run's own: a Ray worker carries Ray's threads, buffers and the objects of
  earlier tasks (it is reused), which a fresh process does not;
- the time limit counts from the run's start, not from its submission (which may wait in Ray's
  queue), and is enforced by the same code;
- a crash of the run (``os._exit``, a segfault, the kernel's OOM kill) is recorded by its task
  as it would be locally; what the task cannot report, its Ray worker or node lost, reaches the
  driver as a Ray error and is recorded ``error`` (``oom`` when Ray's memory monitor killed it)
  with a message saying what was lost.  A lost Ray worker takes its run down with it (see
  :mod:`fdebench.runner.worker`).

The task is a generator: it first yields the node it landed on, then the record, so the driver
knows when each run starts and where (``node``, ``concurrent_runs``).  Without ``--address``
the executor starts a private Ray instance for the suite and stops it at the end.
"""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from ...errors import InputError
from ...results import ERROR, OOM
from ..description import RunDescription
from ..execute import failure_record
from ..suite_file import Resources
from ..worker import run_in_process
from .base import Event, Finished, Started, with_threads

__all__ = ["PRIVATE_RAY_ENV", "RayExecutor"]

#: defaults for a Ray instance that fdebench starts for itself (no ``--address``): it serves
#: this machine only, so it listens on loopback (Ray's single-machine mode, its default on macOS)
#: and sends no usage statistics.  Ray reads the first when it is imported: set before that.
PRIVATE_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
MISSING = '--executor ray needs Ray, an optional extra: pip install "fdebench[ray]"'
#: seconds to wait for a TCP connection to ``--address`` before calling it unreachable
CONNECT_TIMEOUT_S = 5.0


def _import_ray(private: bool) -> Any:
    if private:
        for key, value in PRIVATE_RAY_ENV.items():
            os.environ.setdefault(key, value)
    try:
        import ray
    except ImportError:
        raise InputError(MISSING) from None
    return ray


def _check_address(address: str) -> None:
    """``auto``, or a ``HOST:PORT`` that accepts TCP connections (ray.init would retry for a
    long while before failing)."""
    if address == "auto":
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--address must be auto or HOST:PORT (a Ray head node), got "
                         f"{address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise InputError(f"cannot reach a Ray cluster at {address}: "
                         f"{exc.strerror or exc}") from None


def _ray_run(run: RunDescription, limit: float,
             environ: dict[str, str]) -> Iterator[tuple[str, Any]]:
    """The Ray task of one run: where it landed, then its record (run in a process of its
    own with this task's environment, ``CUDA_VISIBLE_DEVICES`` included, plus ``environ``)."""
    yield "started", platform.node()
    yield "finished", run_in_process(run, limit, {**os.environ, **environ})


class RayExecutor:
    """Runs as Ray tasks: on the cluster at ``address`` (``auto`` or ``HOST:PORT``), else on a
    private Ray instance of this machine; ``jobs`` at a time (default: as many as the cluster
    holds at once)."""

    name = "ray"

    def __init__(self, *, jobs: int | None, address: str | None, resources: Resources,
                 device: str) -> None:
        self._ray = _import_ray(private=address is None)
        if address is not None:
            _check_address(address)
        self._address, self._resources, self._requested = address, resources, device
        self.jobs, self.device = jobs or 0, device
        self._in_flight: dict[Any, list[Any]] = {}  # generator -> [index, run, start, node]

    def __enter__(self) -> RayExecutor:
        self._connect()
        try:
            self._plan()
        except BaseException:
            self._ray.shutdown()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        """Cancel what is still queued or running (Ctrl-C), then leave the cluster (or stop
        the private instance)."""
        for generator in self._in_flight:
            with contextlib.suppress(Exception):
                self._ray.cancel(generator, force=True)
        self._in_flight.clear()
        self._ray.shutdown()

    def _connect(self) -> None:
        options = {"log_to_driver": False, "logging_level": "warning"}
        if self._address is None:
            self._ray.init(address="local", include_dashboard=False, **options)
            return
        try:
            self._ray.init(address=self._address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            line = next((s for s in str(exc).splitlines() if s.strip()), type(exc).__name__)
            raise InputError(f"cannot connect to a Ray cluster at {self._address}: "
                             f"{line}") from None

    def _plan(self) -> None:
        """The device (``auto``: CUDA when the cluster has GPUs) and, unless given, the
        number of runs at once: as many as the cluster's CPUs and GPUs hold."""
        total = self._ray.cluster_resources()
        cpus, gpus = total.get("CPU", 0), total.get("GPU", 0)
        if self._requested == "cuda" and not gpus:
            raise InputError("device 'cuda' requested but the Ray cluster has no GPU; use "
                             "--device cpu")
        self.device = ("cuda" if gpus else "cpu") if self._requested == "auto" else self._requested
        need = {"CPU": self._resources.cpus, "GPU": self._resources.gpus_on(self.device)}
        capacity = min(int(total.get(key, 0) // n) for key, n in need.items() if n)
        if capacity < 1:
            raise InputError(
                f"each run needs {need['CPU']} CPU(s) and {need['GPU']} GPU(s) (the suite's "
                f"`resources`), but the Ray cluster has {cpus:g} CPU(s) and {gpus:g} GPU(s)")
        self.jobs = self.jobs or capacity

    def _submit(self, remote: Any, index: int, run: RunDescription, limit: float) -> None:
        environ = {k: v for k, v in os.environ.items() if k.startswith("FDEBENCH_")}
        run = with_threads(run, self._resources.cpus)
        self._in_flight[remote.remote(run, limit, environ)] = [index, run, None, None]

    def _next(self, generator: Any) -> Event | None:
        """The event of ``generator``'s next item (``None`` when it has none)."""
        index, run, started, _ = entry = self._in_flight[generator]
        try:
            kind, value = self._ray.get(next(generator))
        except StopIteration:
            del self._in_flight[generator]
            return None
        except self._ray.exceptions.RayError as exc:
            del self._in_flight[generator]
            wall = time.monotonic() - started if started else None
            return Finished(index, failure_record(run, *_lost(exc), wall))
        if kind == "started":
            entry[2:] = [time.monotonic(), value]
            return Started(index, value)
        del self._in_flight[generator]
        return Finished(index, value)

    def run(self, runs: list[RunDescription], limit: float) -> Iterator[Event]:
        remote = self._ray.remote(_ray_run).options(
            num_cpus=self._resources.cpus, num_gpus=self._resources.gpus_on(self.device),
            num_returns="streaming", max_retries=0)
        pending = deque(enumerate(runs))
        while pending or self._in_flight:
            while pending and len(self._in_flight) < self.jobs:
                self._submit(remote, *pending.popleft(), limit)
            ready, _ = self._ray.wait(list(self._in_flight), num_returns=1)
            for generator in ready:
                event = self._next(generator)
                if event is not None:
                    yield event


def _lost(exc: Exception) -> tuple[str, str]:
    """``(status, message)`` of a run whose Ray task could not report."""
    import ray.exceptions as errors

    first = next((s.strip() for s in str(exc).splitlines() if s.strip()), "")
    if isinstance(exc, errors.RayTaskError):  # the task itself failed (e.g. no fdebench there)
        last = next((s.strip() for s in reversed(str(exc).splitlines()) if s.strip()), first)
        return ERROR, f"its Ray task failed: {last}"[:500]
    what = {errors.OutOfMemoryError: "killed by Ray's memory monitor",
            errors.NodeDiedError: "lost: the Ray node running it died",
            errors.WorkerCrashedError: "lost: the Ray worker running it died"}
    reason = next((v for k, v in what.items() if isinstance(exc, k)), "lost in Ray")
    status = OOM if isinstance(exc, errors.OutOfMemoryError) else ERROR
    return status, f"{reason} ({type(exc).__name__}: {first})"[:500]

"""One run in a process of its own.

A process per run makes peak memory a per-run figure and keeps a crash, an out-of-memory kill or
a leak from taking the suite down.  The runs are forked from a ``forkserver`` that imported
torch and the runner once (about 5 s saved per run, see :data:`PRELOAD`; the server has run no
torch operation, so the fork is clean), see :func:`start_run`; :class:`RunProcess` watches one of
them against its time limit and turns however it ended into a record.  ``python -m
fdebench.runner.worker SPEC.json OUT.json`` runs one in a fresh interpreter instead (SPEC.json:
:meth:`~fdebench.runner.description.RunDescription.to_json`).  Either way the record is written
to OUT.json atomically.

A run dies with whatever started it: it asks the kernel for SIGKILL when the fork server exits,
and the fork server exits as soon as the process that started it is gone (the driver, or the
Ray worker of the ``ray`` executor), so a driver killed with ``kill -9`` or a lost Ray worker
leaves no run behind holding a GPU (Linux; elsewhere such a run finishes unrecorded).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import sys
import tempfile
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from ..results import ERROR, OOM, TIMEOUT
from .description import RunDescription
from .execute import failure_record

__all__ = ["RunProcess", "main", "run_in_process", "start_run"]

#: freed tensors go back to the system, so RSS tracks live memory (see measure.memory); glibc
#: reads it when a process starts, so it must be in the fork server's environment
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}
PR_SET_PDEATHSIG = 1  # linux/prctl.h

#: what the fork server imports before forking: torch, torch._dynamo (which the first
#: optimizer of every run imports otherwise: 2.5-3 s a run on this project's 2-core VM) and
#: the runner (0.7 s).  They only import: the server's thread count stays the same, so the fork
#: stays clean.  Modules whose import starts a thread (torch_geometric, torchdiffeq's scipy) are
#: imported lazily, after the fork, by the runs that use them
PRELOAD = ["torch", "torch._dynamo", "fdebench.runner.execute"]


def main(argv: list[str]) -> int:
    from ..tasks import load_plugins
    from .execute import execute

    spec_path, out_path = map(Path, argv)
    load_plugins()  # the environment may name plugin modules the fork server never saw
    record = execute(RunDescription.from_json(json.loads(spec_path.read_text())))
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, default=str))
    os.replace(tmp, out_path)
    return 0


def _die_with_parent() -> None:
    """SIGKILL this process when its parent, the fork server, exits (Linux only)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it exited before the request took effect
        os._exit(1)


def _forked(spec_path: str, out_path: str, err_path: str, environ: dict[str, str]) -> None:
    """The forked run: tied to the fork server's life, its own session (the parent kills the
    group on timeout), the given environment, output to ``err_path``."""
    _die_with_parent()
    os.setsid()
    os.environ.clear()
    os.environ.update(environ)
    err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.dup2(err, 2)
    sys.exit(main([spec_path, out_path]))


def start_run(spec_path: Path, out_path: Path, err_path: Path,
              environ: dict[str, str]) -> BaseProcess:
    """Start one run with the environment ``environ``, forked from the torch-preloaded fork
    server (started on first use)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    saved = dict(os.environ)
    os.environ.update({**MALLOC_ENV, **saved})
    try:
        process = context.Process(target=_forked, daemon=True, args=(
            str(spec_path), str(out_path), str(err_path), environ))
        process.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return process


class RunProcess:
    """One ``run`` in a process of its own, started at once, with ``limit`` seconds.

    Wait on :attr:`sentinel` until :attr:`deadline`, then take :meth:`record`; :meth:`kill`
    takes the run down (Ctrl-C)."""

    def __init__(self, run: RunDescription, limit: float, environ: dict[str, str]) -> None:
        self.run, self.limit = run, limit
        self._folder = tempfile.TemporaryDirectory(prefix="fdebench-")
        folder = Path(self._folder.name)
        self._out, self._err = folder / "record.json", folder / "stderr.txt"
        (folder / "spec.json").write_text(json.dumps(run.to_json()))
        self.started = time.monotonic()
        self.deadline = self.started + limit
        self.process = start_run(folder / "spec.json", self._out, self._err, environ)
        self.sentinel = self.process.sentinel

    def record(self) -> dict[str, Any]:
        """The run's record: its own, or why there is none (killed first if still running,
        i.e. past its time limit)."""
        if self.process.is_alive():
            self.kill()
            return self._failure(TIMEOUT, f"exceeded the time limit of {self.limit:g} s")
        try:
            if self._out.exists():
                return json.loads(self._out.read_text())
            if self.process.exitcode == -signal.SIGKILL:
                return self._failure(OOM, "killed by SIGKILL (out of memory?)")
            stderr = self._err.read_text(errors="replace") if self._err.exists() else ""
            tail = stderr.strip().splitlines()[-1:] or ["no output"]
            return self._failure(ERROR, f"worker exited with code {self.process.exitcode}: "
                                 f"{tail[0]}")
        finally:
            self._folder.cleanup()

    def _failure(self, status: str, message: str) -> dict[str, Any]:
        return failure_record(self.run, status, message, time.monotonic() - self.started)

    def kill(self) -> None:
        """Kill the run and anything it started (it leads its own process group)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.join()
        self._folder.cleanup()


def run_in_process(run: RunDescription, limit: float,
                   environ: dict[str, str]) -> dict[str, Any]:
    """Execute ``run`` in a process of its own within ``limit`` seconds; its record."""
    process = RunProcess(run, limit, environ)
    try:
        process.process.join(limit)
    except BaseException:  # Ctrl-C: take the run down with its caller
        process.kill()
        raise
    return process.record()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

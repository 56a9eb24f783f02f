"""One run in a process of its own.

A process per run makes peak memory a per-run figure and keeps a crash, an out-of-memory kill or
a leak from taking the suite down.  The runs are forked from a ``forkserver`` that imported
torch and the runner once (about 5 s saved per run, see :data:`PRELOAD`; the server has run no
torch operation, so the fork is clean), see :func:`start_run`.
``python -m fdebench.runner.worker SPEC.json OUT.json`` runs one spec in a fresh interpreter
instead.  Either way the record is written to OUT.json
atomically.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys
from multiprocessing.process import BaseProcess
from pathlib import Path

__all__ = ["main", "start_run"]

#: freed tensors go back to the system, so RSS tracks live memory (see measure.memory); glibc
#: reads it when a process starts, so it must be in the fork server's environment
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}

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
    record = execute(json.loads(spec_path.read_text()))
    tmp = out_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, default=str))
    os.replace(tmp, out_path)
    return 0


def _forked(spec_path: str, out_path: str, err_path: str, environ: dict[str, str]) -> None:
    """The forked run: its own session (the parent kills the group on timeout), the caller's
    current environment, output to ``err_path``."""
    os.setsid()
    os.environ.clear()
    os.environ.update(environ)
    err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    os.dup2(err, 2)
    sys.exit(main([spec_path, out_path]))


def start_run(spec_path: Path, out_path: Path, err_path: Path) -> BaseProcess:
    """Start one run forked from the torch-preloaded fork server (started on first use)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    saved = dict(os.environ)
    os.environ.update({**MALLOC_ENV, **saved})
    try:
        process = context.Process(target=_forked, daemon=True, args=(
            str(spec_path), str(out_path), str(err_path), saved))
        process.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

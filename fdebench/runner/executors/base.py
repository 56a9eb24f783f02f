"""What every executor shares: the events it yields and the shape it has."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ..description import RunDescription

__all__ = ["Event", "Executor", "Finished", "Started", "with_threads"]


@dataclass(frozen=True)
class Started:
    """Run ``index`` (its position in the runs given to ``run``) began on ``node``."""

    index: int
    node: str


@dataclass(frozen=True)
class Finished:
    """Run ``index`` ended with ``record`` (its ``status`` says how)."""

    index: int
    record: dict[str, Any]


Event = Started | Finished


class Executor(Protocol):
    """Built with ``(jobs=, address=, resources=, device=)``, which it checks at once; entered,
    it holds what it runs on (``device``: ``cpu`` or ``cuda``; ``jobs``: runs at a time);
    ``run`` yields the events of ``runs``; leaving it stops whatever still runs."""

    name: str
    device: str
    jobs: int

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...

    def run(self, runs: list[RunDescription], limit: float) -> Iterator[Event]: ...


def with_threads(run: RunDescription, threads: int | None) -> RunDescription:
    """``run`` on ``threads`` torch threads (a new description), unless the suite fixed them
    (``measure.threads``) or ``threads`` is ``None`` (torch's default)."""
    if threads is None or run.measure.threads:
        return run
    return replace(run, measure=replace(run.measure, threads=threads))

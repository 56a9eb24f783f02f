"""What every executor shares: the events it yields and the shape it has."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Event", "Executor", "Finished", "Started", "with_threads"]


@dataclass(frozen=True)
class Started:
    """Run ``index`` (its position in the specs given to ``run``) began on ``node``."""

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
    ``run`` yields the events of ``specs``; leaving it stops whatever still runs."""

    name: str
    device: str
    jobs: int

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...

    def run(self, specs: list[dict[str, Any]], limit: float) -> Iterator[Event]: ...


def with_threads(spec: dict[str, Any], threads: int | None) -> dict[str, Any]:
    """``spec`` running on ``threads`` torch threads, unless the suite fixed them
    (``measure.threads``) or ``threads`` is ``None`` (torch's default)."""
    if threads is None or spec["measure"].get("threads"):
        return spec
    return {**spec, "measure": {**spec["measure"], "threads": threads}}

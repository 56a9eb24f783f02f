"""What a worker is told about one run: a typed :class:`RunDescription`, not a dict of strings.

The driver builds one per run (:mod:`.suite`), an executor may hand it on with fewer torch
threads (:func:`.executors.with_threads`), and :func:`.execute.execute` reads its attributes.
Between processes it travels as JSON (:meth:`RunDescription.to_json`, the worker's spec file;
:meth:`RunDescription.from_json` refuses an unknown or missing key).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .suite_file import Measure

__all__ = ["RunDescription"]


@dataclass(frozen=True)
class RunDescription:
    """One run of a suite, as a worker executes it."""

    suite: str
    run_id: str
    task: str
    #: the resolved configuration (engine keys, task parameters, ``seed``, ``n_steps``)
    config: dict[str, Any]
    config_hash: str
    #: the configuration keys the run id names
    id_keys: tuple[str, ...] = ()
    #: the suite's measurement recipe (``threads`` possibly set by the executor)
    measure: Measure = field(default_factory=Measure)
    #: ``cpu``, ``cuda`` or ``auto``
    device: str = "cpu"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (``measure`` as a dict)."""
        return {**asdict(self), "id_keys": list(self.id_keys)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunDescription:
        """The description :meth:`to_json` gave; an unknown key (here or in ``measure``)
        raises :class:`TypeError` naming it, so does a missing one."""
        return cls(**{**data, "measure": Measure(**data.get("measure", {})),
                      "id_keys": tuple(data.get("id_keys", ()))})

"""The one schema of a run record: what the runner writes and the report reads.

A record is stored as one flat JSON object (``runs.jsonl``): the fixed fields of
:class:`RunRecord` side by side with the run's configuration (``config``: the engine keys and
the task's parameters) and its quality metrics (``metrics``), so that a pandas table has one
column per key.  ``config_keys`` and ``id_keys`` say which of the flat keys are configuration,
and ``metric_names`` which are metrics, so a reader never has to parse a run id or guess.
Adding a field is one edit here.

The contract is enforced, not hoped for:

* a record takes its declared fields only: :class:`RunRecord` has slots, and
  :meth:`RunRecord.update` (how the runner fills it) raises :class:`AttributeError` naming an
  unknown field, so a misspelt measurement fails its run instead of vanishing;
* a configuration key or metric name that is also a record field (or a metric named like a
  configuration key) would overwrite it in the flat object: the suite loader refuses such a task
  up front (fdebench.runner.suite_file), and :meth:`RunRecord.to_json` raises on one;
* a run's ``status`` is one of :data:`STATUSES`; writers and readers use the constants.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "ERROR", "MEASUREMENT_FIELDS", "NAN", "OK", "OOM", "RECORD_FIELDS", "STATUSES", "TIMEOUT",
    "RunRecord", "amend", "collisions",
]

# ---- how a run ended: the values of ``status`` ---------------------------------------------
OK = "ok"
#: out of memory (torch's or Python's ``MemoryError``, or killed by SIGKILL or Ray's monitor)
OOM = "oom"
#: a non-finite loss or gradient
NAN = "nan"
#: past the suite's ``measure.time_limit_s``
TIMEOUT = "timeout"
#: anything else (the message and traceback say what)
ERROR = "error"
#: every status, in the order reports list them
STATUSES: tuple[str, ...] = (OK, OOM, NAN, TIMEOUT, ERROR)


@dataclass(slots=True)
class RunRecord:
    """One run of a suite: its identity, how it went, and what was measured.

    Slots: assigning a field it does not declare raises :class:`AttributeError`."""

    # ---- identity -------------------------------------------------------------------------
    suite: str
    run_id: str
    config_hash: str
    task: str
    #: the resolved configuration (engine keys, task parameters, ``seed``, ``n_steps``)
    config: dict[str, Any]
    #: the configuration keys the run id names (those that vary between the task's runs)
    id_keys: list[str] = field(default_factory=list)
    device: str = "cpu"

    # ---- outcome --------------------------------------------------------------------------
    #: one of :data:`STATUSES`
    status: str = OK
    message: str = ""
    traceback: str | None = None
    started_at: str | None = None
    wall_s: float | None = None

    # ---- how it ran -----------------------------------------------------------------------
    #: the executor that ran it (``local`` or ``ray``, see fdebench.runner.executors)
    executor: str | None = None
    #: the host name of the machine it ran on (``None``: lost before it said)
    node: str | None = None
    #: the most runs of this suite that ran on that node at once while it ran, itself included
    #: (1: alone); times measured at different concurrency on one node are not comparable
    concurrent_runs: int | None = None

    # ---- time: medians over the timed iterations (after warm-up) -----------------------
    time_per_iter_s: float | None = None
    time_per_iter_iqr_s: float | None = None
    time_forward_s: float | None = None
    time_backward_s: float | None = None
    setup_time_s: float | None = None
    data_time_s: float | None = None

    # ---- memory (see fdebench.measure.memory) ------------------------------------------
    #: tensor bytes held by torch above the start of one training iteration, peak (CPU and
    #: CUDA alike; measured in an untimed iteration of its own)
    peak_mem_bytes: int | None = None
    #: the process's peak resident set during the timed iterations (CPU)
    peak_rss_bytes: int | None = None
    #: torch's reserved (cached) CUDA memory, peak during the timed iterations
    peak_reserved_bytes: int | None = None
    #: used memory of the GPU the run used (NVML), peak during the timed iterations
    nvml_peak_used_bytes: int | None = None
    #: the bytes of the FDE state ``|y|`` of one training solve (elements x element size, summed
    #: over the model's FDE blocks): the trajectory floor ``(N + 1) |y|`` is what a gradient that
    #: stores the solution at every step keeps (the report draws it beside ``peak_mem_bytes``)
    state_bytes: int | None = None

    # ---- the training run ---------------------------------------------------------------
    #: field evaluations of the last timed iteration's forward and backward passes (counted
    #: whichever engine calls the field: an adaptive solver's vary with training)
    nfe_forward: int | None = None
    nfe_backward: int | None = None
    #: their means over every training iteration of the run
    nfe_forward_mean: float | None = None
    nfe_backward_mean: float | None = None
    timed_iters: int | None = None
    iterations: int | None = None
    stopped_early: bool | None = None
    train_curve: list[float] = field(default_factory=list)
    data: str | None = None

    # ---- quality ------------------------------------------------------------------------
    metric_names: list[str] = field(default_factory=list)
    #: each metric's direction as its task declares it: ``higher`` or ``lower`` is better, or
    #: ``None`` (a count, no quality); readers never guess it from a metric's name
    metric_directions: dict[str, str | None] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    #: the true values of learned quantities where the task knows them, e.g. ``{"alpha": 0.75}``
    #: (the order of simulated data)
    true_values: dict[str, float] = field(default_factory=dict)
    #: the trained order of the model's FDE block with ``learn_alpha`` (``None`` otherwise)
    alpha_learned: float | None = None
    #: this mode's parameter gradient against the reference's (``None`` for the reference
    #: itself), and which reference (``grad_reference``): ``direct`` of the same engine and step,
    #: or, for an fdebench run whose probe is too large for direct's graph, the exact
    #: ``adjoint`` (equal to direct to rounding); both with the exact history (``auto``), so a
    #: run with ``history: soe`` reads its distance from the exact scheme (see
    #: fdebench.runner.fidelity)
    grad_rel_err: float | None = None
    grad_cosine: float | None = None
    grad_reference: str | None = None
    #: this mode's parameter gradient against a float64 fdebench ``direct`` one at a step
    #: ``grad_fine_factor`` times finer with the method ``grad_fine_method`` (every mode, direct
    #: included; see fdebench.runner.fidelity), what that reference was, and why it is missing
    #: when it is (``None`` when measured); factor and method are ``None`` for a run without
    #: that reference (cost-only)
    grad_rel_err_fine: float | None = None
    grad_fine_reference: str | None = None
    grad_fine_factor: int | None = None
    grad_fine_method: str | None = None
    grad_fine_skipped: str | None = None

    env: dict[str, Any] = field(default_factory=dict)

    @property
    def config_keys(self) -> list[str]:
        return list(self.config)

    def __post_init__(self) -> None:
        _check(self.run_id, self.config, self.metrics)

    def update(self, values: Mapping[str, Any]) -> None:
        """Set ``values`` (field name -> value), checked before anything is set: an unknown
        name raises :class:`AttributeError` naming it, a ``config`` or ``metrics`` whose names
        collide (see :func:`collisions`) :class:`ValueError`."""
        unknown = sorted(set(values) - set(_FIELDS))
        if unknown:
            raise AttributeError(f"not a run record field: {', '.join(map(repr, unknown))} "
                                 "(the fields are fdebench.results.RunRecord's)")
        _check(self.run_id, values.get("config", self.config), values.get("metrics", self.metrics))
        for name, value in values.items():
            setattr(self, name, value)

    def to_json(self) -> dict[str, Any]:
        """The flat JSON object stored for this record; raises :class:`ValueError` when a
        configuration key or metric name would overwrite a record field or each other (see
        :func:`collisions`)."""
        _check(self.run_id, self.config, self.metrics)
        out = asdict(self)
        config, metrics = out.pop("config"), out.pop("metrics")
        return {**config, **out, "config_keys": list(config), **metrics}


_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RunRecord))


#: every fixed field name of a stored record (the configuration and metrics come on top)
RECORD_FIELDS: tuple[str, ...] = (
    *(f.name for f in fields(RunRecord) if f.name not in ("config", "metrics")), "config_keys",
)
#: the fields that are measurements or bookkeeping, never configuration
MEASUREMENT_FIELDS: frozenset[str] = frozenset(RECORD_FIELDS) - {"task", "device"}


def collisions(config: Iterable[str], metrics: Iterable[str]) -> list[str]:
    """What would be overwritten in the flat record of a run with these configuration keys
    (engine keys and task parameters, "parameters" in the messages) and metric names: one
    problem per key that is a record field, and per metric that is a record field or a
    configuration key (empty when none)."""
    config, fixed = set(config), set(RECORD_FIELDS)
    problems = [f"parameter {k!r} collides with a record field" for k in sorted(config & fixed)]
    for name in sorted(set(metrics)):
        if name in fixed:
            problems.append(f"metric {name!r} collides with a record field")
        elif name in config:
            problems.append(f"metric {name!r} collides with the parameter {name!r}")
    return problems


def _check(run_id: str, config: Iterable[str], metrics: Iterable[str]) -> None:
    """Raise :class:`ValueError` listing the :func:`collisions` of a run's names, if any."""
    if problems := collisions(config, metrics):
        raise ValueError(f"run {run_id}: {'; '.join(problems)}")


def amend(record: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A stored ``record`` with some of its fixed fields set (the driver adds how a run ran:
    ``executor``, ``node``, ``concurrent_runs``); an unknown name raises
    :class:`AttributeError`."""
    unknown = sorted(set(fields) - set(RECORD_FIELDS))
    if unknown:
        raise AttributeError(f"not a run record field: {', '.join(map(repr, unknown))}")
    return {**record, **fields}

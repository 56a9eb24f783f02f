"""The one schema of a run record: what the runner writes and the report reads.

A record is stored as one flat JSON object (``runs.jsonl``): the fixed fields of
:class:`RunRecord` side by side with the run's configuration (``config``: the engine keys and
the task's parameters) and its quality metrics (``metrics``), so that a pandas table has one
column per key.  ``config_keys`` and ``id_keys`` say which of the flat keys are configuration,
and ``metric_names`` which are metrics, so a reader never has to parse a run id or guess.
Adding a field is one edit here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["MEASUREMENT_FIELDS", "RECORD_FIELDS", "RunRecord"]


@dataclass
class RunRecord:
    """One run of a suite: its identity, how it went, and what was measured."""

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
    #: ``ok``, ``oom``, ``nan`` (non-finite loss or gradient), ``timeout`` or ``error``
    status: str = "ok"
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
    #: this mode's parameter gradient against a float64 fdebench ``direct`` one at an 8 times
    #: finer step (every mode, direct included; see fdebench.runner.fidelity), what that
    #: reference was, and why it is missing when it is (``None`` when measured)
    grad_rel_err_fine: float | None = None
    grad_fine_reference: str | None = None
    grad_fine_skipped: str | None = None

    env: dict[str, Any] = field(default_factory=dict)

    @property
    def config_keys(self) -> list[str]:
        return list(self.config)

    def to_json(self) -> dict[str, Any]:
        """The flat JSON object stored for this record."""
        out = asdict(self)
        config, metrics = out.pop("config"), out.pop("metrics")
        return {**config, **out, "config_keys": list(config), **metrics}


#: every fixed field name of a stored record (the configuration and metrics come on top)
RECORD_FIELDS: tuple[str, ...] = (
    *(f.name for f in fields(RunRecord) if f.name not in ("config", "metrics")), "config_keys",
)
#: the fields that are measurements or bookkeeping, never configuration
MEASUREMENT_FIELDS: frozenset[str] = frozenset(RECORD_FIELDS) - {"task", "device"}

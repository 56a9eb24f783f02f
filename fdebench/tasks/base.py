"""What a task is: data, a model with one or more FDE blocks, a loss; the runner trains it.

A task class declares its name, its parameters with defaults (the suite loader validates keys
and types against them), the quality metrics it reports, and implements :meth:`Task.setup`,
:meth:`Task.loss`, :meth:`Task.probe_loss` and :meth:`Task.evaluate` (and may override
:meth:`Task.after_iteration`, e.g. for early stopping).  The runner owns the training loop, timing,
memory and gradient fidelity, so every task is measured the same way.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from .backends import ENGINES

__all__ = ["ENGINE_DEFAULTS", "HIGHER", "LOWER", "FDEBlock", "NonFinite", "Step", "Task"]

#: a metric's direction (:attr:`Task.metrics`): ``HIGHER`` is better (a fraction in [0, 1],
#: such as an accuracy), ``LOWER`` is better (an error or a loss); ``None``: no quality (a count)
HIGHER, LOWER = "higher", "lower"

#: engine settings every task accepts, with their defaults.  ``rtol`` / ``atol`` control the
#: adaptive methods of the ``torchdiffeq`` engine only (``dopri5``, ...): 1e-6 / 1e-8 keep
#: their error well below the fixed-step methods' at the step sizes of the shipped suites, and
#: rtol stays ten times above float32's rounding (1.2e-7), which the step control cannot beat
ENGINE_DEFAULTS: dict[str, Any] = {
    "alpha": 0.5,
    "method": "euler",
    "step_size": 0.05,
    "t_end": 1.0,
    "gradient": "direct",
    "engine": "fdebench",
    "rtol": 1e-6,
    "atol": 1e-8,
    "learn_alpha": False,
    # how the fractional schemes sum their history (fdebench engine; see fdebench.engine.fdeint):
    # auto / fast / stepwise (the same sums), or soe, the compressed scheme (an approximation
    # within soe_tol, the relative error of its sum of exponentials), which gradient revolve needs
    # below alpha = 1
    "history": "auto",
    "soe_tol": 1e-8,
    # measure the cost only (no training to convergence, no evaluation): see
    # fdebench.runner.execute; a suite sets it for all its runs with measure.cost_only
    "cost_only": False,
}
#: the keys of :data:`ENGINE_DEFAULTS` that :class:`FDEBlock` takes
BLOCK_KEYS = ("alpha", "method", "step_size", "gradient", "engine", "rtol", "atol", "learn_alpha",
              "history", "soe_tol")


class NonFinite(RuntimeError):
    """A non-finite loss or gradient (the runner records the run with status ``nan``)."""


@dataclass(frozen=True)
class Step:
    """What one training iteration did: its loss, times (seconds) and field evaluations."""

    loss: float
    forward_s: float
    backward_s: float
    total_s: float
    nfe_forward: int
    nfe_backward: int


class FDEBlock(nn.Module):
    """``y0 -> ys`` at ``t_eval`` with a run's engine settings (``engine``: a key of
    :data:`~fdebench.tasks.backends.ENGINES`, ``fdebench`` by default); counts the field's
    evaluations (``nfe``, forward and backward passes alike, whichever engine calls them), the
    solves' work (``work``: state elements times solver steps of ``step_size``, summed) and the
    bytes of the last solve's state (``state_bytes``: ``|y|``, the trajectory floor's unit: a
    gradient that stores the solution keeps ``(N + 1) |y|``).

    With ``learn_alpha`` the order is a trained parameter: ``alpha = sigmoid(alpha_logit)``,
    which keeps it in (0, 1) whatever the optimiser does, started at ``alpha`` (which must then
    be below 1); the engine differentiates the solve with respect to it (exactly, in the modes
    that can: ``direct``, ``adjoint``, ``checkpoint``; see :func:`fdebench.engine.fdeint`).

    The solve differentiates with respect to ``y0`` and the field's parameters, or, when the
    field defines ``solve_params()``, with respect to exactly the tensors that returns: a field
    that uses tensors computed outside the solve from parameters (e.g. attention weights
    computed once per forward from the block's input, see
    :class:`~fdebench.tasks.node_classification.AttentionField`) lists them there, and autograd
    carries their cotangents on to the parameters they were computed from, in every gradient
    mode.

    The settings are plain attributes so that the gradient probe can switch them on a copy.
    """

    def __init__(self, field: nn.Module, t_eval: torch.Tensor, *, alpha: float, method: str,
                 step_size: float, gradient: str, engine: str = "fdebench",
                 rtol: float = ENGINE_DEFAULTS["rtol"],
                 atol: float = ENGINE_DEFAULTS["atol"], learn_alpha: bool = False,
                 history: str = ENGINE_DEFAULTS["history"],
                 soe_tol: float = ENGINE_DEFAULTS["soe_tol"]) -> None:
        super().__init__()
        self.field = field
        self.register_buffer("t_eval", t_eval, persistent=False)
        self.alpha, self.method, self.step_size, self.gradient = alpha, method, step_size, gradient
        self.engine, self.rtol, self.atol = engine, rtol, atol
        self.history, self.soe_tol = history, soe_tol
        self.nfe, self.work, self.state_bytes = 0, 0, 0
        self.alpha_logit: nn.Parameter | None = None
        if learn_alpha:
            if not 0 < alpha < 1:
                raise ValueError(f"a learnable order starts inside (0, 1) (alpha = "
                                 f"sigmoid(logit)), got alpha={alpha}")
            self.alpha_logit = nn.Parameter(torch.tensor(math.log(alpha / (1 - alpha))))

    @property
    def order(self) -> float | torch.Tensor:
        """The order the solve uses: ``alpha``, or ``sigmoid(alpha_logit)`` when learnt."""
        return self.alpha if self.alpha_logit is None else torch.sigmoid(self.alpha_logit)

    def _counted(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.field(t, y)

    def forward(self, y0: torch.Tensor, t_eval: torch.Tensor | None = None) -> torch.Tensor:
        t = self.t_eval if t_eval is None else t_eval
        span = float(t[-1] - t[0])  # the engines read t on the host anyway
        self.work += y0.numel() * math.ceil(span / self.step_size - 1e-5)  # float32 times
        self.state_bytes = y0.numel() * y0.element_size()
        return ENGINES[self.engine].solve(
            self._counted, y0, t, alpha=self.order, method=self.method,
            step_size=self.step_size, gradient=self.gradient, rtol=self.rtol, atol=self.atol,
            params=self.solve_params(), history=self.history, soe_tol=self.soe_tol,
        )

    def solve_params(self) -> list[torch.Tensor]:
        """The tensors the solve differentiates besides ``y0``: the field's ``solve_params()``
        when it defines one, else its parameters."""
        own = getattr(self.field, "solve_params", None)
        return list(own() if callable(own) else self.field.parameters())


class Task:
    """Base class of the benchmark tasks (one module per task, registered in ``TASKS``)."""

    name: ClassVar[str]
    #: task-specific parameters and defaults; a value's type is the type the suite must give
    params: ClassVar[dict[str, Any]] = {}
    #: the valid values of parameters that name a choice (the suite loader rejects others,
    #: listing these)
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: the closed ranges ``(low, high)`` of numeric parameters (the suite loader rejects values
    #: outside them)
    ranges: ClassVar[dict[str, tuple[float, float]]] = {}
    #: the quality metrics :meth:`evaluate` returns, each with its direction (:data:`HIGHER`,
    #: :data:`LOWER`, or ``None`` for a count that is no quality); the first is the headline of
    #: reports.  Recorded as ``metric_names`` and ``metric_directions``: readers (the claims,
    #: the report) take a metric's meaning from there, never from its name
    metrics: ClassVar[dict[str, str | None]] = {}
    #: cast the model to float64 for the gradient probe (fine for small models)
    probe_float64: ClassVar[bool] = True
    #: what the data are, for reports (recorded as ``data``); begins with ``synthetic`` when
    #: the data are generated rather than real
    data: str = ""
    #: seconds :meth:`setup` spent loading data and moving it to the device (``data_time_s``)
    data_time_s: float = 0.0
    #: the FDE solves' work of the last :meth:`gradient_probe` (state elements x steps)
    probe_work: int = 0

    model: nn.Module
    optimizer: torch.optim.Optimizer

    def __init__(self, config: dict[str, Any], device: torch.device) -> None:
        self.config, self.device = config, device
        self.iterations: int = int(config.get("iters", 1))

    @classmethod
    def resolve(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        """The resolved configuration of a run: the engine defaults, the task's defaults,
        ``seed = 0``, then ``overrides``, and the derived ``n_steps``.  The runner, the
        benchmarks and the tests all resolve configurations here."""
        config = {**ENGINE_DEFAULTS, **cls.params, "seed": 0, **overrides}
        config["n_steps"] = cls.n_steps(config)
        return config

    @classmethod
    def n_steps(cls, config: dict[str, Any]) -> int:
        """Solver steps of one training solve (recorded as ``n_steps``): the grid runs to the
        first grid time at or past ``t_end`` (an output time between grid times is
        interpolated, see :func:`fdebench.engine.fdeint`)."""
        return math.ceil(config["t_end"] / config["step_size"] - 1e-9)

    @classmethod
    def skip(cls, config: dict[str, Any]) -> str | None:
        """Why this resolved configuration cannot run (``None``: it can)."""
        return None

    # ---- to implement -------------------------------------------------------------------
    def setup(self) -> None:
        """Seeded data, ``self.model`` (holding the FDE blocks) and ``self.optimizer``."""
        raise NotImplementedError

    def loss(self, model: nn.Module) -> torch.Tensor:
        """The training loss of ``model`` on the next training batch (one iteration)."""
        raise NotImplementedError

    def probe_loss(self, model: nn.Module) -> torch.Tensor:
        """A loss on a fixed batch, in ``model``'s dtype, for the gradient-fidelity probe."""
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        """The quality metrics of the trained ``self.model``."""
        raise NotImplementedError

    def after_iteration(self) -> bool:
        """Called by the runner after each training iteration, outside the timed region (e.g.
        to track validation accuracy).  ``True`` stops training early; the default never does."""
        return False

    # ---- provided -------------------------------------------------------------------------
    def train_step(self, clock: Callable[[], float] = time.perf_counter) -> Step:
        """One training iteration, the only definition of it: zero the gradients, the loss,
        backward, check that loss and gradients are finite (else :class:`NonFinite`), an
        optimizer step.  ``clock`` times the phases (the runner passes one that synchronises
        the device)."""
        self.optimizer.zero_grad(set_to_none=True)
        nfe0, t0 = self.nfe, clock()
        loss = self.loss(self.model)
        nfe1, t1 = self.nfe, clock()
        loss.backward()
        nfe2, t2 = self.nfe, clock()
        value = loss.item()
        if not math.isfinite(value):
            raise NonFinite(f"non-finite loss ({value})")
        if not all(bool(torch.isfinite(p.grad).all()) for p in self.model.parameters()
                   if p.grad is not None):
            raise NonFinite(f"non-finite gradient (loss {value})")
        self.optimizer.step()
        return Step(loss=value, forward_s=t1 - t0, backward_s=t2 - t1, total_s=clock() - t0,
                    nfe_forward=nfe1 - nfe0, nfe_backward=nfe2 - nfe1)

    def fit(self) -> list[Step]:
        """Train for the whole budget (:attr:`iterations`, fewer when :meth:`after_iteration`
        stops early), as the runner does but without measuring."""
        steps = []
        for _ in range(self.iterations):
            steps.append(self.train_step())
            if self.after_iteration():
                break
        return steps

    def true_values(self) -> dict[str, float]:
        """The true values of learned quantities where the task knows them (recorded as
        ``true_values``), e.g. ``{"alpha": 0.75}``: the order of simulated data, against which
        a learned order (``alpha_learned``) is judged.  Default: none."""
        return {}

    def engine_kwargs(self) -> dict[str, Any]:
        """The engine settings of this run, for :class:`FDEBlock`."""
        return {k: self.config[k] for k in BLOCK_KEYS}

    def alpha_learned(self) -> float | None:
        """The learnt order of the model's FDE block (the mean over its blocks if it has
        several); ``None`` when the order is not learnt."""
        orders = [torch.sigmoid(m.alpha_logit.detach()).item() for m in self.model.modules()
                  if isinstance(m, FDEBlock) and m.alpha_logit is not None]
        return sum(orders) / len(orders) if orders else None

    @property
    def nfe(self) -> int:
        """Field evaluations so far, summed over the model's FDE blocks."""
        return sum(m.nfe for m in self.model.modules() if isinstance(m, FDEBlock))

    @property
    def state_bytes(self) -> int:
        """The bytes of the FDE state ``|y|`` of the last solve, summed over the model's FDE
        blocks (recorded as ``state_bytes``: the trajectory floor is ``(N + 1) |y|``)."""
        return sum(m.state_bytes for m in self.model.modules() if isinstance(m, FDEBlock))

    def snapshot(self) -> None:
        """Remember the initial weights (the runner calls this right after :meth:`setup`)."""
        self._initial = copy.deepcopy(self.model).cpu()

    def gradient_probe(self, gradient: str, *, step_size: float | None = None,
                       dtype: torch.dtype | None = None, engine: str | None = None,
                       method: str | None = None, history: str | None = None) -> torch.Tensor:
        """The parameter gradient of :meth:`probe_loss` at the initial weights under
        ``gradient``, flattened; in ``dtype`` (default: float64 when ``probe_float64``, else
        the model's), with the run's engine settings but for the overrides given (``step_size``,
        ``engine``, ``method``, ``history``: e.g. the references of
        :mod:`fdebench.runner.fidelity`).  Sets :attr:`probe_work`, the FDE solves' work of
        this probe (state elements times solver steps, summed over the solves)."""
        model = copy.deepcopy(self._initial)
        dtype = dtype or (torch.float64 if self.probe_float64 else None)
        if dtype is not None:
            model = model.to(dtype)
        model = model.to(self.device)
        overrides = {"gradient": gradient, "step_size": step_size, "engine": engine,
                     "method": method, "history": history}
        blocks = [m for m in model.modules() if isinstance(m, FDEBlock)]
        for block in blocks:
            block.work = 0
            for key, value in overrides.items():
                if value is not None:
                    setattr(block, key, value)
        params = [p for p in model.parameters() if p.requires_grad]
        grads = torch.autograd.grad(self.probe_loss(model), params, allow_unused=True)
        self.probe_work = sum(block.work for block in blocks)
        return torch.cat([
            (torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads,
                                                                                  strict=True)
        ])

"""Gradient modes: the registry, and the step-wise modes that give a scheme one step's VJP.

A scheme (see :mod:`fdebench.engine.schemes`) splits each step into a *local* function of a few
tensors (the part that calls the vector field) and a *linear* history combination that the scheme
differentiates by hand (the discrete adjoint of a convolution is a convolution with the same
weights, run backward in time).  The gradient mode decides what the local part keeps:

* ``direct``: the autograd graph of every step, built during the forward solve (memory grows by
  one step's graph per step; the baseline the adjoint is judged against).
* ``checkpoint``: the same graphs through ``torch.utils.checkpoint``: only each step's inputs are
  kept and the step is recomputed during the backward pass.
* ``revolve``: for the compressed schemes (``history="soe"``) only: ``c`` checkpoints of the
  state ``(y_n, G^n)``, from which the backward pass recomputes each step's state on Griewank's
  binomial schedule; the exact adjoint of the compressed scheme in a fraction of ``N |y|``.
* ``adjoint``: nothing.  The backward pass solves the discrete adjoint system backward in time; the
  scheme rebuilds each step's inputs from its stored history buffer and the step is recomputed,
  one step's graph at a time.  Because it is the exact adjoint of the forward discretisation, its
  gradients equal ``direct`` to rounding error.

Every mode accumulates the parameter cotangents in ``param_grads``.  These four are exact for
the discretisation (``exact = True``); all but ``revolve`` differentiate a learnable order too
(the scheme adds its terms; :meth:`GradientMode.check_order`).  The approximate adjoints of the
continuous problem (``continuous``, ``backsolve``, ``paper``; :mod:`fdebench.engine.adjoints`)
run a backward pass of their own instead; ``GRADIENTS`` lists them all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch.autograd.graph import get_gradient_edge
from torch.utils.checkpoint import checkpoint

from .adjoints import BacksolveAdjoint, ContinuousAdjoint, PaperAdjoint
from .mode import GradientMode, LocalFn
from .revolve import Schedule, checkpoints_for

if TYPE_CHECKING:
    from .mode import SolveView, State, Steps

__all__ = ["GRADIENTS", "AdjointMode", "CheckpointMode", "DirectMode", "GradientMode",
           "RevolveMode"]


class AdjointMode(GradientMode):
    """Discrete adjoint: keep nothing forward, recompute one step at a time backward."""

    name = "adjoint"

    @classmethod
    def check_history(cls, history: str) -> str | None:
        if history == "soe":
            return ("rebuilds each step from a (N + 1) |y| history buffer, which the "
                    "compressed history has not; its exact adjoint with checkpoints is 'revolve'")
        return None


class RevolveMode(GradientMode):
    """The exact discrete adjoint of a compressed scheme (``history="soe"``) with binomial
    checkpoints of its states ``(y_n, G^n)`` (Griewank & Walther 2000, ACM TOMS 26:19-45;
    :mod:`fdebench.engine.revolve`).

    An uncompressed fractional scheme cannot be restarted from a checkpoint (step ``n`` needs
    every earlier value), so checkpointing it saves nothing; the compressed one restarts from
    ``(K + 1) |y|``.  Running its recurrences backward instead would be unstable (``1 / d_l``
    reaches ``e^49``).  The forward solve stores ``c`` states (:attr:`checkpoints`; ``None``: the
    fewest that advance each step at most :attr:`max_reps` times, the forward solve included,
    so a forward plus backward pass evaluates each step at most ``max_reps + 1 = 5`` times); the
    backward pass replays the schedule, recomputing states without a graph, and takes one step's
    VJP at a time.  Memory: ``c (K + 1) |y|`` of checkpoints, the ``K |y|`` adjoint modes, one
    state and one step's graph.  Recomputation replays the field, so it must be deterministic
    (no dropout).  At ``alpha = 1`` (no history; any ``history``) it checkpoints the classical
    one-step schemes' states ``y_n`` the same way.
    """

    name = "revolve"
    replays = True
    #: the most advances of a step when ``checkpoints`` is ``None``
    max_reps = 4

    def __init__(self, params: Sequence[torch.Tensor], checkpoints: int | None = None) -> None:
        super().__init__(params)
        self.checkpoints = checkpoints
        self.schedule: Schedule | None = None

    @classmethod
    def check_order(cls) -> str | None:
        return ("gives no derivative with respect to alpha: the sum of exponentials of its "
                "history is fitted per order, not smooth in alpha")

    @classmethod
    def check_history(cls, history: str) -> str | None:
        if history != "soe":
            return ("needs history 'soe': restarting the uncompressed scheme at step n needs "
                    "every earlier value, so checkpoints would save nothing")
        return None

    def start(self, view: SolveView) -> None:
        n = view.n
        count = checkpoints_for(n, self.max_reps) if self.checkpoints is None else self.checkpoints
        self.schedule = Schedule(n, count)
        self._stored = set(self.schedule.forward)
        self._slots: dict[int, tuple[torch.Tensor, ...]] = {}
        self._last: tuple[torch.Tensor, ...] | None = None

    def snapshot(self, n: int, state: tuple[torch.Tensor, ...]) -> None:
        if n in self._stored:
            self._slots[n] = state
        if n == self.schedule.n_steps - 1:
            self._last = state

    def replay(self, steps: Steps) -> Iterator[tuple[int, State]]:
        slots = self._slots
        current = (self.schedule.n_steps - 1, self._last)
        self._last = None
        for action in self.schedule.backward():
            kind, n = action[0], action[1]
            if kind == "restore":
                current = (n, slots[n] if n else steps.initial_state())
            elif kind == "advance":
                state = current[1]
                for j in range(n, action[2]):
                    state = steps.advance(j, state)
                current = (action[2], state)
            elif kind == "store":
                slots[n] = current[1]
            elif kind == "free":
                del slots[n]
            else:  # reverse: hand the state over and keep no reference to it
                state, current = current[1], None
                yield n, state
                del state
        self._slots = {}


class DirectMode(GradientMode):
    """Autograd through every step: keep each step's graph from the forward solve."""

    name = "direct"
    needs_inputs = False

    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        super().__init__(params)
        self._graphs: dict[int, tuple[list[torch.Tensor], tuple[torch.Tensor, ...]]] = {}

    def _run(self, key: int, fn: LocalFn, leaves: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return fn(key, *leaves)

    def record(self, key: int, fn: LocalFn, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        leaves = [x.detach().requires_grad_() for x in inputs]
        with torch.enable_grad():
            outputs = self._run(key, fn, leaves)
        # Keep each output's gradient edge, not the output: its values live on (detached) only
        # as long as the scheme needs them, which saves one state per step.
        edges = [get_gradient_edge(o) if o.requires_grad else None for o in outputs]
        self._graphs[key] = (leaves, edges)
        return tuple(o.detach() for o in outputs)

    def vjp(self, key, fn, inputs, cotangents):
        leaves, outputs = self._graphs.pop(key)
        return self._pull(leaves, outputs, cotangents)


def _rng_states(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The states of the CPU generator and of the CUDA generators of ``tensors``' devices."""
    devices = sorted({t.device for t in tensors if t.device.type == "cuda"}, key=str)
    return [torch.get_rng_state(), *(torch.cuda.get_rng_state(d) for d in devices)]


def _set_rng_states(tensors: Sequence[torch.Tensor], states: list[torch.Tensor]) -> None:
    devices = sorted({t.device for t in tensors if t.device.type == "cuda"}, key=str)
    torch.set_rng_state(states[0])
    for device, state in zip(devices, states[1:], strict=True):
        torch.cuda.set_rng_state(state, device)


class CheckpointMode(DirectMode):
    """Direct differentiation with per-step recomputation (``torch.utils.checkpoint``).

    By default torch keeps the random generators' states with every checkpoint (the CPU
    generator's alone is a 5 KB tensor), so that a recomputation draws the same random numbers;
    on a small state that dwarfs the step it saves (a 2-element Lotka-Volterra state: 27x
    direct's memory).  So a step is checkpointed without them, and the generators' states are
    compared around it: if the field drew random numbers (dropout, noise), that step is redone
    from the same states keeping them, and so are all later steps of the solve.  Either way the
    recomputation is the forward step, bit for bit.
    """

    name = "checkpoint"

    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        super().__init__(params)
        self._keep_rng = False

    def _run(self, key: int, fn: LocalFn, leaves: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        if self._keep_rng:
            return checkpoint(fn, key, *leaves, use_reentrant=False)
        before = _rng_states(leaves)
        outputs = checkpoint(fn, key, *leaves, use_reentrant=False, preserve_rng_state=False)
        if all(torch.equal(a, b) for a, b in zip(before, _rng_states(leaves), strict=True)):
            return outputs
        self._keep_rng = True  # the field is random: redo this step keeping the states
        _set_rng_states(leaves, before)
        return checkpoint(fn, key, *leaves, use_reentrant=False)


GRADIENTS: dict[str, type[GradientMode]] = {
    "direct": DirectMode,
    "adjoint": AdjointMode,
    "checkpoint": CheckpointMode,
    "revolve": RevolveMode,
    "continuous": ContinuousAdjoint,
    "backsolve": BacksolveAdjoint,
    "paper": PaperAdjoint,
}

"""Gradient modes: the registry, and the step-wise modes that give a scheme one step's VJP.

A scheme (see :mod:`fdebench.engine.schemes`) splits each step into a *local* function of a few
tensors (the part that calls the vector field) and a *linear* history combination that the scheme
differentiates by hand (the discrete adjoint of a convolution is a convolution with the same
weights, run backward in time).  The gradient mode decides what the local part keeps:

* ``direct``: the autograd graph of every step, built during the forward solve (memory grows by
  one step's graph per step; the baseline the adjoint is judged against).
* ``checkpoint``: the same graphs through ``torch.utils.checkpoint``: only each step's inputs are
  kept and the step is recomputed during the backward pass.
* ``adjoint``: nothing.  The backward pass solves the discrete adjoint system backward in time; the
  scheme rebuilds each step's inputs from its stored history buffer and the step is recomputed,
  one step's graph at a time.  Because it is the exact adjoint of the forward discretisation, its
  gradients equal ``direct`` to rounding error.

Every mode accumulates the parameter cotangents in ``param_grads``.  These three are exact for
the discretisation (``exact = True``), and differentiate a learnable order too (the scheme adds
its terms; :meth:`GradientMode.check_order`).  The approximate adjoints of the continuous problem
(``continuous``, ``backsolve``, ``paper``; :mod:`fdebench.engine.adjoints`) run a backward pass of
their own instead; ``GRADIENTS`` lists them all.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.autograd.graph import get_gradient_edge
from torch.utils.checkpoint import checkpoint

from .adjoints import BacksolveAdjoint, ContinuousAdjoint, PaperAdjoint
from .mode import GradientMode, LocalFn

__all__ = ["GRADIENTS", "AdjointMode", "CheckpointMode", "DirectMode", "GradientMode"]


class AdjointMode(GradientMode):
    """Discrete adjoint: keep nothing forward, recompute one step at a time backward."""

    name = "adjoint"


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
    "continuous": ContinuousAdjoint,
    "backsolve": BacksolveAdjoint,
    "paper": PaperAdjoint,
}

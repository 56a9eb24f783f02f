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


class CheckpointMode(DirectMode):
    """Direct differentiation with per-step recomputation (``torch.utils.checkpoint``)."""

    name = "checkpoint"

    def _run(self, key: int, fn: LocalFn, leaves: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return checkpoint(fn, key, *leaves, use_reentrant=False)


GRADIENTS: dict[str, type[GradientMode]] = {
    "direct": DirectMode,
    "adjoint": AdjointMode,
    "checkpoint": CheckpointMode,
    "continuous": ContinuousAdjoint,
    "backsolve": BacksolveAdjoint,
    "paper": PaperAdjoint,
}

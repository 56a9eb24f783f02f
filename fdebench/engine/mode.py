"""The interface of a gradient mode, and the one vector-Jacobian product of the field.

A gradient mode is chosen by name (``fdeint(..., gradient=...)``, see ``GRADIENTS`` in
:mod:`fdebench.engine.gradients`) and is independent of the scheme.  Two kinds exist:

* step-wise modes (``direct``, ``checkpoint``, ``adjoint``): the scheme runs the backward pass,
  its discrete adjoint, and asks the mode for each step's VJP (:meth:`GradientMode.record`,
  :meth:`GradientMode.vjp`).  Their gradients are exact for the discretisation (``exact``).
* modes that own the backward pass (``owns_backward``; :mod:`fdebench.engine.adjoints`): the
  scheme shows them every grid value during the forward solve (:meth:`GradientMode.keep`),
  frees its own buffers, and hands them the output cotangents; they solve an adjoint problem of
  their own, evaluating the field's VJPs through :meth:`GradientMode.linearize`.

A mode sees the solve through :class:`SolveView`, the read-only part of a scheme it may use
(and :class:`Steps`, the step interface of a scheme that restarts from a state), never the
scheme itself: this module depends on no scheme, and the schemes satisfy these protocols.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch

if TYPE_CHECKING:
    from .grid import Grid
    from .history import History

__all__ = ["FieldVJP", "GradientMode", "SolveView", "Solver", "Steps"]

LocalFn = Callable[..., tuple[torch.Tensor, ...]]
Grads = list[torch.Tensor | None]
#: a vector field on flat states, ``(t, y) -> f(t, y)``
FlatField = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
State = tuple[torch.Tensor, ...]


@runtime_checkable
class Steps(Protocol):
    """A solve with a step interface (the one-step and the compressed schemes): its state
    before step 0 and one step from any state, so that it can restart from a stored state."""

    @property
    def n(self) -> int:
        """The number of steps."""

    def initial_state(self) -> State:
        """The state before step 0 (``(y0,)``, or ``(y0, G^0)`` for a compressed history)."""

    def advance(self, n: int, state: State) -> State:
        """Step ``n`` from ``state``, without a graph."""


@runtime_checkable
class Solver(Protocol):
    """A solve a mode builds for a problem of its own (:meth:`SolveView.solver`)."""

    def solve(self) -> torch.Tensor:
        """Run it; the states at its grid's output times, ``(len(outputs), numel)``."""


@runtime_checkable
class SolveView(Protocol):
    """What a gradient mode reads of the solve it differentiates (:meth:`GradientMode.start`,
    :meth:`GradientMode.backward`): read-only, and nothing of the scheme's own buffers."""

    @property
    def grid(self) -> Grid:
        """The uniform grid and where the outputs sit on it."""

    @property
    def n(self) -> int:
        """The number of steps, ``grid.n_steps``."""

    @property
    def times(self) -> torch.Tensor:
        """The grid times ``t_0 .. t_N`` (the state's dtype and device)."""

    @property
    def alpha(self) -> float:
        """The order."""

    @property
    def y0(self) -> torch.Tensor:
        """The initial state, flat and detached (its dtype and device are the solve's)."""

    @property
    def field(self) -> FlatField:
        """The vector field on flat states."""

    @property
    def output_cotangents(self) -> torch.Tensor:
        """The cotangents of the outputs, ``(len(t), numel)``, during the backward pass."""

    def loss_cotangent(self, j: int) -> torch.Tensor | None:
        """The cotangent that the loss sends to ``y_j`` (``None`` if no output uses ``y_j``)."""

    def buffer(self) -> torch.Tensor:
        """A new ``(N + 1, numel)`` tensor (uninitialised), e.g. for the trajectory."""

    def future(self, terms: Sequence[tuple[torch.Tensor, torch.Tensor]], targets: range, *,
               scratch: bool = False, share: float = 1.0) -> History:
        """The adjoint history sums with the solve's own algorithm (see
        :meth:`fdebench.engine.schemes.base.Scheme.future`)."""

    def solver(self, func: FlatField, y0: torch.Tensor, grid: Grid, mode: GradientMode, *,
               host_times: bool = False) -> Solver:
        """A fresh solve of ``func`` from ``y0`` (flat) on ``grid`` by the same method, order
        and history, differentiated by ``mode``.  ``host_times``: its times in float64 on the
        CPU (for a field that reads ``t`` as a number: no device synchronisation).  At
        ``alpha == 1`` it is a one-step scheme, which is also :class:`Steps`."""


class GradientMode:
    """Base class: run a local step in the forward pass and give its VJP in the backward pass."""

    name = "none"
    #: whether :meth:`vjp` needs the step's inputs (schemes skip rebuilding them otherwise)
    needs_inputs = True
    #: gradients equal ``direct``'s to rounding (the exact derivative of the discretisation)
    exact = True
    #: the mode runs its own backward pass (:meth:`backward`) instead of the scheme's
    owns_backward = False
    #: the mode rebuilds states from its own checkpoints (:meth:`snapshot`, :meth:`replay`)
    replays = False

    def __init__(self, params: Sequence[torch.Tensor]) -> None:
        self.params = list(params)
        self.param_grads: Grads = [None] * len(self.params)

    @classmethod
    def check(cls, method: str, alpha: float) -> str | None:
        """Why this mode cannot differentiate ``method`` at ``alpha``; ``None`` if it can."""
        return None

    @classmethod
    def check_order(cls) -> str | None:
        """Why this mode cannot differentiate with respect to a learnable alpha; ``None`` if it
        can (the step-wise modes: the scheme's backward pass adds the order's terms)."""
        return None

    @classmethod
    def check_history(cls, history: str) -> str | None:
        """Why this mode cannot differentiate a scheme with ``history``; ``None`` if it can
        (``direct`` and ``checkpoint`` differentiate every history, ``soe`` included)."""
        return None

    # ---- forward pass ----------------------------------------------------------------------
    def start(self, view: SolveView) -> None:
        """Called before every forward solve."""

    def keep(self, j: int, y: torch.Tensor) -> None:
        """Called with every grid value ``y_j``, ``j = 0..n_steps``, during the forward solve."""

    def record(self, key: int, fn: LocalFn, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Evaluate ``fn(key, *inputs)`` during the forward solve; return detached outputs."""
        with torch.no_grad():
            return fn(key, *inputs)

    def snapshot(self, n: int, state: tuple[torch.Tensor, ...]) -> None:
        """Called by a scheme with a step interface (compressed and one-step schemes) with its
        state before every step ``n`` of the forward solve (never modified later)."""

    # ---- backward pass ---------------------------------------------------------------------
    def backward(self, view: SolveView) -> torch.Tensor:
        """The cotangent of ``y0`` (flat) from ``view.output_cotangents`` (modes that
        :attr:`owns_backward`); the parameter cotangents go to :attr:`param_grads`."""
        raise NotImplementedError(f"gradient mode {self.name!r} does not own the backward pass")

    def replay(self, steps: Steps) -> Iterator[tuple[int, State]]:
        """``(n, state_n)`` for ``n = N - 1 .. 0``: the states of a scheme with a step
        interface (compressed and one-step schemes) for its backward pass (modes that
        :attr:`replays`)."""
        raise NotImplementedError(f"gradient mode {self.name!r} does not replay states")

    def vjp(
        self,
        key: int,
        fn: LocalFn,
        inputs: Sequence[torch.Tensor] | None,
        cotangents: Sequence[torch.Tensor | None],
    ) -> Grads:
        """Cotangents of the inputs of step ``key``; parameter cotangents are accumulated."""
        leaves = [x.detach().requires_grad_() for x in inputs]
        with torch.enable_grad():
            outputs = fn(key, *leaves)
        return self._pull(leaves, outputs, cotangents)

    def linearize(self, field: Callable, t: torch.Tensor, y: torch.Tensor) -> FieldVJP:
        """The field at ``(t, y)`` with its autograd graph: ``J^T v`` and ``f_theta^T v`` for
        any number of cotangents ``v``."""
        return FieldVJP(self, field, t, y)

    def _pull(self, leaves, outputs, cotangents) -> Grads:
        """VJP from ``outputs`` (tensors, gradient edges, or ``None`` for constant outputs)."""
        pairs = [
            (o, c) for o, c in zip(outputs, cotangents, strict=True)
            if c is not None and o is not None and (not isinstance(o, torch.Tensor)
                                                    or o.requires_grad)
        ]
        if not pairs:
            return [None] * len(leaves)
        wrt = leaves + self.params
        grads = torch.autograd.grad(
            [o for o, _ in pairs], wrt, [c for _, c in pairs], allow_unused=True
        )
        _accumulate(self.param_grads, grads[len(leaves):])
        return list(grads[: len(leaves)])


class FieldVJP:
    """``f`` linearised at ``(t, y)``: one evaluation, then any number of VJPs.

    ``value`` is ``f(t, y)`` (detached).  Calling it with a cotangent ``v`` returns ``J^T v``
    (``J = df/dy``) and adds ``param_weight * f_theta^T v`` to the mode's parameter cotangents
    (or to ``into``, a list shaped like ``mode.params``); ``param_weight=None`` skips the
    parameters, ``state=False`` skips ``J^T v`` (returns ``None``).  The graph lives as long as
    this object.
    """

    def __init__(self, mode: GradientMode, field: Callable, t: torch.Tensor,
                 y: torch.Tensor) -> None:
        self.mode = mode
        self._y = y.detach().requires_grad_()
        with torch.enable_grad():
            self._f = field(t, self._y)
        self.value = self._f.detach()

    def __call__(self, v: torch.Tensor, param_weight: float | None = None, *,
                 state: bool = True, into: Grads | None = None) -> torch.Tensor | None:
        params = self.mode.params if param_weight else []
        wrt = ([self._y] if state else []) + params
        if not wrt:
            return None
        if self._f.requires_grad:
            grads = torch.autograd.grad(self._f, wrt, v, retain_graph=True, allow_unused=True)
        else:  # f depends on neither y nor the parameters
            grads = [None] * len(wrt)
        if params:
            scaled = [g if g is None or param_weight == 1 else g.mul_(param_weight)
                      for g in grads[len(wrt) - len(params):]]
            _accumulate(self.mode.param_grads if into is None else into, scaled)
        if not state:
            return None
        return torch.zeros_like(self._y) if grads[0] is None else grads[0]


def _accumulate(total: Grads, grads: Sequence[torch.Tensor | None]) -> None:
    for i, g in enumerate(grads):
        if g is not None:
            total[i] = g if total[i] is None else total[i].add_(g)

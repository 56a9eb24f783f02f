"""What every scheme shares: the field wrapper, the output times, the history sums."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from .. import closure
from .. import history as _history
from ..grid import Grid

if TYPE_CHECKING:
    from ..mode import GradientMode

__all__ = ["Field", "Scheme"]


class Field:
    """``func(t, y)`` on flat states, checking that it returns ``y``'s shape and dtype.

    ``listed``: the tensors the solve differentiates (``y0``, a learnable alpha, ``params``);
    when given, the first evaluation runs with autograd on and raises if ``func`` uses a tensor
    that requires grad and is not among them (:mod:`fdebench.engine.closure`): a gradient that
    cannot reach a tensor is an error, not a silent ``None``.
    """

    def __init__(self, func: Callable, y0: torch.Tensor,
                 listed: Sequence[torch.Tensor] | None = None) -> None:
        self.func, self.shape, self.dtype = func, y0.shape, y0.dtype
        self._listed = listed

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        checking = self._listed is not None
        out = self._first(t, y) if checking else self.func(t, y.view(self.shape))
        if not isinstance(out, torch.Tensor) or out.shape != self.shape or out.dtype != self.dtype:
            got = (
                f"shape {tuple(out.shape)} and dtype {out.dtype}"
                if isinstance(out, torch.Tensor) else type(out).__name__
            )
            raise ValueError(
                f"func(t, y) must return a tensor of y's shape {tuple(self.shape)} and dtype "
                f"{self.dtype}, got {got}"
            )
        return out.reshape(-1)

    def _first(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The first evaluation, with autograd on: check what its graph reaches (in a mode
        that keeps no graph, the result is detached again)."""
        listed, self._listed = self._listed, None
        grad_was_on = torch.is_grad_enabled()
        with torch.enable_grad():
            out = self.func(t, y.view(self.shape))
        if isinstance(out, torch.Tensor) and (found := closure.unreached(out, (y,), listed)):
            raise ValueError(closure.message(found))
        return out if grad_was_on or not isinstance(out, torch.Tensor) else out.detach()


class Scheme:
    """One solve of ``D^alpha y = f(t, y)`` on a uniform grid.

    A gradient mode sees it as a :class:`~fdebench.engine.mode.SolveView` (and, for the one-step
    and compressed schemes, as :class:`~fdebench.engine.mode.Steps`).

    A subclass implements :meth:`forward` (returns the states at the output times, flat) and
    :meth:`backward` (takes their cotangents, returns the cotangent of ``y0`` and leaves the
    parameter cotangents in ``mode.param_grads``).  Local steps go through ``mode``; the linear
    history combinations are differentiated by hand, which makes the adjoint exact.  The history
    sums go through :meth:`past` and :meth:`future` (:mod:`fdebench.engine.history`), the only
    code that reads the history buffer for them; ``history`` names their algorithm
    (``"stepwise"`` or ``"fast"``).

    A mode that :attr:`~GradientMode.owns_backward` sees every grid value through :meth:`emit`
    (``mode.keep``) and runs the backward pass itself; the scheme then frees its history buffer
    as soon as the forward solve ends.

    A learnable order (``learn_order``; exact modes only): the backward pass also leaves
    ``dL/dalpha`` in :attr:`alpha_bar`.  ``alpha`` enters a scheme in two places.  (1) The
    history kernels ``k_a``: a sum ``y_m = ... + sum_j k_a[m - j] x_j`` contributes
    ``sum_m sum_{j<m} k_a'[m - j] <ybar_m, x_j> = sum_j <x_j, sum_{m>j} k_a'[m - j] ybar_m>``,
    the adjoint's own ``future`` sum with the derivative kernel stacked on the kernel
    (:meth:`adjoint_kernel`: the same rows read once for both) correlated with the stored
    ``x_j`` while it is still in the buffer (:meth:`order_term`).  (2) A scalar factor of a
    local step (``mu``, ``h^a / Gamma(a + 2)``): it becomes an input of the step
    (:meth:`order_input`), so its cotangent comes out of the step's VJP in every mode.
    """

    def __init__(
        self, field: Field, y0: torch.Tensor, grid: Grid, alpha: float, mode: GradientMode,
        history: str = "stepwise", learn_order: bool = False, *, host_times: bool = False,
    ) -> None:
        self.field, self.grid, self.alpha, self.mode = field, grid, alpha, mode
        self.history = history
        self.learn_order = learn_order
        self.alpha_bar: torch.Tensor | None = None  # dL/dalpha after the backward pass
        self.y0 = y0.detach().reshape(-1)
        self.n = grid.n_steps
        # the times the field is called with: the state's dtype and device, or for an
        # auxiliary solve whose field reads them as numbers float64 on the CPU (no device sync)
        self.times = (grid.times(torch.float64, torch.device("cpu")) if host_times
                      else grid.times(y0.dtype, y0.device))
        self._stencils = grid.stencils()
        self._n_out = len(grid.out_index)
        self._ys: torch.Tensor | None = None
        self._grad_ys: torch.Tensor | None = None
        self.buf: torch.Tensor | None = None
        self.spent = False  # the backward pass reuses the buffers: set once it has run

    # ---- outputs ---------------------------------------------------------------------------
    def emit(self, j: int, y: torch.Tensor) -> None:
        """Every scheme calls this once with each grid value ``y_j``, ``j = 0..n_steps``.

        Adds ``y_j`` to the outputs it enters (see :meth:`Grid.stencils`: itself, or one end of
        a linear interpolation) and shows it to the gradient mode (``mode.keep``)."""
        for k, w in self._stencils.get(j, ()):
            self._ys[k].add_(y, alpha=w)
        self.mode.keep(j, y)

    @property
    def output_cotangents(self) -> torch.Tensor:
        """The cotangents of the outputs, ``(len(t), numel)``, during the backward pass."""
        return self._grad_ys

    def loss_cotangent(self, j: int) -> torch.Tensor | None:
        """The cotangent that the loss sends to ``y_j`` (``None`` if no output uses ``y_j``)."""
        stencil = self._stencils.get(j)
        if not stencil:
            return None
        (k, w), *rest = stencil
        out = self._grad_ys[k] if w == 1.0 else w * self._grad_ys[k]
        for k, w in rest:
            out = out + w * self._grad_ys[k]
        return out

    def solver(self, func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               y0: torch.Tensor, grid: Grid, mode: GradientMode, *,
               host_times: bool = False) -> Scheme:
        """A fresh solve of ``func`` (on flat states) from ``y0`` (flat) on ``grid`` by this
        scheme's method, order and history, differentiated by ``mode`` (see
        :meth:`~fdebench.engine.mode.SolveView.solver`: an adjoint solved like the forward
        problem)."""
        return type(self)(Field(func, y0), y0, grid, self.alpha, mode, self.history,
                          host_times=host_times, **self._options())

    def _options(self) -> dict[str, float]:
        """The constructor's options of a subclass, for :meth:`solver`."""
        return {}

    def buffer(self) -> torch.Tensor:
        """A ``(n_steps + 1, numel)`` history buffer, allocated once per solve."""
        return self.y0.new_empty(self.n + 1, self.y0.numel())

    def solve(self) -> torch.Tensor:
        """Run the forward pass; return the states at the output times, ``(len(t), numel)``."""
        self.spent = False
        self._ys = self.y0.new_zeros(self._n_out, self.y0.numel())
        self.mode.start(self)
        self.forward()
        if self.mode.owns_backward:
            self.buf = None  # the mode kept what its backward pass needs
        ys, self._ys = self._ys, None
        return ys

    def gradient(self, grad_ys: torch.Tensor) -> torch.Tensor:
        """Cotangent of ``y0`` for output cotangents ``grad_ys``; fills ``mode.param_grads``."""
        self._grad_ys = grad_ys.reshape(self._n_out, -1)
        self.mode.param_grads = [None] * len(self.mode.params)
        self.alpha_bar = self.y0.new_zeros(()) if self.learn_order else None
        self.spent = True
        y0_bar = self.mode.backward(self) if self.mode.owns_backward else self.backward()
        self._grad_ys = self.buf = None  # free the history as soon as the gradient is known
        return y0_bar

    def past(
        self, buffer: torch.Tensor, kernel: torch.Tensor, targets: range, *,
        scratch: bool = False, share: float = 1.0,
    ) -> _history.History:
        """``m -> sum_{i<m} kernel[..., m - i] * buffer[i]`` for ``m`` in ``targets``, in order.

        Increasing targets need rows ``< m`` written; decreasing ones (rebuilding inputs in the
        backward pass) rows ``<= m`` still intact.  ``scratch``: rows of later targets are
        unwritten until requested.  ``share``: the part of the workspace this sum may use when
        another one is live at the same time.
        """
        return _history.past(self.history, buffer, kernel, targets, scratch=scratch, share=share)

    def future(
        self, terms: Sequence[tuple[torch.Tensor, torch.Tensor]], targets: range, *,
        scratch: bool = False, share: float = 1.0,
    ) -> _history.History:
        """The adjoint: ``j -> sum_{(b, k) in terms} sum_{i>j} k[..., i - j] * b[i]``, newest
        ``j`` first; rows ``> j`` must hold their final values when ``j`` is requested.
        ``scratch``: rows ``< j`` of the first buffer are dead (the fast sums may use them).
        """
        return _history.future(self.history, terms, targets, scratch=scratch, share=share)

    # ---- a learnable order -----------------------------------------------------------------
    def order_input(self, value: float) -> tuple[torch.Tensor, ...]:
        """The inputs a local step takes for a scalar factor ``value`` that depends on alpha:
        none for a fixed order (the step uses the float), ``(value,)`` as a 0-dim tensor for a
        learnable one, whose cotangent the step's VJP then returns (:meth:`add_order`)."""
        return (self.y0.new_tensor(value),) if self.learn_order else ()

    def adjoint_kernel(self, kernel: torch.Tensor,
                       derivative: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The kernel of a ``future`` sum; with a learnable order, stacked with its
        alpha-derivative (``derivative()``, float64, computed here once per backward pass)."""
        if not self.learn_order:
            return kernel
        return torch.stack([kernel, derivative().to(kernel)])

    def order_term(self, sums: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        """The cotangent part of a ``future`` sum over :meth:`adjoint_kernel`; with a learnable
        order adds ``<source, derivative part>`` to :attr:`alpha_bar` (``source``: the history
        value ``x_j`` the sum's target ``j`` multiplies)."""
        if not self.learn_order:
            return sums
        self.alpha_bar += torch.dot(source, sums[1])
        return sums[0]

    def add_order(self, cotangent: torch.Tensor | None, derivative: float) -> None:
        """``alpha_bar += derivative * cotangent`` for a scalar factor from :meth:`order_input`
        (``derivative``: the factor's d/dalpha)."""
        if cotangent is not None:
            self.alpha_bar += derivative * cotangent

    def forward(self) -> None:
        raise NotImplementedError

    def backward(self) -> torch.Tensor:
        raise NotImplementedError


def add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    """``a + b`` where ``None`` stands for zero."""
    if a is None:
        return b
    return a if b is None else a + b

"""What every scheme shares: the field wrapper, the output times, the history sums."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import torch

from .. import history as _history
from ..grid import Grid

if TYPE_CHECKING:
    from ..mode import GradientMode

__all__ = ["Field", "Scheme"]


class Field:
    """``func(t, y)`` on flat states, checking that it returns ``y``'s shape and dtype."""

    def __init__(self, func: Callable, y0: torch.Tensor) -> None:
        self.func, self.shape, self.dtype = func, y0.shape, y0.dtype

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = self.func(t, y.view(self.shape))
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


class Scheme:
    """One solve of ``D^alpha y = f(t, y)`` on a uniform grid.

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
    """

    def __init__(
        self, field: Field, y0: torch.Tensor, grid: Grid, alpha: float, mode: GradientMode,
        history: str = "stepwise",
    ) -> None:
        self.field, self.grid, self.alpha, self.mode = field, grid, alpha, mode
        self.history = history
        self.y0 = y0.detach().reshape(-1)
        self.n = grid.n_steps
        self.times = grid.times(y0.dtype, y0.device)
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

    def forward(self) -> None:
        raise NotImplementedError

    def backward(self) -> torch.Tensor:
        raise NotImplementedError


def history(buffer: torch.Tensor, flipped_kernel: torch.Tensor, m: int) -> torch.Tensor:
    """One stepwise ``past`` sum, ``sum_{j<m} kernel[m - j] * buffer[j]`` (``flipped_kernel`` is
    ``kernel.flip(-1)``), for code that sums one target at a time outside a scheme's loop; the
    schemes use :meth:`Scheme.past`, which can run the fast algorithm."""
    n = flipped_kernel.shape[-1] - 1
    return flipped_kernel[..., n - m : n] @ buffer[:m]


def pull(cotangents: torch.Tensor, kernel: torch.Tensor, j: int) -> torch.Tensor:
    """One stepwise ``future`` sum, ``sum_{m>j} kernel[m - j] * cotangents[m]`` (the adjoint of
    :func:`history`); the schemes use :meth:`Scheme.future`."""
    n = kernel.shape[-1] - 1
    return kernel[..., 1 : n - j + 1] @ cotangents[j + 1 :]


def add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    """``a + b`` where ``None`` stands for zero."""
    if a is None:
        return b
    return a if b is None else a + b

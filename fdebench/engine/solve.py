"""``fdeint``: solve ``D^alpha y = func(t, y)`` (Caputo, 0 < alpha <= 1) and differentiate it."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable

import torch
from torch import nn

from .gradients import GRADIENTS, AdjointMode, GradientMode
from .grid import make_grid
from .history import HISTORIES, choose
from .schemes import METHODS, Field, Scheme, scheme_for

__all__ = ["fdeint"]


def fdeint(
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y0: torch.Tensor,
    t: torch.Tensor,
    *,
    alpha: float | torch.Tensor,
    method: str = "euler",
    step_size: float | None = None,
    gradient: str = "direct",
    params: Iterable[torch.Tensor] | None = None,
    history: str = "auto",
) -> torch.Tensor:
    """Solve the Caputo fractional ODE ``D^alpha y = func(t, y)``, ``y(t[0]) = y0``.

    Args:
        func: ``func(t, y) -> D^alpha y`` with ``y``'s shape and dtype (an ``nn.Module`` or any
            callable).
        y0: initial state, a float32 or float64 tensor of any shape, on any device.
        t: 1-D increasing tensor of output times; ``t[0]`` is the initial time.
        alpha: Caputo order in ``(0, 1]``; ``1`` is the classical ODE.  A float, or a one-element
            tensor; a float32/float64 tensor that requires grad is a *learnable order*: ``ys`` is
            then differentiable with respect to it too (methods ``euler``, ``abm``, ``l1``,
            ``gl``; gradients ``direct``, ``checkpoint``, ``adjoint``, exact for the
            discretisation; see :class:`~fdebench.engine.schemes.base.Scheme`).  A learnable
            ``alpha == 1`` runs the fractional scheme at ``alpha = 1`` (the weights' limit;
            forward Euler to rounding for ``euler``, ``l1``, ``gl``, but for ``abm`` the
            product-trapezoid corrector with its whole history, not Heun's method), so that the
            solution and its derivative are continuous in ``alpha`` up to ``1``; the derivative
            there is the one-sided one.  A float or a tensor that does not require grad gives
            exactly the fixed-order solve.
        method: ``"euler"``, ``"abm"``, ``"l1"``, ``"gl"`` or ``"rk4"`` (``alpha == 1`` only).
        step_size: the uniform internal step; default: the spacing of ``t``, which must then be
            uniform.  The grid ``t[0] + j * step_size`` runs to the first grid time at or past
            ``t[-1]``; an output time between two grid times is the linear interpolation of
            the two grid values (as in torchdiffeq's fixed-grid solvers), differentiated
            exactly in every gradient mode.
        gradient: exact for the discretisation: ``"direct"`` (autograd through every step),
            ``"adjoint"`` (exact discrete adjoint, memory of the stored trajectory only) or
            ``"checkpoint"`` (``torch.utils.checkpoint`` per step).  Approximate adjoints of the
            continuous problem (:mod:`fdebench.engine.adjoints`): ``"continuous"`` (its
            Volterra adjoint by product integration), ``"backsolve"`` (Chen et al. 2018,
            ``alpha == 1`` only) and ``"paper"`` (arXiv:2503.16666, to reproduce that method).
        params: tensors to differentiate besides ``y0``; default ``func.parameters()`` when
            ``func`` is a Module.  Tensors that ``func`` uses but that are not listed get no
            gradient.
        history: how the fractional schemes sum their history (the same discrete sums, equal to
            rounding): ``"stepwise"`` (one matrix-vector product over the whole history per
            step, ``O(N^2 |y|)``), ``"fast"`` (blocked matrix-matrix and FFT products,
            ``O(N log^2 N |y|)`` with at most 8% of one history buffer as workspace; see
            :mod:`fdebench.engine.history`) or ``"auto"`` (``fast`` from 64 steps on when the
            ``(N + 1) x |y|`` history buffer has at least 2 MiB, else ``stepwise``).

    Returns:
        ``ys`` of shape ``(len(t), *y0.shape)`` with ``ys[0] == y0``, differentiable with respect
        to ``y0`` and ``params`` in every gradient mode, and to a learnable ``alpha`` (first
        derivatives only).
    """
    learnable = (torch.is_grad_enabled() and isinstance(alpha, torch.Tensor)
                 and alpha.requires_grad)
    scheme_cls, mode_cls = _check_inputs(func, y0, alpha, method, gradient, history, learnable)
    grid = make_grid(t, step_size)
    params = _params(func, params)
    needs_grad = torch.is_grad_enabled() and (
        y0.requires_grad or any(p.requires_grad for p in params)
    )
    mode = mode_cls(params) if needs_grad or learnable else AdjointMode(params)  # keep nothing
    algorithm = choose(history, grid.n_steps, y0.numel() * y0.element_size())
    order = float(alpha.detach() if isinstance(alpha, torch.Tensor) else alpha)
    if learnable:
        scheme = scheme_cls(Field(func, y0), y0, grid, order, mode, algorithm, learn_order=True)
        ys = _Solve.apply(scheme, alpha, y0, *params)
    else:
        scheme = scheme_cls(Field(func, y0), y0, grid, order, mode, algorithm)
        ys = _Solve.apply(scheme, None, y0, *params)
    return ys.view(len(grid.out_index), *y0.shape)


def _order_modes() -> list[str]:
    """The gradient modes that differentiate with respect to a learnable alpha."""
    return sorted(name for name, mode in GRADIENTS.items() if mode.check_order() is None)


def _check_inputs(
    func, y0, alpha, method, gradient, history, learnable=False
) -> tuple[type[Scheme], type[GradientMode]]:
    """Validate everything once; return the scheme and gradient-mode classes."""
    if not callable(func):
        raise TypeError(f"func must be callable, got {type(func).__name__}")
    if not isinstance(y0, torch.Tensor) or y0.dtype not in (torch.float32, torch.float64):
        got = y0.dtype if isinstance(y0, torch.Tensor) else type(y0).__name__
        raise TypeError(f"y0 must be a float32 or float64 tensor, got {got}")
    if learnable and (alpha.numel() != 1 or alpha.dtype not in (torch.float32, torch.float64)):
        raise ValueError(
            "a learnable alpha (a tensor that requires grad) must be a one-element float32 or "
            f"float64 tensor, got shape {tuple(alpha.shape)} and dtype {alpha.dtype}"
        )
    if isinstance(alpha, torch.Tensor) and alpha.numel() == 1:
        alpha = alpha.item()
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha <= 1:
        raise ValueError(f"alpha must be a number in (0, 1], got {alpha!r}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(sorted(METHODS))}")
    if gradient not in GRADIENTS:
        raise ValueError(
            f"unknown gradient {gradient!r}; valid gradients: {', '.join(sorted(GRADIENTS))}"
        )
    if not isinstance(history, str) or history not in HISTORIES:
        raise ValueError(f"unknown history {history!r}; valid values: {', '.join(HISTORIES)}")
    if METHODS[method][0] is None and alpha != 1:
        usable = sorted(m for m, (fractional, _) in METHODS.items() if fractional is not None)
        raise ValueError(
            f"method {method!r} solves classical ODEs only (alpha == 1), got alpha={alpha}; "
            f"for alpha < 1 use one of: {', '.join(usable)}"
        )
    reason = GRADIENTS[gradient].check(method, float(alpha))
    if reason is not None:
        usable = sorted(name for name, mode in GRADIENTS.items()
                        if mode.check(method, float(alpha)) is None)
        raise ValueError(
            f"gradient {gradient!r} {reason}; for method {method!r} at alpha={alpha} use one "
            f"of: {', '.join(usable)}"
        )
    if learnable:
        _check_learnable(method, gradient)
    return scheme_for(method, float(alpha), learnable), GRADIENTS[gradient]


def _check_learnable(method: str, gradient: str) -> None:
    """A learnable alpha needs a fractional scheme and a mode that differentiates the order."""
    if METHODS[method][0] is None:
        usable = sorted(m for m, (fractional, _) in METHODS.items() if fractional is not None)
        raise ValueError(
            f"method {method!r} has no order to learn (it solves classical ODEs only); for a "
            f"learnable alpha use one of: {', '.join(usable)}"
        )
    reason = GRADIENTS[gradient].check_order()
    if reason is not None:
        raise ValueError(
            f"gradient {gradient!r} {reason}; for a learnable alpha (a tensor that requires "
            f"grad) use one of: {', '.join(_order_modes())}, or pass alpha as a float"
        )


def _params(func, params) -> list[torch.Tensor]:
    if params is None:
        params = func.parameters() if isinstance(func, nn.Module) else ()
    return [p for p in params if isinstance(p, torch.Tensor) and p.requires_grad]


class _Solve(torch.autograd.Function):
    """One solve as one autograd node; the scheme keeps its buffers between the two passes."""

    @staticmethod
    def forward(ctx, scheme: Scheme, alpha: torch.Tensor | None, y0: torch.Tensor,
                *params: torch.Tensor) -> torch.Tensor:
        ctx.scheme = scheme
        ctx.save_for_backward(alpha, y0, *params)
        return scheme.solve()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_ys: torch.Tensor):
        scheme = ctx.scheme
        alpha = ctx.saved_tensors[0]  # raises if alpha, y0 or a parameter changed in place
        if scheme.spent:
            # A second backward (retain_graph=True, gradcheck): the first one overwrote and
            # freed the buffers, so solve again.  Saving y0 and params makes autograd refuse
            # this if they were modified in place since, so the trajectory is the same.
            scheme.solve()
        y0_bar = scheme.gradient(grad_ys.contiguous())
        grads = [
            torch.zeros_like(p) if g is None else g
            for p, g in zip(scheme.mode.params, scheme.mode.param_grads, strict=True)
        ]
        alpha_bar = None
        if scheme.alpha_bar is not None:
            alpha_bar = scheme.alpha_bar.to(alpha).reshape(alpha.shape)
        return (None, alpha_bar, y0_bar.view(scheme.field.shape), *grads)

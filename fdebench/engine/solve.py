"""``fdeint``: solve ``D^alpha y = func(t, y)`` (Caputo, 0 < alpha <= 1) and differentiate it."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable

import torch
from torch import nn

from .gradients import GRADIENTS, AdjointMode, GradientMode
from .grid import make_grid
from .history import choose
from .rules import refusal
from .schemes import METHODS, Compressed, Field, Scheme
from .soe import TOLERANCES

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
    soe_tol: float = 1e-8,
    revolve_checkpoints: int | None = None,
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
            ``"checkpoint"`` (``torch.utils.checkpoint`` per step), and for ``history="soe"``
            ``"revolve"`` (the compressed scheme's exact adjoint from binomial checkpoints of
            its ``(K + 1) |y|`` state: below the ``(N + 1) |y|`` trajectory floor of every other
            adjoint; see ``revolve_checkpoints``).  Approximate adjoints of the
            continuous problem (:mod:`fdebench.engine.adjoints`): ``"continuous"`` (its
            Volterra adjoint by product integration), ``"backsolve"`` (Chen et al. 2018,
            ``alpha == 1`` only) and ``"paper"`` (arXiv:2503.16666, to reproduce that method).
        params: tensors to differentiate besides ``y0``; default ``func.parameters()`` when
            ``func`` is a Module, else none.  Leaves or non-leaf tensors (e.g. attention weights
            computed outside the solve: their cotangents then flow on to what they were
            computed from).  If ``func`` uses a tensor that requires grad and is not listed (a
            closure over a Module or a bare tensor), ``fdeint`` raises ``ValueError`` naming
            its shape, in every gradient mode: the field's first evaluation runs with autograd
            on and its graph is walked (:mod:`fdebench.engine.closure`).  ``params=()`` means
            "none, on purpose" and skips that check.
        history: how the fractional schemes sum their history (the same discrete sums, equal to
            rounding): ``"stepwise"`` (one matrix-vector product over the whole history per
            step, ``O(N^2 |y|)``), ``"fast"`` (blocked matrix-matrix and FFT products,
            ``O(N log^2 N |y|)`` with at most 8% of one history buffer as workspace; see
            :mod:`fdebench.engine.history`) or ``"auto"`` (``fast`` from 64 steps on when the
            ``(N + 1) x |y|`` history buffer has at least 2 MiB, else ``stepwise``), or
            ``"soe"``: an *approximation* of the scheme (``euler``, ``abm``, ``l1``; never
            chosen by ``auto``) whose history kernel is a sum of ``K`` exponentials with
            relative error ``soe_tol`` on ``[h, T]`` (the newest weight exact), so the history is
            ``K`` one-step modes and the state ``(K + 1) |y|`` (``K`` ~ 30 at ``soe_tol = 1e-8``,
            ``N = 10^4``); the solution moves by ``O(soe_tol)`` (see
            :mod:`fdebench.engine.schemes.compressed`).  Gradients: ``direct``, ``checkpoint``
            and ``revolve``.  At ``alpha == 1`` there is no history and the classical scheme
            runs.
        soe_tol: the relative error of the sum of exponentials, in ``[1e-13, 1e-2]`` (used with
            ``history="soe"`` only).
        revolve_checkpoints: ``gradient="revolve"``: how many states ``(y_n, G^n)`` to keep;
            ``None``: the fewest that recompute each step at most 4 times (at most 5 field
            evaluations per step for a forward plus backward pass).  Fewer trade recomputation
            for memory.

    Returns:
        ``ys`` of shape ``(len(t), *y0.shape)`` with ``ys[0] == y0``, differentiable with respect
        to ``y0`` and ``params`` in every gradient mode, and to a learnable ``alpha`` (first
        derivatives only).
    """
    learnable = (torch.is_grad_enabled() and isinstance(alpha, torch.Tensor)
                 and alpha.requires_grad)
    scheme_cls, mode_cls = _check_inputs(func, y0, alpha, method, gradient, history, learnable)
    _check_options(gradient, history, soe_tol, revolve_checkpoints)
    grid = make_grid(t, step_size)
    given = None if params is None else list(params)
    params = _params(func, given)
    # the tensors the solve differentiates; the field's first evaluation checks that it uses no
    # other tensor that requires grad (params=() says "none, on purpose": no check)
    listed = None
    if torch.is_grad_enabled() and given != []:
        listed = [y0, *(given if given is not None else params),
                  *([alpha] if isinstance(alpha, torch.Tensor) else [])]
    needs_grad = torch.is_grad_enabled() and (
        y0.requires_grad or any(p.requires_grad for p in params)
    )
    options = {} if revolve_checkpoints is None else {"checkpoints": revolve_checkpoints}
    # without gradients keep nothing
    mode = mode_cls(params, **options) if needs_grad or learnable else AdjointMode(params)
    algorithm = choose(history, grid.n_steps, y0.numel() * y0.element_size())
    order = float(alpha.detach() if isinstance(alpha, torch.Tensor) else alpha)
    extra = {"tol": soe_tol} if issubclass(scheme_cls, Compressed) else {}
    if learnable:
        scheme = scheme_cls(Field(func, y0, listed), y0, grid, order, mode, algorithm,
                            learn_order=True)
        ys = _Solve.apply(scheme, alpha, y0, *params)
    else:
        scheme = scheme_cls(Field(func, y0, listed), y0, grid, order, mode, algorithm, **extra)
        ys = _Solve.apply(scheme, None, y0, *params)
    return ys.view(len(grid.out_index), *y0.shape)


def _check_inputs(
    func, y0, alpha, method, gradient, history, learnable=False
) -> tuple[type[Scheme], type[GradientMode]]:
    """Validate everything once (the combination: :func:`~fdebench.engine.rules.refusal`);
    return the scheme and gradient-mode classes."""
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
    if (problem := refusal(method, gradient, alpha, history, learnable)) is not None:
        raise ValueError(problem.reason)
    return METHODS[method].scheme(float(alpha), learnable, history), GRADIENTS[gradient]


def _check_options(gradient: str, history: str, soe_tol: float,
                   revolve_checkpoints: int | None) -> None:
    """The values of the options of one history and one gradient mode."""
    low, high = TOLERANCES
    if (isinstance(soe_tol, bool) or not isinstance(soe_tol, numbers.Real)
            or not low <= soe_tol <= high):
        raise ValueError(f"soe_tol must be a number in [{low:g}, {high:g}], got {soe_tol!r}")
    if revolve_checkpoints is None:
        return
    if gradient != "revolve":
        raise ValueError(
            f"revolve_checkpoints applies to gradient 'revolve' only, got gradient {gradient!r}"
        )
    if (isinstance(revolve_checkpoints, bool) or not isinstance(revolve_checkpoints, int)
            or revolve_checkpoints < 0):
        raise ValueError(
            f"revolve_checkpoints must be None or an integer >= 0, got {revolve_checkpoints!r}"
        )


def _params(func, params: list | None) -> list[torch.Tensor]:
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

"""The solver engines an :class:`~fdebench.tasks.FDEBlock` can run on: ``ENGINES`` by name.

* ``fdebench`` (the default): :func:`fdebench.engine.fdeint`, every Caputo order
  ``0 < alpha <= 1``, its methods (``euler``, ``abm``, ``l1``, ``gl``, ``rk4``) and gradient
  modes (``direct``, ``adjoint``, ``checkpoint``, ``continuous``, ``backsolve``, ``paper``).
* ``torchdiffeq``: Chen et al.'s ``torchdiffeq`` (``alpha == 1`` only), its fixed-grid methods
  (solved on the run's ``step_size``) and adaptive ones (controlled by ``rtol`` / ``atol``),
  differentiated by ``direct`` (``torchdiffeq.odeint``: autograd through the solver) or
  ``backsolve`` (``torchdiffeq.odeint_adjoint``: Chen et al. 2018, Alg. 1).
* ``textbook``: :func:`fdebench.engine.textbook_fdeint`, fdebench's fractional methods
  (``euler``, ``abm``, ``l1``, ``gl``; every ``0 < alpha <= 1``) written as research code writes
  them (a Python list of states, each history sum rebuilt with ``torch.stack``), ``direct``
  gradient only: the direct implementation that arXiv:2503.16666 measured its adjoint against,
  with fdebench's discretisation (same solution and gradient as ``fdebench``'s ``direct``).

Each engine says which combinations of method, gradient mode and order it cannot run
(:meth:`Engine.incompatible`), naming the keys involved and the valid choices; the suite loader
turns a fixed combination into a suite error and the grid expansion a combination that a grid
produces into a listed skip (:func:`incompatible`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..engine import GRADIENTS, METHODS, TEXTBOOK_METHODS, fdeint, textbook_fdeint

__all__ = [
    "ENGINES", "Engine", "FdebenchEngine", "Incompatible", "TextbookEngine", "TorchdiffeqEngine",
    "all_methods", "incompatible",
]

Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Incompatible:
    """Why a run's engine settings cannot run together: ``reason`` (one line naming the valid
    choices) and the configuration ``keys`` whose values make the problem, the one to change
    first (where a suite error points) first."""

    keys: tuple[str, ...]
    reason: str


class Engine:
    """A solver engine: its methods and gradient modes, what it cannot run, and a solve."""

    name: ClassVar[str]
    methods: ClassVar[tuple[str, ...]]
    gradients: ClassVar[tuple[str, ...]]

    def incompatible(self, method: str, gradient: str, alpha: float,
                     learn_alpha: bool = False) -> Incompatible | None:
        """Why ``method`` with ``gradient`` at order ``alpha`` (a learnt order starting there
        if ``learn_alpha``) cannot run here (``None``: it can)."""
        if method not in self.methods:
            return Incompatible(("method", "engine"), (
                f"method {method!r} is not a method of engine {self.name!r}; its methods: "
                f"{', '.join(sorted(self.methods))}"))
        if gradient not in self.gradients:
            return Incompatible(("gradient", "engine"), (
                f"engine {self.name!r} has no gradient {gradient!r}; its gradients: "
                f"{', '.join(sorted(self.gradients))}"))
        return None

    def solve(self, func: Field, y0: torch.Tensor, t: torch.Tensor, *, alpha: float,
              method: str, step_size: float, gradient: str, rtol: float, atol: float,
              params: Sequence[torch.Tensor]) -> torch.Tensor:
        """``ys`` at the times ``t`` (``ys[0] == y0``), differentiable in ``y0`` and
        ``params`` by ``gradient``."""
        raise NotImplementedError

    def reference_method(self, method: str) -> str:
        """The ``fdebench`` method of the fine-step reference gradient of a run using
        ``method`` (see :mod:`fdebench.runner.fidelity`)."""
        raise NotImplementedError


def _reason(mode, method: str, alpha: float) -> str | None:
    """Why ``mode`` cannot differentiate ``method`` at ``alpha`` with the history ``fdeint``
    runs here (``auto``; below alpha = 1 ``revolve`` needs ``soe``, which suites cannot ask
    for yet)."""
    reason = mode.check(method, alpha)
    if reason is None and alpha != 1:
        reason = mode.check_history("auto")
    return reason


class FdebenchEngine(Engine):
    """:func:`fdebench.engine.fdeint`; ``rtol`` and ``atol`` do not apply (fixed grids)."""

    name = "fdebench"
    methods = tuple(METHODS)
    gradients = tuple(GRADIENTS)

    def incompatible(self, method: str, gradient: str, alpha: float,
                     learn_alpha: bool = False) -> Incompatible | None:
        """Besides an unknown method or mode: a classical method (``rk4``) needs ``alpha ==
        1``, and each gradient mode's own ``check(method, alpha)`` (e.g. ``backsolve``: alpha
        = 1 only), with the modes that can; a learnt order needs a fractional method, a mode
        that differentiates it (``check_order``) and a start below 1."""
        if problem := super().incompatible(method, gradient, alpha):
            return problem
        if learn_alpha and (problem := self._learnable(method, gradient, alpha)):
            return problem
        if METHODS[method].fractional is None and alpha != 1:
            usable = sorted(m for m, entry in METHODS.items() if entry.fractional is not None)
            return Incompatible(("method", "alpha"), (
                f"method {method!r} solves classical ODEs only (alpha == 1), got alpha={alpha}; "
                f"for alpha < 1 use one of: {', '.join(usable)}"))
        reason = _reason(GRADIENTS[gradient], method, float(alpha))
        if reason is None:
            return None
        usable = sorted(g for g, mode in GRADIENTS.items()
                        if _reason(mode, method, float(alpha)) is None)
        return Incompatible(("gradient", "method", "alpha"), (
            f"gradient {gradient!r} {reason}; for method {method!r} at alpha={alpha} use one "
            f"of: {', '.join(usable)}"))

    @staticmethod
    def _learnable(method: str, gradient: str, alpha: float) -> Incompatible | None:
        if METHODS[method].fractional is None:
            usable = sorted(m for m, entry in METHODS.items() if entry.fractional is not None)
            return Incompatible(("method", "learn_alpha"), (
                f"method {method!r} has no order to learn; with learn_alpha use one of: "
                f"{', '.join(usable)}"))
        if (reason := GRADIENTS[gradient].check_order()) is not None:
            usable = sorted(g for g, mode in GRADIENTS.items() if mode.check_order() is None)
            return Incompatible(("gradient", "learn_alpha"), (
                f"gradient {gradient!r} {reason}; with learn_alpha use one of: "
                f"{', '.join(usable)}"))
        if not alpha < 1:
            return Incompatible(("alpha", "learn_alpha"), (
                f"learn_alpha starts the order at alpha and keeps it in (0, 1) (alpha = "
                f"sigmoid(logit)), so alpha must be below 1, got alpha={alpha}"))
        return None

    def solve(self, func, y0, t, *, alpha, method, step_size, gradient, rtol, atol, params):
        return fdeint(func, y0, t, alpha=alpha, method=method, step_size=step_size,
                      gradient=gradient, params=params)

    def reference_method(self, method: str) -> str:
        """The same method (the reference differs in step and precision only)."""
        return method


class TorchdiffeqEngine(Engine):
    """``torchdiffeq.odeint`` (``direct``) and ``odeint_adjoint`` (``backsolve``), ODEs only.

    Fixed-grid methods get ``options={"step_size": step_size}`` (torchdiffeq shortens the last
    step to end at the last output time, and interpolates outputs between grid times
    linearly); adaptive ones ignore ``step_size`` and keep the local error below
    ``atol + rtol |y|`` (their number of field evaluations varies with training and is
    recorded).  ``odeint_adjoint`` solves its adjoint with the same method, options and
    tolerances, for the parameters passed as ``adjoint_params``.
    """

    name = "torchdiffeq"
    #: fixed-grid methods (``step_size``) and adaptive ones (``rtol`` / ``atol``); the
    #: ``scipy_solver`` wrapper is left out (it cannot be differentiated)
    fixed = ("euler", "midpoint", "heun2", "heun3", "rk4", "explicit_adams", "implicit_adams")
    adaptive = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun")
    methods = fixed + adaptive
    gradients = ("direct", "backsolve")

    def incompatible(self, method: str, gradient: str, alpha: float,
                     learn_alpha: bool = False) -> Incompatible | None:
        """Besides a method or mode torchdiffeq lacks: any ``alpha < 1`` or a learnt order."""
        if problem := super().incompatible(method, gradient, alpha):
            return problem
        if learn_alpha:
            return Incompatible(("engine", "learn_alpha"), (
                "engine 'torchdiffeq' has no order to learn (alpha == 1 only); with "
                "learn_alpha use engine 'fdebench'"))
        if alpha != 1:
            return Incompatible(("engine", "alpha"), (
                f"engine 'torchdiffeq' solves classical ODEs only (alpha == 1), got "
                f"alpha={alpha}; for alpha < 1 use engine 'fdebench'"))
        return None

    def solve(self, func, y0, t, *, alpha, method, step_size, gradient, rtol, atol, params):
        # imported here: its import (scipy's integrators) takes 1.5 s, which every run of the
        # other engine would pay in its fresh process
        import torchdiffeq

        options = {"step_size": step_size} if method in self.fixed else None
        kwargs: dict[str, Any] = {"rtol": rtol, "atol": atol, "method": method,
                                  "options": options}
        t = t.to(y0.dtype)
        if gradient == "backsolve":
            return torchdiffeq.odeint_adjoint(func, y0, t, adjoint_params=tuple(params),
                                              **kwargs)
        return torchdiffeq.odeint(func, y0, t, **kwargs)

    def reference_method(self, method: str) -> str:
        """``euler`` for ``euler``; ``rk4`` (fdebench's classical RK4) for every other method,
        adaptive ones included: of order 4 or more at an 8 times finer step, its error is far
        below the run's."""
        return "euler" if method == "euler" else "rk4"


class TextbookEngine(Engine):
    """:func:`fdebench.engine.textbook_fdeint`: plain autograd through a textbook
    implementation (``O(N^2 |y|)`` time, every step's graph kept); ``rtol`` and ``atol`` do
    not apply, ``params`` need not be listed (autograd reaches whatever the field uses)."""

    name = "textbook"
    methods = tuple(TEXTBOOK_METHODS)
    gradients = ("direct",)

    def incompatible(self, method: str, gradient: str, alpha: float,
                     learn_alpha: bool = False) -> Incompatible | None:
        """Besides a method it lacks: any gradient but ``direct``, and a learnt order."""
        if method not in self.methods:
            return super().incompatible(method, gradient, alpha)
        if gradient not in self.gradients:
            return Incompatible(("gradient", "engine"), (
                f"engine 'textbook' has no gradient {gradient!r}; its gradients: direct (for "
                f"{gradient!r} use engine 'fdebench')"))
        if learn_alpha:
            return Incompatible(("engine", "learn_alpha"), (
                "engine 'textbook' has no learnable order (its weights are floats); with "
                "learn_alpha use engine 'fdebench'"))
        return None

    def solve(self, func, y0, t, *, alpha, method, step_size, gradient, rtol, atol, params):
        return textbook_fdeint(func, y0, t, alpha=alpha, method=method, step_size=step_size)

    def reference_method(self, method: str) -> str:
        """The same method (fdebench's, the same discretisation)."""
        return method


ENGINES: dict[str, Engine] = {
    FdebenchEngine.name: FdebenchEngine(),
    TorchdiffeqEngine.name: TorchdiffeqEngine(),
    TextbookEngine.name: TextbookEngine(),
}


def all_methods() -> set[str]:
    """Every method of some engine (what a suite's ``method`` key may name)."""
    return {m for engine in ENGINES.values() for m in engine.methods}


def incompatible(config: dict[str, Any]) -> Incompatible | None:
    """Why the engine settings of a resolved ``config`` (``engine``, ``method``, ``gradient``,
    ``alpha``, ``learn_alpha``) cannot run together (``None``: they can)."""
    engine = ENGINES[config["engine"]]
    return engine.incompatible(config["method"], config["gradient"], float(config["alpha"]),
                               bool(config.get("learn_alpha", False)))

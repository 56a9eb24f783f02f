"""Solver back-ends: the engines an :class:`~fdebench.tasks.FDEBlock` runs on (``ENGINES``).

* ``fdebench`` (the default): :func:`fdebench.engine.fdeint`, every Caputo order
  ``0 < alpha <= 1``, its methods (``euler``, ``abm``, ``l1``, ``gl``, ``rk4``), gradient
  modes (``direct``, ``adjoint``, ``checkpoint``, ``revolve``, ``continuous``, ``backsolve``,
  ``paper``) and histories (``auto``, ``fast``, ``stepwise``, and ``soe``: the compressed
  scheme, with ``soe_tol``).
* ``torchdiffeq``: Chen et al.'s ``torchdiffeq`` (``alpha == 1`` only), its fixed-grid methods
  (solved on the run's ``step_size``) and adaptive ones (controlled by ``rtol`` / ``atol``),
  differentiated by ``direct`` (``torchdiffeq.odeint``: autograd through the solver) or
  ``backsolve`` (``torchdiffeq.odeint_adjoint``: Chen et al. 2018, Alg. 1).
* ``textbook``: :func:`fdebench.engine.textbook_fdeint`, fdebench's fractional methods
  (``euler``, ``abm``, ``l1``, ``gl``; every ``0 < alpha <= 1``) written as research code writes
  them (a Python list of states, each history sum rebuilt with ``torch.stack``), ``direct``
  gradient only: the direct implementation that arXiv:2503.16666 measured its adjoint against,
  with fdebench's discretisation (same solution and gradient as ``fdebench``'s ``direct``).

Each engine says which combinations of method, gradient mode, order and history it cannot run
(:meth:`Engine.incompatible`), naming the keys involved and the valid choices; the suite loader
turns a fixed combination into a suite error and the grid expansion a combination that a grid
produces into a listed skip (:func:`incompatible`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..engine import (
    GRADIENTS,
    HISTORIES,
    METHODS,
    TEXTBOOK_METHODS,
    fdeint,
    refusal,
    textbook_fdeint,
)

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
    """A solver engine: its methods, gradient modes and histories, what it cannot run, and a
    solve."""

    name: ClassVar[str]
    methods: ClassVar[tuple[str, ...]]
    gradients: ClassVar[tuple[str, ...]]
    #: the values of the ``history`` key it runs (``auto`` alone: it has no choice)
    histories: ClassVar[tuple[str, ...]] = ("auto",)

    def incompatible(self, method: str, gradient: str, alpha: float,
                     learn_alpha: bool = False, history: str = "auto") -> Incompatible | None:
        """Why ``method`` with ``gradient`` at order ``alpha`` (a learnt order starting there
        if ``learn_alpha``) and ``history`` cannot run here (``None``: it can)."""
        if method not in self.methods:
            return Incompatible(("method", "engine"), (
                f"method {method!r} is not a method of engine {self.name!r}; its methods: "
                f"{', '.join(sorted(self.methods))}"))
        if gradient not in self.gradients:
            return Incompatible(("gradient", "engine"), (
                f"engine {self.name!r} has no gradient {gradient!r}; its gradients: "
                f"{', '.join(sorted(self.gradients))}"))
        return self._history(history)

    def _history(self, history: str) -> Incompatible | None:
        """A history this engine has no choice of."""
        if history in self.histories:
            return None
        return Incompatible(("history", "engine"), (
            f"engine {self.name!r} has no history {history!r}; its histories: "
            f"{', '.join(self.histories)} (for {history!r} use engine 'fdebench')"))

    def solve(self, func: Field, y0: torch.Tensor, t: torch.Tensor, *, alpha: float,
              method: str, step_size: float, gradient: str, rtol: float, atol: float,
              params: Sequence[torch.Tensor], history: str = "auto",
              soe_tol: float = 1e-8) -> torch.Tensor:
        """``ys`` at the times ``t`` (``ys[0] == y0``), differentiable in ``y0`` and
        ``params`` by ``gradient``; ``history`` and ``soe_tol`` as in
        :func:`fdebench.engine.fdeint` (only ``auto`` where :attr:`histories` says so)."""
        raise NotImplementedError

    def reference_method(self, method: str) -> str:
        """The ``fdebench`` method of the fine-step reference gradient of a run using
        ``method`` (see :mod:`fdebench.runner.fidelity`)."""
        raise NotImplementedError


class FdebenchEngine(Engine):
    """:func:`fdebench.engine.fdeint`; ``rtol`` and ``atol`` do not apply (fixed grids)."""

    name = "fdebench"
    methods = tuple(METHODS)
    gradients = tuple(GRADIENTS)
    histories = HISTORIES

    def incompatible(self, method: str, gradient: str, alpha: float,
                     learn_alpha: bool = False, history: str = "auto") -> Incompatible | None:
        """Besides an unknown method, mode or history: what :func:`fdebench.engine.refusal`
        refuses (``fdeint``'s own rules and reasons, in one place; its key ``learnable`` is
        ``learn_alpha`` here), and a learnt order starting at 1 (it is kept in ``(0, 1)``)."""
        if problem := super().incompatible(method, gradient, alpha, history=history):
            return problem
        if problem := refusal(method, gradient, alpha, history, learn_alpha):
            keys = tuple("learn_alpha" if key == "learnable" else key for key in problem.keys)
            return Incompatible(keys, problem.reason)
        if learn_alpha and not alpha < 1:
            return Incompatible(("alpha", "learn_alpha"), (
                f"learn_alpha starts the order at alpha and keeps it in (0, 1) (alpha = "
                f"sigmoid(logit)), so alpha must be below 1, got alpha={alpha}"))
        return None

    def solve(self, func, y0, t, *, alpha, method, step_size, gradient, rtol, atol, params,
              history="auto", soe_tol=1e-8):
        return fdeint(func, y0, t, alpha=alpha, method=method, step_size=step_size,
                      gradient=gradient, params=params, history=history, soe_tol=soe_tol)

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
                     learn_alpha: bool = False, history: str = "auto") -> Incompatible | None:
        """Besides a method, mode or history torchdiffeq lacks: any ``alpha < 1`` or a learnt
        order."""
        if problem := super().incompatible(method, gradient, alpha, history=history):
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

    def solve(self, func, y0, t, *, alpha, method, step_size, gradient, rtol, atol, params,
              history="auto", soe_tol=1e-8):
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
                     learn_alpha: bool = False, history: str = "auto") -> Incompatible | None:
        """Besides a method it lacks: any gradient but ``direct``, a learnt order, and any
        history but ``auto``."""
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
        return self._history(history)

    def solve(self, func, y0, t, *, alpha, method, step_size, gradient, rtol, atol, params,
              history="auto", soe_tol=1e-8):
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
    ``alpha``, ``learn_alpha``, ``history``) cannot run together (``None``: they can)."""
    engine = ENGINES[config["engine"]]
    return engine.incompatible(config["method"], config["gradient"], float(config["alpha"]),
                               bool(config.get("learn_alpha", False)),
                               config.get("history", "auto"))

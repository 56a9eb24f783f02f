"""Which combinations of method, gradient mode, order and history the engine runs.

One function, :func:`refusal`, decides it: :func:`~fdebench.engine.fdeint` raises its reason
as a ``ValueError``, and the harness (``fdebench.tasks``) turns it into a suite error or a
listed skip.  Each gradient mode states its own limits (``check``, ``check_history``,
``check_order`` in :mod:`fdebench.engine.mode`); this module asks them, in a fixed order, and
words the answer with the choices that work with the other arguments as given.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from .gradients import GRADIENTS
from .history import HISTORIES
from .schemes import METHODS

__all__ = ["Refusal", "refusal"]


@dataclass(frozen=True)
class Refusal:
    """Why a combination cannot run: ``reason``, one line naming the valid choices (what
    ``fdeint`` raises), and ``keys``, the names of :func:`refusal`'s arguments whose values
    make the problem, the one to change first first (``"learnable"`` for a learnable order)."""

    keys: tuple[str, ...]
    reason: str


def refusal(method: str, gradient: str, alpha: float, history: str = "auto",
            learnable: bool = False) -> Refusal | None:
    """Why ``fdeint`` cannot solve with ``method`` and differentiate with ``gradient`` at order
    ``alpha`` with ``history`` (and, if ``learnable``, with respect to alpha); ``None`` if it
    can.

    In this order: ``alpha`` outside ``(0, 1]``; an unknown method, gradient or history; a
    classical-only method (``rk4``) below ``alpha == 1``; the gradient mode's own
    ``check(method, alpha)`` (e.g. ``backsolve``: ``alpha == 1`` only); below ``alpha == 1``, a
    history the method has no form of (``soe`` for ``gl``) or the mode cannot differentiate
    (``check_history``: ``revolve`` needs ``soe``, ``adjoint`` and the approximate modes refuse
    it); for a learnable order, ``soe`` (fitted per order), a classical-only method and a mode
    that gives no derivative in alpha (``check_order``).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha <= 1:
        return Refusal(("alpha",), f"alpha must be a number in (0, 1], got {alpha!r}")
    return (_unknown(method, gradient, history)
            or _method_and_gradient(method, gradient, alpha, history)
            or (_history(method, gradient, float(alpha), history) if alpha != 1 else None)
            or (_learnable(method, gradient, history) if learnable else None))


def _unknown(method: str, gradient: str, history: str) -> Refusal | None:
    if method not in METHODS:
        return Refusal(("method",), (
            f"unknown method {method!r}; valid methods: {', '.join(sorted(METHODS))}"))
    if gradient not in GRADIENTS:
        return Refusal(("gradient",), (
            f"unknown gradient {gradient!r}; valid gradients: {', '.join(sorted(GRADIENTS))}"))
    if not isinstance(history, str) or history not in HISTORIES:
        return Refusal(("history",), (
            f"unknown history {history!r}; valid values: {', '.join(HISTORIES)}"))
    return None


def _fractional_methods() -> list[str]:
    return sorted(name for name, m in METHODS.items() if m.fractional is not None)


def _usable_modes(method: str, alpha: float, history: str) -> list[str]:
    """The gradient modes that differentiate ``method`` at ``alpha`` with ``history``."""
    return sorted(name for name, mode in GRADIENTS.items()
                  if mode.check(method, alpha) is None
                  and (alpha == 1 or mode.check_history(history) is None))


def _method_and_gradient(method: str, gradient: str, alpha: float,
                         history: str) -> Refusal | None:
    """A classical-only method below 1; the gradient mode's own check of method and order."""
    if METHODS[method].fractional is None and alpha != 1:
        return Refusal(("method", "alpha"), (
            f"method {method!r} solves classical ODEs only (alpha == 1), got alpha={alpha}; "
            f"for alpha < 1 use one of: {', '.join(_fractional_methods())}"))
    reason = GRADIENTS[gradient].check(method, float(alpha))
    if reason is None:
        return None
    usable = _usable_modes(method, float(alpha), history)
    return Refusal(("gradient", "method", "alpha"), (
        f"gradient {gradient!r} {reason}; for method {method!r} at alpha={alpha} use one "
        f"of: {', '.join(usable)}"))


def _history(method: str, gradient: str, alpha: float, history: str) -> Refusal | None:
    """Below ``alpha == 1`` (at 1 every history runs the classical scheme: there is none):
    ``soe`` compresses the product-integration and L1 kernels; a mode may refuse a history."""
    if history == "soe" and METHODS[method].compressed is None:
        compressed = sorted(name for name, m in METHODS.items() if m.compressed is not None)
        return Refusal(("history", "method", "alpha"), (
            f"history 'soe' has no compressed form of method {method!r} (its weights are not "
            f"the integrals of a kernel); with history 'soe' use one of: "
            f"{', '.join(compressed)}"))
    reason = GRADIENTS[gradient].check_history(history)
    if reason is None:
        return None
    usable = _usable_modes(method, alpha, history)
    return Refusal(("gradient", "history", "alpha"), (
        f"gradient {gradient!r} {reason}; with history {history!r} for method {method!r} at "
        f"alpha={alpha} use one of: {', '.join(usable)}"))


def _learnable(method: str, gradient: str, history: str) -> Refusal | None:
    """A learnable alpha needs an uncompressed history, a fractional scheme and a mode that
    differentiates the order."""
    if history == "soe":
        return Refusal(("history", "learnable"), (
            "history 'soe' is not differentiable in alpha (its sum of exponentials is fitted "
            "per order); for a learnable alpha use history auto, fast or stepwise, or pass "
            "alpha as a float"))
    if METHODS[method].fractional is None:
        return Refusal(("method", "learnable"), (
            f"method {method!r} has no order to learn (it solves classical ODEs only); for a "
            f"learnable alpha use one of: {', '.join(_fractional_methods())}"))
    reason = GRADIENTS[gradient].check_order()
    if reason is None:
        return None
    usable = sorted(name for name, mode in GRADIENTS.items() if mode.check_order() is None)
    return Refusal(("gradient", "learnable"), (
        f"gradient {gradient!r} {reason}; for a learnable alpha (a tensor that requires "
        f"grad) use one of: {', '.join(usable)}, or pass alpha as a float"))

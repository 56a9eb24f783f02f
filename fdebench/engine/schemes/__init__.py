"""The discretisations, and ``METHODS``: each method's scheme classes by name."""

from __future__ import annotations

from dataclasses import dataclass

from .base import Field, Scheme
from .compressed import Compressed, CompressedABM, CompressedEuler, CompressedL1
from .difference import L1, GrunwaldLetnikov
from .onestep import Euler, Heun, RungeKutta4
from .product import FractionalABM, FractionalEuler

__all__ = ["METHODS", "Compressed", "Field", "Method", "Scheme"]


@dataclass(frozen=True)
class Method:
    """One method of ``fdeint(..., method=name)``: the scheme classes it runs.

    ``fractional``: the scheme for ``0 < alpha < 1`` (and a learnable order); ``None`` for a
    method that solves classical ODEs only (``rk4``).  ``classical``: the one-step scheme it
    reduces to at ``alpha == 1``.  ``compressed``: the scheme with ``history="soe"`` (a sum of
    exponentials for the history kernel); ``None`` where the weights are not the integrals of
    a kernel (``gl``) or there is no history (``rk4``).
    """

    name: str
    fractional: type[Scheme] | None
    classical: type[Scheme]
    compressed: type[Compressed] | None = None

    def scheme(self, alpha: float, learnable: bool = False,
               history: str = "auto") -> type[Scheme]:
        """The scheme class at order ``alpha`` (the combination validated by the caller: see
        :func:`fdebench.engine.refusal`).  A learnable order keeps the fractional scheme at
        ``alpha == 1``: the classical one has no alpha.  With ``history="soe"`` a fractional
        order takes the compressed scheme; the classical schemes have no history to
        compress."""
        if alpha == 1 and not learnable:
            return self.classical
        return self.compressed if history == "soe" else self.fractional


#: method name -> :class:`Method`
METHODS: dict[str, Method] = {
    "euler": Method("euler", FractionalEuler, Euler, CompressedEuler),
    "abm": Method("abm", FractionalABM, Heun, CompressedABM),
    "l1": Method("l1", L1, Euler, CompressedL1),
    "gl": Method("gl", GrunwaldLetnikov, Euler),
    "rk4": Method("rk4", None, RungeKutta4),
}

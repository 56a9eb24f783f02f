"""The discretisations.  ``scheme_for(method, alpha)`` picks the class for a method and order."""

from __future__ import annotations

from .base import Field, Scheme
from .compressed import COMPRESSED, Compressed
from .difference import L1, GrunwaldLetnikov
from .onestep import Euler, Heun, RungeKutta4
from .product import FractionalABM, FractionalEuler

__all__ = ["COMPRESSED", "METHODS", "Compressed", "Field", "Scheme", "scheme_for"]

#: method name -> (scheme for 0 < alpha < 1, scheme for alpha == 1); ``None``: not available
METHODS: dict[str, tuple[type[Scheme] | None, type[Scheme]]] = {
    "euler": (FractionalEuler, Euler),
    "abm": (FractionalABM, Heun),
    "l1": (L1, Euler),
    "gl": (GrunwaldLetnikov, Euler),
    "rk4": (None, RungeKutta4),
}


def scheme_for(method: str, alpha: float, learnable: bool = False,
               history: str = "auto") -> type[Scheme]:
    """The scheme class of ``method`` at order ``alpha`` (validated by the caller).  A learnable
    order keeps the fractional scheme at ``alpha == 1``: the classical one has no alpha.  With
    ``history="soe"`` a fractional order takes the compressed scheme (:data:`COMPRESSED`); the
    classical schemes have no history to compress."""
    fractional, classical = METHODS[method]
    if alpha == 1 and not learnable:
        return classical
    return COMPRESSED[method] if history == "soe" else fractional

"""Approximate adjoints: gradient modes that solve an adjoint problem of the continuous FDE.

Unlike the step-wise modes of :mod:`fdebench.engine.gradients` (exact derivatives of the
discretisation), these discretise an adjoint equation on their own and differ from ``direct`` at
a finite step; what each approximates, and how fast it converges, is in its docstring.

* ``continuous`` (:mod:`.continuous`): the optimise-then-discretise adjoint of the Caputo
  problem, product integration of its Volterra equation (any method and alpha).
* ``backsolve`` (:mod:`.backsolve`): Chen et al.'s adjoint that re-integrates the state backward
  in time (alpha = 1 only).
* ``paper`` (:mod:`.paper`): the bounded Caputo-type adjoint published with arXiv 2503.16666,
  kept to reproduce and quantify that method.
"""

from .backsolve import BacksolveAdjoint
from .continuous import ContinuousAdjoint
from .paper import PaperAdjoint

__all__ = ["BacksolveAdjoint", "ContinuousAdjoint", "PaperAdjoint"]

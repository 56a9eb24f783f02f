"""fdebench's engine: neural fractional ODE solvers with direct, adjoint and checkpoint gradients
(exact for the discretisation) and the approximate adjoints continuous, backsolve and paper.

Depends on torch and numpy only; imports nothing else from fdebench.
"""

from .gradients import GRADIENTS
from .history import HISTORIES
from .schemes import METHODS
from .solve import fdeint
from .special import mittag_leffler

__all__ = ["GRADIENTS", "HISTORIES", "METHODS", "fdeint", "mittag_leffler"]

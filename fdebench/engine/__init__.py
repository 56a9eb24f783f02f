"""fdebench's engine: neural fractional ODE solvers with direct, adjoint and checkpoint gradients
(exact for the discretisation), the compressed history ``soe`` (``COMPRESSED``: its methods) with
its checkpointed adjoint ``revolve``, and the approximate adjoints continuous, backsolve and paper;
``textbook_fdeint``, the same schemes written as research code writes them (a baseline).

Depends on torch and numpy only; imports nothing else from fdebench.
"""

from .gradients import GRADIENTS
from .history import HISTORIES
from .rules import Refusal, refusal
from .schemes import METHODS, Method
from .soe import TOLERANCES as SOE_TOLERANCES
from .solve import fdeint
from .special import mittag_leffler
from .textbook import TEXTBOOK_METHODS, textbook_fdeint

__all__ = [
    "GRADIENTS", "HISTORIES", "METHODS", "SOE_TOLERANCES", "TEXTBOOK_METHODS", "Method",
    "Refusal", "fdeint", "mittag_leffler", "refusal", "textbook_fdeint",
]

"""fdebench: a benchmark harness and engine for neural fractional-order differential equations.

``fdebench.fdeint`` and ``fdebench.mittag_leffler`` are the engine's (``fdebench.engine``); they
load torch on first use, so ``fdebench.results`` and ``fdebench.report`` work without it.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "fdeint", "mittag_leffler"]


def __getattr__(name: str):
    if name in ("fdeint", "mittag_leffler"):
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'fdebench' has no attribute {name!r}")

"""fdebench: a benchmark harness and engine for neural fractional-order differential equations."""

from .engine import fdeint, mittag_leffler

__version__ = "0.1.0"
__all__ = ["__version__", "fdeint", "mittag_leffler"]

"""The errors that mean *bad input* (a file, an option, a value the user gave).

The command line prints them one line per problem and exits 2; every other exception is a bug
or a failed run and keeps its traceback.  A leaf module: every layer may raise these.
"""

from __future__ import annotations

__all__ = ["InputError", "MissingInput"]


class InputError(ValueError):
    """Bad user input; ``str(error)`` holds one line per problem."""


class MissingInput(InputError, FileNotFoundError):
    """A file or folder the user named does not exist (or holds nothing usable)."""

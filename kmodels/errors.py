"""Exception types raised by kmodels.

Every user-facing error is a `KModelsError`. Errors the user fixes by changing
a spec, a name, an argument or an input file also subclass `ValueError`, so
code that already catches `ValueError` keeps working.
"""

from __future__ import annotations


class KModelsError(Exception):
    """Base class of every error kmodels raises on purpose."""


class ConfigError(KModelsError, ValueError):
    """A spec, an override or a builder argument is invalid."""


class NotRegisteredError(ConfigError):
    """A name is not in the registry (the message lists close matches)."""


class DuplicateNameError(KModelsError, ValueError):
    """A name is registered twice (the message names both places)."""


class DataError(KModelsError, ValueError):
    """An input file or table cannot be used (the message names it and the fix)."""


class RunError(KModelsError):
    """A run could not be started, resumed or completed."""

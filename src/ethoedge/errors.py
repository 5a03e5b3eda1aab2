"""One exception type for every user-facing failure.

The CLI catches :class:`EthoedgeError` and prints its message on one line (no traceback),
exiting with status 2. Messages name the file, and the row and column where there is one.
"""

from __future__ import annotations


class EthoedgeError(Exception):
    """A problem with the user's input or configuration, explained in one message."""

    def __init__(
        self,
        message: str,
        *,
        path: object | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = path
        self.row = row
        self.column = column
        where = []
        if path is not None:
            where.append(str(path))
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)
        self.message = prefix + message


class ConfigError(EthoedgeError):
    """An invalid configuration value (unknown class, alpha outside [0, 1], ...)."""


class DataError(EthoedgeError):
    """Unreadable or invalid input data."""

"""One exception type for every user-facing failure.

The CLI catches :class:`EthoedgeError` and prints its message on one line (no traceback),
exiting with status 2. Messages name the file, and the row and column where there is one.
"""

from __future__ import annotations

import re


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
        message = re.sub(r"\s*\n\s*", " ", message).strip()  # one line, whatever a library said
        super().__init__(prefix + message)
        self.message = prefix + message


class ConfigError(EthoedgeError):
    """An invalid configuration value (unknown class, alpha outside [0, 1], ...)."""


class DataError(EthoedgeError):
    """Unreadable or invalid input data."""


def unwritable(path: object, error: OSError, *, folder: bool) -> ConfigError:
    """The one-line error for an output at ``path`` (a ``folder``, else a file) that cannot be
    written; ``error`` is what the system said. A file in the way of a folder (or a folder in
    the way of a file, also a folder in ``path`` where a file of the folder goes) is named; else
    the system's reason is given (permission denied, a read-only file system, a name too
    long, ...).

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> _ = f.write_text("x")
    >>> unwritable(f / "out", FileExistsError(17, "File exists"), folder=True).message.endswith(
    ...     "notes.txt is a file, not a folder")
    True
    """
    from pathlib import Path

    def kind(q: Path) -> str | None:  # "folder", "file" or None (absent, or cannot tell)
        try:
            return "folder" if q.is_dir() else "file" if q.exists() else None
        except OSError:  # a name too long, ...
            return None

    p = Path(str(path))
    inner = Path(error.filename) if isinstance(error, IsADirectoryError) and error.filename else p
    if not folder and kind(p) == "folder":
        why = "it is a folder; give a file name"
    elif folder and kind(p) == "file":
        why = "it is a file; give a folder"
    elif folder and inner.parent == p and kind(inner) == "folder":
        why = f"{inner} is a folder, not a file"
    else:
        blocker = next((q for q in p.parents if kind(q) == "file"), None)
        why = f"{blocker} is a file, not a folder" if blocker else (error.strerror or str(error))
    return ConfigError(f"cannot write here: {why}", path=path)

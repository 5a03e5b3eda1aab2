"""Atomic writes: a crash never leaves a half-written file or report.

Every artefact is written to a temporary file in the same directory and renamed into place
(``os.replace`` is atomic on POSIX within one file system). The folders a write creates for its
file are removed again when the write fails.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

# Files written through a temporary file get the mode a plain open() would give them
# (mkstemp makes them private to the owner): 0o666 less the process's umask, read once here.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def make_folders(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the folders created, innermost first
    (for :func:`remove_folders` when what follows fails)."""
    made = []
    for q in (folder, *folder.parents):
        try:
            if q.exists():
                break
        except OSError:  # a name too long, ...: mkdir cannot make it either
            continue
        made.append(q)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except BaseException:
        remove_folders(made)
        raise
    return made


def remove_stale_outputs(folder: Path, patterns: tuple[str, ...], written: set[str]) -> list[Path]:
    """Remove the files in ``folder`` matching one of ``patterns`` (globs of a command's own
    outputs) whose names are not in ``written``: what an earlier run left there and this run
    did not write again. Returns them, sorted."""
    stale = sorted(
        q
        for pattern in patterns
        for q in folder.glob(pattern)
        if q.name not in written and q.is_file()
    )
    for q in stale:
        q.unlink(missing_ok=True)
    return stale


def remove_folders(made: list[Path]) -> None:
    """Remove the folders :func:`make_folders` created, innermost first, where still empty."""
    for q in made:
        with contextlib.suppress(OSError):  # not made after all, or no longer empty
            q.rmdir()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_bytes(d / "a.bin", b"xyz").read_bytes()
    b'xyz'
    """
    path = Path(path)
    return atomic_write_files(path.parent, {path.name: data})[0]


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it into place only if the block succeeds.

    For writers that insist on a file name (``torch.save``, ``matplotlib.savefig``).
    """
    path = Path(path)
    made = make_folders(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    except BaseException:
        remove_folders(made)
        raise
    os.close(fd)
    try:
        os.chmod(tmp, _FILE_MODE)
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        remove_folders(made)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build a directory under a temporary name and swap it into place on success.

    An existing directory at ``path`` is replaced only once the new one is complete.
    """
    path = Path(path)
    made = make_folders(path.parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    except BaseException:
        remove_folders(made)
        raise
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_folders(made)
        raise


def atomic_write_files(
    folder: str | os.PathLike[str], files: Mapping[str, str | bytes]
) -> list[Path]:
    """Write ``files`` (name -> text, UTF-8, or bytes) into ``folder``, all or none: every file
    is written to a temporary file first and only then renamed into place. On failure the
    temporary files and the folders made for them are removed (an existing folder in the way of
    a file is :class:`IsADirectoryError` naming it). Returns the written paths, in order.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "b.txt").mkdir()
    >>> atomic_write_files(d / "new", {"a.txt": "x", "b.txt": "y"})[1].read_text()
    'y'
    >>> atomic_write_files(d, {"a.txt": "x", "b.txt": "y"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    IsADirectoryError: [Errno 21] Is a directory: '.../b.txt'
    >>> sorted(p.name for p in d.iterdir())
    ['b.txt', 'new']
    """
    folder = Path(folder)
    made = make_folders(folder)
    staged: list[tuple[str, Path]] = []
    try:
        for name, data in files.items():
            if (folder / name).is_dir():
                raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(folder / name))
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            staged.append((tmp, folder / name))
            os.fchmod(fd, _FILE_MODE)
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
                f.flush()
                os.fsync(f.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        remove_folders(made)
        raise
    return [path for _, path in staged]


def write_csv_rows(f: Any, columns: dict[str, Any]) -> None:
    """Append ``columns`` (name -> array, all one length) to the open binary file ``f`` as CSV
    rows without a header, with pyarrow's writer (several times faster than pandas'). None is
    an empty field; floats are written shortest-first (``1717200000``, ``2.5``, ``nan``);
    strings are quoted only where a value holds a comma, quote or line break (then that block
    is written with every string quoted)."""
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    table = pa.table(columns)
    buf = io.BytesIO()  # whole, so that a failed attempt leaves nothing in ``f``
    try:
        pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    except pa.ArrowInvalid:  # a structural character in a value: quote the strings
        buf = io.BytesIO()
        pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
    f.write(buf.getbuffer())

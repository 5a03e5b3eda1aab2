"""Files written through a temporary name, and the one-line user-facing error."""

from __future__ import annotations

import os
import stat

from ethoedge.errors import DataError
from ethoedge.io import atomic_path, atomic_write_text


def test_files_written_atomically_get_the_mode_of_a_plain_open(tmp_path):
    """mkstemp makes its file private (0600); the answers a user shares (windows.csv, the
    PNGs) get what open() would give under the process's umask."""
    old = os.umask(0o022)
    os.umask(old)
    want = 0o666 & ~old
    a = atomic_write_text(tmp_path / "windows.csv", "x\n")
    with atomic_path(tmp_path / "ethogram.png") as tmp:
        tmp.write_bytes(b"png")
    for p in (a, tmp_path / "ethogram.png"):
        assert stat.S_IMODE(p.stat().st_mode) == want


def test_an_error_is_one_line_whatever_a_library_said():
    e = DataError("not a readable Parquet file (Couldn't deserialize thrift:\nbad page\n)",
                  path="herd.parquet")  # fmt: skip
    assert str(e) == (
        "herd.parquet: not a readable Parquet file (Couldn't deserialize thrift: bad page )"
    )

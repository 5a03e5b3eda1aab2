"""Where recordings come from: a file, a folder of per-animal files, or a glob pattern.

>>> from ethoedge.data.sources import file_stem
>>> file_stem("cow_17.csv.gz")
'cow_17'
"""

from __future__ import annotations

import glob
from pathlib import Path

from ethoedge.errors import DataError

DATA_SUFFIXES = (".csv", ".csv.gz", ".gz", ".parquet", ".pq", ".txt", ".tsv")
# what a folder lists (a README.txt or notes beside the loggers' files are not data)
FOLDER_SUFFIXES = (".csv", ".csv.gz", ".parquet")
_STRIP = (".csv.gz", ".parquet", ".csv", ".gz", ".pq", ".txt", ".tsv")


def is_data_name(name: str) -> bool:
    """Whether a file name has one of the data suffixes (CSV, gzipped CSV, Parquet, text)."""
    return name.lower().endswith(DATA_SUFFIXES)


def file_stem(name: str | Path) -> str:
    """A file's name without its data suffix (``cow_17.csv.gz`` -> ``cow_17``): the animal id
    of a per-animal file without an animal column."""
    name = Path(name).name
    for suf in _STRIP:
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


def folder_files(folder: Path) -> list[Path]:
    """The data files (``.csv``, ``.csv.gz``, ``.parquet``) directly inside ``folder``, sorted
    by name (hidden files skipped).

    Raises:
        DataError: one of them is a link to nothing.
    """
    found = sorted(
        q
        for q in folder.iterdir()
        if q.name.lower().endswith(FOLDER_SUFFIXES) and q.name[0] != "." and not q.is_dir()
    )
    for q in found:
        if not q.is_file():
            raise DataError("a link to a file that does not exist", path=q)
    return found


def data_files(spec: str | Path) -> list[Path]:
    """The data files named by ``spec``: a file (itself), a folder (its data files, sorted) or
    a glob pattern such as ``logs/cow_*.csv`` (its matching data files, sorted).

    Raises:
        DataError: nothing matches, or a named file does not exist.
    """
    p = Path(spec)
    if p.is_dir():
        files = folder_files(p)
        if not files:
            raise DataError(f"folder holds no data files ({', '.join(FOLDER_SUFFIXES)})", path=p)
        return files
    if p.exists():
        return [p]
    if glob.has_magic(str(spec)):
        files = sorted(Path(m) for m in glob.glob(str(spec)) if is_data_name(m))
        files = [f for f in files if f.is_file()]
        if not files:
            raise DataError("no data files match this pattern", path=p)
        return files
    raise DataError("file not found", path=p)

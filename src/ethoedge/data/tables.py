"""Reading data tables: CSV / CSV.gz / Parquet files with one clear error per problem.

Every problem with a file is a :class:`~ethoedge.errors.DataError` naming the file, and the
row (1-based file line, header = line 1; for Parquet the 1-based record) and column where
there is one. Shared by the sensor loaders and the annotation reader.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ethoedge.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

STRING_COLUMNS = ("animal", "label", "label_group", "segment", "session")


def _kind(path: Path) -> str:
    """``"gzip"``, ``"parquet"`` or ``"text"``, from the file's first bytes."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except IsADirectoryError:
        raise DataError("is a folder, not a data file", path=path) from None
    except OSError as e:
        raise DataError(f"cannot read the file ({e.strerror or e})", path=path) from None
    if magic[:2] == b"\x1f\x8b":
        return "gzip"
    if magic == b"PAR1":
        return "parquet"
    if path.name.lower().endswith(".gz"):
        raise DataError(
            "not a gzip file (the name ends in .gz but the content does not)", path=path
        )
    if path.name.lower().endswith((".parquet", ".pq")):
        raise DataError("not a Parquet file (no PAR1 magic bytes)", path=path)
    return "text"


def _open_text(path: Path, kind: str) -> io.TextIOBase:
    if kind == "gzip":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _corrupt(path: Path, kind: str, e: BaseException) -> DataError:
    if isinstance(e, UnicodeDecodeError):
        bad = _not_utf8(path, kind)
        if bad is not None:
            return bad
    what = "truncated or corrupt gzip file" if kind == "gzip" else "unreadable file"
    return DataError(f"{what} ({type(e).__name__}: {e})", path=path)


def _not_utf8(path: Path, kind: str) -> DataError | None:
    """The error naming the first line of a text file that is not UTF-8 (the decoder's own
    position counts from a buffer of the parser's, not from the file's start); None where
    every line decodes or the file cannot be read again."""
    try:
        with gzip.open(path, "rb") if kind == "gzip" else open(path, "rb") as f:
            for row, line in enumerate(f, start=1):
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError as e:
                    return DataError(
                        f"not UTF-8 text (byte 0x{line[e.start]:02x}, e.g. Latin-1 or UTF-16):"
                        " save the file as UTF-8",
                        path=path,
                        row=row,
                    )
    except (EOFError, OSError, zlib.error):
        pass
    return None


def read_header(path: Path, sep: str = ",") -> list[str]:
    """Column names of a data file (stripped, lower-case); ``sep``: the CSV delimiter."""
    kind = _kind(path)
    if kind == "parquet":
        try:
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
        except Exception as e:  # pyarrow raises several types for bad files
            raise DataError(f"not a readable Parquet file ({e})", path=path) from e
        return _distinct(names, path, None)
    try:
        with _open_text(path, kind) as f:
            line = f.readline()
    except (EOFError, OSError, zlib.error, UnicodeDecodeError) as e:
        raise _corrupt(path, kind, e) from e
    if not line.strip():
        raise DataError("file is empty (no header line)", path=path)
    cols = next(csv.reader([line], delimiter=sep))
    if len(cols) == 1 and sep == ",":
        for other, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if other in line:
                raise DataError(
                    f"the header is {name}-separated ({other!r}); ethoedge reads comma-separated"
                    f" CSV: convert the file (e.g. pandas.read_csv(f, sep={other!r}).to_csv(out))",
                    path=path,
                    row=1,
                )
    return _distinct(cols, path, 1)


def _distinct(names: list[str], path: Path, row: int | None) -> list[str]:
    """The column names stripped and lower-cased; two that become one name are an error
    (unnamed columns, such as a spreadsheet's empty ones at the end of each line, aside)."""
    out = [str(c).strip().lower() for c in names]
    seen: dict[str, str] = {}
    for raw, name in zip(names, out, strict=True):
        if name in seen and name:
            raise DataError(
                f"two columns named {seen[name]!r} and {raw!r}: column names must differ after"
                " stripping blanks and lower-casing",
                path=path,
                row=row,
                column=name,
            )
        seen[name] = raw
    return out


def _raw_lines(path: Path, kind: str, wanted: set[int]) -> dict[int, str]:
    """The raw text of the given 1-based file lines."""
    out: dict[int, str] = {}
    if not wanted:
        return out
    last = max(wanted)
    with _open_text(path, kind) as f:
        for i, line in enumerate(f, start=1):
            if i in wanted:
                out[i] = line.rstrip("\r\n")
            if i >= last:
                break
    return out


_TOKENIZE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def read_table(
    path: Path, sep: str = ",", string_columns: tuple[str, ...] = STRING_COLUMNS
) -> tuple[pd.DataFrame, np.ndarray]:
    """Read the whole file; return the frame (columns stripped/lower-cased) and line numbers.

    ``sep``: the CSV delimiter; ``string_columns``: columns read as text (categoricals).
    """
    kind = _kind(path)
    if kind == "parquet":
        try:
            import pyarrow.parquet as pq

            schema = pq.read_schema(path)
            df = pd.read_parquet(path)
        except Exception as e:
            raise DataError(f"not a readable Parquet file ({e})", path=path) from e
        first = 1
    else:
        # Read every column (not usecols): only then does the parser catch over-long rows.
        raw_names = _raw_header(path, kind, sep)
        dtype = text_dtypes(raw_names, string_columns)
        try:
            df = pd.read_csv(
                path,
                sep=sep,
                compression="gzip" if kind == "gzip" else None,
                encoding="utf-8-sig",
                skip_blank_lines=False,
                dtype=dtype,  # type: ignore[arg-type]
                low_memory=False,
            )
        except _CSV_ERRORS as e:
            raise _csv_error(path, kind, e) from e
        as_categories(df, dtype)
        first = 2
        _check_index(path, df, 0, first)
    df.columns = [str(c).strip().lower() for c in df.columns]
    lines = np.arange(first, first + len(df), dtype=np.int64)
    if kind == "parquet":
        check_flat_text(schema, df, lines, path, string_columns)
    elif len(df):
        df, lines = _drop_blank_rows(df, lines)
    if len(df) == 0:
        raise DataError("the file has a header but no data rows", path=path)
    return df, lines


def check_flat_text(
    schema: pa.Schema,
    df: pd.DataFrame,
    lines: np.ndarray,
    path: Path,
    string_columns: tuple[str, ...],
) -> None:
    """A Parquet text column (ids, labels) of lists, structs or maps is an error naming its
    first row with a value: such values are neither text nor a number."""
    import pyarrow as pa

    for f in schema:
        name = str(f.name).strip().lower()
        if name not in string_columns or name not in df.columns or not pa.types.is_nested(f.type):
            continue
        present = df[name].notna().to_numpy()
        if present.any():
            i = int(np.flatnonzero(present)[0])
            raise DataError(
                f"{f.type} values where text is expected (ids and labels are text or numbers)",
                path=path,
                row=int(lines[i]),
                column=name,
            )


_F32_MAX = float(np.finfo(np.float32).max)


def not_finite(acc: np.ndarray) -> np.ndarray:
    """Values that are NaN or inf, or become inf as float32 (e.g. 1e300): the models and
    windows hold float32 acceleration."""
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(acc) | (np.abs(acc) > _F32_MAX)


def text_dtypes(raw_names: list[str], string_columns: tuple[str, ...]) -> dict[str, type]:
    """The CSV parser's dtypes of the id and label columns: text as written (a category dtype
    would let the parser read ``007`` as the number 7)."""
    return {n: str for n in raw_names if n.strip().lower() in string_columns}


def as_categories(df: pd.DataFrame, dtype: dict[str, type]) -> None:
    """The text columns as categoricals (codes and distinct values, no per-row strings kept)."""
    for n in dtype:
        if n in df.columns:
            df[n] = df[n].astype("category")


_CSV_ERRORS = (
    pd.errors.EmptyDataError,
    pd.errors.ParserError,
    EOFError,
    OSError,
    zlib.error,
    UnicodeDecodeError,
)


def _csv_error(path: Path, kind: str, e: BaseException) -> DataError:
    """The one-line error for an exception in ``_CSV_ERRORS`` raised while parsing a CSV."""
    if isinstance(e, pd.errors.EmptyDataError):
        return DataError("file is empty (no header line)", path=path)
    if isinstance(e, pd.errors.ParserError):
        m = _TOKENIZE.search(str(e))
        if m:
            exp, line, saw = (int(g) for g in m.groups())
            return DataError(
                f"ragged row: {saw} fields where the header has {exp}", path=path, row=line
            )
        return DataError(f"cannot parse CSV ({e})", path=path)
    return _corrupt(path, kind, e)


def _check_index(path: Path, df: pd.DataFrame, start: int, first_line: int) -> None:
    """A CSV chunk whose first row (file line ``first_line``, record ``start``) has one field
    more than the header is read by pandas with its first column as the row index, every
    column shifted by one (a delimiter at the end of each line does that): a ragged row."""
    if len(df) and not df.index.equals(pd.RangeIndex(start, start + len(df))):
        n = df.shape[1]
        raise DataError(
            f"ragged row: {n + 1} fields where the header has {n}", path=path, row=first_line
        )


def _drop_blank_rows(df: pd.DataFrame, lines: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Drop the rows of blank lines (missing in every column) and their line numbers."""
    blank = np.array(df.iloc[:, 0].isna())
    if blank.any():
        blank[blank] = df.loc[blank].isna().all(axis=1).to_numpy()
    if blank.any():
        df = df.loc[~blank].reset_index(drop=True)
        lines = lines[~blank]
    return df, lines


def _raw_header(path: Path, kind: str, sep: str = ",") -> list[str]:
    with _open_text(path, kind) as f:
        return next(csv.reader([f.readline()], delimiter=sep))


def _check_ragged(
    path: Path, df: pd.DataFrame, lines: np.ndarray, missing: np.ndarray, sep: str = ","
) -> None:
    """If the first rows with missing values are short rows, say so (text files only;
    ``sep``: the field separator)."""
    kind = _kind(path)
    if kind == "parquet" or not missing.any():
        return
    rows = lines[np.flatnonzero(missing)[:20]]
    raw = _raw_lines(path, kind, {int(r) for r in rows})
    for r in rows:
        text = raw.get(int(r))
        if text is None:
            continue
        n = len(next(csv.reader([text], delimiter=sep))) if text else 0
        if n != df.shape[1]:
            raise DataError(
                f"ragged row: {n} fields where the header has {df.shape[1]}", path=path, row=int(r)
            )


# Numeric timestamps are seconds; beyond this (the year 2262 as Unix time) no clock time can
# be given to them (bouts, days): milliseconds or microseconds, most likely.
MAX_SECONDS = 9.2e9


def _in_seconds(t: np.ndarray, lines: np.ndarray, path: Path) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        far = np.isfinite(t) & (np.abs(t) > MAX_SECONDS)  # inf: named as non-finite later
    if far.any():
        i = int(np.flatnonzero(far)[0])
        raise DataError(
            f"timestamp {t[i]:.6g} is past the year 2262 as seconds: timestamps are seconds"
            " (milliseconds? divide by 1000)",
            path=path,
            row=int(lines[i]),
            column="timestamp",
        )
    return t


# The end of an ISO 8601 date-time with a zone: ``Z`` or a UTC offset (+02:00, +0200, -05).
_ZONE_END = r"(?:[Zz]|[+-]\d\d(?::?\d\d)?)$"


def _has_zone(text: pd.Series) -> np.ndarray:
    """Whether each ISO 8601 date-time (text) ends in a zone, as column operations on the last
    6 characters. A date alone (``YYYY-MM-DD``, 10 characters) has none: its ``-DD`` is no
    offset."""
    s = text.str.strip()
    zoned = s.str.slice(-6).str.contains(_ZONE_END, regex=True, na=False) & (s.str.len() > 10)
    return zoned.to_numpy(dtype=bool, na_value=False)


def timestamp_zone(col: pd.Series) -> bool | None:
    """Whether the first timestamp of a column is an ISO 8601 date-time with a time zone;
    None where it is no such text (a number, a datetime). A stream passes this from a file's
    first chunk to :func:`_parse_timestamps` of the chunks after it."""
    if not len(col) or not (pd.api.types.is_string_dtype(col) or col.dtype == object):
        return None
    first = col.iloc[:1]
    if not isinstance(first.iloc[0], str) or pd.to_numeric(first, errors="coerce").notna().iloc[0]:
        return None
    return bool(_has_zone(first)[0])


def timestamp_kind(col: pd.Series) -> str | None:
    """The kind of the first timestamp of a column: ``"number"`` (seconds) or ``"text"`` (not
    a number: ISO 8601, or a value that is neither); None for a datetime or duration column
    (Parquet: one type for the whole file). A stream passes this from a file's first chunk to
    :func:`_parse_timestamps` of the chunks after it."""
    if not len(col):
        return None
    if pd.api.types.is_numeric_dtype(col):
        return "number"
    if not (pd.api.types.is_string_dtype(col) or col.dtype == object):
        return None
    return "number" if pd.to_numeric(col.iloc[:1], errors="coerce").notna().iloc[0] else "text"


def _parse_timestamps(
    col: pd.Series,
    lines: np.ndarray,
    path: Path,
    zoned: bool | None = None,
    kind: str | None = None,
) -> np.ndarray:
    """Seconds (float64) from numbers, datetimes or durations (Parquet) or ISO 8601 strings.

    Numbers and ISO 8601 strings are not mixed: the first row whose kind differs from the
    first row's (``kind``: the file's first timestamp's, for a chunk after the first; see
    :func:`timestamp_kind`) is an error, as is a value that is neither. ISO 8601 strings all
    have a time zone or none, as the first (``zoned``: likewise; see :func:`timestamp_zone`)."""
    if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col):
        dt = col if isinstance(col.dtype, pd.DatetimeTZDtype) else col.dt.tz_localize("UTC")
        secs = (dt - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
        return secs.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_timedelta64_dtype(col):  # a duration (Parquet): seconds from its origin
        secs = col / pd.Timedelta(seconds=1)
        return _in_seconds(secs.to_numpy(dtype=np.float64, na_value=np.nan), lines, path)
    if pd.api.types.is_numeric_dtype(col):
        if kind == "text" and len(col):
            _mixed_kinds(col, lines, path, 0, kind)
        return _in_seconds(col.to_numpy(dtype=np.float64), lines, path)
    num = pd.to_numeric(col, errors="coerce")
    not_num = (num.isna() & col.notna()).to_numpy()
    if kind is None:
        present = col.notna().to_numpy()
        kind = "text" if present.any() and not_num[np.argmax(present)] else "number"
    if kind == "number":
        if not_num.any():
            _mixed_kinds(col, lines, path, int(np.flatnonzero(not_num)[0]), kind)
        return _in_seconds(num.to_numpy(dtype=np.float64), lines, path)
    dt = pd.to_datetime(col, format="ISO8601", utc=True, errors="coerce")
    bad = (num.notna() | dt.isna()) & col.notna()
    if bad.any():
        _mixed_kinds(col, lines, path, int(np.flatnonzero(bad.to_numpy())[0]), kind)
    _check_zones(col, lines, path, zoned)
    secs = (dt - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return secs.to_numpy(dtype=np.float64, na_value=np.nan)


def _mixed_kinds(col: pd.Series, lines: np.ndarray, path: Path, i: int, kind: str) -> None:
    """Raise the error for row ``i``: a timestamp of the other kind than ``kind`` (the first
    row's: ``"number"`` or ``"text"``, ISO 8601), or one that is neither."""
    v = col.iloc[i]
    v = v.item() if isinstance(v, np.generic) else v
    one = col.iloc[i : i + 1]
    if kind == "text" and pd.to_numeric(one, errors="coerce").notna().iloc[0]:
        what = "is a number where earlier rows are ISO 8601 text"
    elif (
        kind == "number"
        and pd.to_datetime(one, format="ISO8601", utc=True, errors="coerce").notna().iloc[0]
    ):
        what = "is ISO 8601 text where earlier rows are numbers (seconds)"
    else:
        raise DataError(
            f"cannot parse timestamp {v!r} (expected seconds or ISO 8601)",
            path=path,
            row=int(lines[i]),
            column="timestamp",
        )
    raise DataError(
        f"timestamp {v!r} {what}: give every timestamp as seconds, or every one as ISO 8601",
        path=path,
        row=int(lines[i]),
        column="timestamp",
    )


def _check_zones(col: pd.Series, lines: np.ndarray, path: Path, zoned: bool | None) -> None:
    """ISO 8601 timestamps with a zone beside ones without (which would be read as UTC) are an
    error naming the first row whose kind differs from ``zoned`` (None: the first row's).
    Text only: date or date-time objects (a Parquet ``date32`` column) carry their own."""
    if pd.api.types.infer_dtype(col, skipna=True) != "string":
        return
    present = col.notna().to_numpy()
    if not present.any():
        return
    has = _has_zone(col)
    if zoned is None:
        zoned = bool(has[np.argmax(present)])
    odd = present & (has != zoned)
    if odd.any():
        i = int(np.flatnonzero(odd)[0])
        text = str(col.iloc[i]).strip()
        if zoned:
            what = "has no time zone where earlier rows have one"
        else:
            what = "has a time zone where earlier rows have none"
        raise DataError(
            f"timestamp {text!r} {what}: give every timestamp a zone, or none",
            path=path,
            row=int(lines[i]),
            column="timestamp",
        )


def _numeric(col: pd.Series, name: str, lines: np.ndarray, path: Path) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    num = pd.to_numeric(col, errors="coerce")
    bad = (num.isna() & col.notna()).to_numpy()
    if pd.api.types.is_bool_dtype(num):  # True/False are not measurements
        bad = col.notna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        v = col.iloc[i]
        v = v.item() if isinstance(v, np.generic) else v  # True, not np.True_
        raise DataError(f"non-numeric value {v!r}", path=path, row=int(lines[i]), column=name)
    return num.to_numpy(dtype=np.float64, na_value=np.nan)


def _factor(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and distinct values of a string column; blanks stripped, -1 = missing.

    >>> codes, uniq = _factor(pd.Series(["b", " a", None, "b ", ""], dtype=object))
    >>> codes.tolist(), uniq
    ([0, 1, -1, 0, -1], ['b', 'a'])
    """
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes, raw = col.cat.codes.to_numpy(dtype=np.int64), list(col.cat.categories)
    else:
        codes, raw = pd.factorize(col.to_numpy(dtype=object), use_na_sentinel=True)
    uniq: list[str] = []
    index: dict[str, int] = {}
    remap = np.full(len(raw) + 1, -1, dtype=np.int64)  # last entry: missing stays -1
    for i, u in enumerate(raw):
        v = str(u).strip()
        if v:
            remap[i] = index.setdefault(v, len(uniq))
            if remap[i] == len(uniq):
                uniq.append(v)
    return remap[codes], uniq

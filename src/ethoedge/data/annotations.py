"""Annotation intervals (behaviour coded from video) joined to sensor samples by time.

Two layouts, told apart by their columns (CSV, TSV or CSV.gz; names matched after stripping
blanks and lower-casing):

* generic: ``animal, start, end, label``; ``start``/``end`` are seconds since the Unix epoch
  (UTC) or ISO 8601 date-times with a zone (``2024-05-13T10:04:00+02:00``, ``...Z``); naive
  date-times need ``tz``.
* BORIS "aggregated events" export: ``Subject, Behavior, Behavior type, Start (s), Stop (s)``
  (and ``Observation id``, ``Media file name`` or ``Source``). ``STATE`` events are intervals;
  ``POINT`` events have no duration and are ignored (counted in :attr:`Annotations.notes`).
  BORIS times are seconds from the start of the observation's media, so ``video_start`` says
  when that was: one date-time for every observation, or a table ``observation, start``
  whose ``observation`` is an observation id or a media file name.

An interval is half-open, ``[start, end)``: a sample at ``end`` belongs to the next interval.
Intervals of one animal must not overlap. Every problem is one
:class:`~ethoedge.errors.DataError` line naming the file, row (file line, header = 1) and
column.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "a.csv"
>>> _ = p.write_text("animal,start,end,label\\ncow1,10,20,grazing\\ncow1,20,25,walking\\n")
>>> ann = read_annotations(p)
>>> ann.label_samples("cow1", np.array([9.9, 10.0, 19.9, 20.0, 25.0])).tolist()
[None, 'grazing', 'grazing', 'walking', None]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ethoedge.data.tables import _check_ragged, _kind, _open_text, read_header, read_table
from ethoedge.errors import ConfigError, DataError

GENERIC = ("animal", "start", "end", "label")
BORIS = ("subject", "behavior", "behavior type", "start (s)", "stop (s)")
BORIS_KEYS = ("observation id", "media file name", "source")
NO_SUBJECT = {"", "no focal subject"}
_TEXT_COLUMNS = ("animal", "label", "subject", "behavior", "behavior type", *BORIS_KEYS)
_ZONE = re.compile(r"[T ]\d{1,2}:\d{2}(:\d{2}(\.\d*)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)$", re.I)


def iso_utc(seconds: float) -> str:
    """A POSIX time as ISO 8601 UTC, for messages.

    >>> iso_utc(0.5)
    '1970-01-01T00:00:00.500Z'
    >>> iso_utc(1e300)  # beyond the calendar: as seconds
    '1e+300 s'
    """
    try:
        dt = datetime.fromtimestamp(float(seconds), UTC)
    except (OverflowError, OSError, ValueError):
        return f"{float(seconds):g} s"
    return dt.isoformat(timespec="milliseconds")[:-6] + "Z"


@dataclass(frozen=True)
class _Animal:
    """One animal's intervals, sorted by start."""

    start: np.ndarray  # float64
    end: np.ndarray  # float64
    label: np.ndarray  # object (str)
    row: np.ndarray  # int64 file lines


class Annotations:
    """Behaviour intervals per animal, read by :func:`read_annotations`.

    Attributes:
        source: the annotation file.
        notes: what the reader skipped (BORIS point events).
        animal_column, start_column, end_column, label_column: the file's column names, for
            messages.
    """

    def __init__(
        self,
        source: str,
        animal: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
        label: np.ndarray,
        row: np.ndarray,
        columns: tuple[str, str, str, str] = GENERIC,
        notes: tuple[str, ...] = (),
    ) -> None:
        self.source = source
        self.notes = notes
        self.animal_column, self.start_column, self.end_column, self.label_column = columns
        self._labels = list(dict.fromkeys(str(v) for v in label))
        self._by_animal: dict[str, _Animal] = {}
        animal = np.asarray(animal, dtype=object)
        for a in dict.fromkeys(animal.tolist()):
            m = animal == a
            order = np.argsort(start[m], kind="stable")
            self._by_animal[str(a)] = _Animal(
                start=np.asarray(start[m][order], dtype=np.float64),
                end=np.asarray(end[m][order], dtype=np.float64),
                label=np.asarray(label[m][order], dtype=object),
                row=np.asarray(row[m][order], dtype=np.int64),
            )

    def __len__(self) -> int:
        return sum(len(v.start) for v in self._by_animal.values())

    @property
    def animals(self) -> set[str]:
        """The animals that have intervals."""
        return set(self._by_animal)

    @property
    def behaviours(self) -> list[str]:
        """The distinct behaviours, in order of first appearance in the file."""
        return list(self._labels)

    def interval_index(self, animal: str, t: np.ndarray) -> np.ndarray:
        """For each time in ``t`` the index of the covering interval among ``animal``'s
        (sorted by start), or -1 where none covers it."""
        t = np.asarray(t, dtype=np.float64)
        iv = self._by_animal.get(str(animal))
        if iv is None or len(iv.start) == 0:
            return np.full(t.shape, -1, dtype=np.int64)
        idx = np.searchsorted(iv.start, t, side="right") - 1
        ok = idx >= 0
        ok[ok] = t[ok] < iv.end[idx[ok]]
        return np.where(ok, idx, -1).astype(np.int64)

    def label_samples(self, animal: str, t: np.ndarray) -> np.ndarray:
        """Labels of the samples of ``animal`` at times ``t`` (float64 POSIX seconds, UTC): an
        object array, ``None`` where no interval covers the sample."""
        idx = self.interval_index(animal, t)
        out = np.full(idx.shape, None, dtype=object)
        iv = self._by_animal.get(str(animal))
        if iv is not None:
            ok = idx >= 0
            out[ok] = iv.label[idx[ok]]
        return out

    def samples_per_interval(self, animal: str, t: np.ndarray) -> np.ndarray:
        """How many of the times ``t`` each of ``animal``'s intervals (sorted by start)
        covers; summed over the chunks of a recording, it feeds :meth:`check_covered`."""
        iv = self._by_animal.get(str(animal))
        n = 0 if iv is None else len(iv.start)
        idx = self.interval_index(animal, t)
        return np.bincount(idx[idx >= 0], minlength=n)

    def check_covered(self, hits: dict[str, np.ndarray]) -> None:
        """An interval that covers no sample of its animal (``hits``: per animal, what
        :meth:`samples_per_interval` counted over all its samples) lies in a gap between its
        recordings: a :class:`DataError` naming its row."""
        for a, h in hits.items():
            iv = self._by_animal.get(str(a))
            if iv is None or not (np.asarray(h) == 0).any():
                continue
            j = int(np.flatnonzero(np.asarray(h) == 0)[0])
            raise DataError(
                f"interval [{iso_utc(iv.start[j])}, {iso_utc(iv.end[j])}) of animal {a!r} covers"
                " no sample: it lies in a gap between its recordings",
                path=self.source,
                row=int(iv.row[j]),
                column=self.start_column,
            )

    def intervals(self, animal: str) -> _Animal | None:
        """The intervals of one animal (sorted by start), or None."""
        return self._by_animal.get(str(animal))

    def check_against(self, recordings: dict[str, tuple[float, float]]) -> None:
        """Check every interval against the recorded time span ``(first, last)`` sample time of
        each animal: an interval of an animal with no recording, or one that covers no time of
        its animal's span, is a :class:`DataError` naming its row."""
        known = sorted(recordings)
        for a, iv in self._by_animal.items():
            if a not in recordings:
                shown = known[:10] + (["..."] if len(known) > 10 else [])
                raise DataError(
                    f"annotation for animal {a!r}, which has no recording (animals in the"
                    f" data: {shown})",
                    path=self.source,
                    row=int(iv.row.min()),
                    column=self.animal_column,
                )
            t0, t1 = recordings[a]
            out = (iv.end <= t0) | (iv.start > t1)
            if out.any():
                j = int(np.flatnonzero(out)[0])
                raise DataError(
                    f"interval [{iso_utc(iv.start[j])}, {iso_utc(iv.end[j])}) of animal {a!r} is"
                    f" outside its recording ({iso_utc(t0)} to {iso_utc(t1)})",
                    path=self.source,
                    row=int(iv.row[j]),
                    column=self.start_column,
                )


def read_annotations(
    path: str | Path,
    *,
    video_start: str | None = None,
    tz: str | None = None,
    behaviours: Iterable[str] | None = None,
) -> Annotations:
    """Read a generic or BORIS annotation file (layouts in the module docstring).

    Args:
        path: the annotation file.
        video_start: for relative (BORIS) times: one ISO 8601 date-time, or the path of a
            table with columns ``observation`` and ``start``.
        tz: time zone of naive date-times (IANA name or ``UTC``); ``None``: naive times are
            an error.
        behaviours: the allowed behaviours; another one is an error (``None``: any).

    Raises:
        DataError: one line naming the file, row and column of the first problem.
        ConfigError: an unknown time zone.
    """
    path = Path(path)
    if not path.exists():
        raise DataError("annotation file not found", path=path)
    if path.is_dir():
        raise DataError("is a folder, not an annotation file", path=path)
    if tz is not None:
        _check_tz(tz)
    sep = _sniff_sep(path)
    header = read_header(path, sep)
    if set(BORIS) <= set(header):
        kind = "boris"
    elif set(GENERIC) <= set(header):
        kind = "generic"
    else:
        raise DataError(
            "not an annotation table: expected columns animal, start, end, label (generic) or"
            " Subject, Behavior, Behavior type, Start (s), Stop (s) (a BORIS aggregated-events"
            f" export); found {header}",
            path=path,
        )
    df, lines = read_table(path, sep, string_columns=_TEXT_COLUMNS)
    _check_ragged(path, df, lines, df.isna().any(axis=1).to_numpy(), sep)  # short rows first
    notes: list[str] = []
    if kind == "generic":
        cols = GENERIC
        animal = _text(df, "animal", lines, path)
        label = _text(df, "label", lines, path)
        start = _times(df["start"], "start", lines, path, tz)
        _check_zones_agree(df["start"], df["end"], lines, path)
        end = _times(df["end"], "end", lines, path, tz)
    else:
        cols = ("subject", "start (s)", "stop (s)", "behavior")
        btype = _text(df, "behavior type", lines, path)
        low = np.char.lower(btype.astype(str))
        state = np.char.startswith(low, "state")
        point = np.char.startswith(low, "point")
        bad = ~(state | point)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"behavior type {btype[i]!r} is neither STATE nor POINT",
                path=path,
                row=int(lines[i]),
                column="behavior type",
            )
        if point.any():
            notes.append(
                f"ignored {int(point.sum()):,} BORIS point events (no duration) in {path.name}"
            )
        df, lines = df.loc[state].reset_index(drop=True), lines[state]
        if len(df) == 0:
            raise DataError("the BORIS export has no state events", path=path)
        animal = _text(df, "subject", lines, path)
        nosub = np.isin(np.char.lower(animal.astype(str)), list(NO_SUBJECT))
        if nosub.any():
            i = int(np.flatnonzero(nosub)[0])
            raise DataError(
                f"event without a subject ({animal[i]!r}): the animal of every state event"
                " must be its BORIS subject",
                path=path,
                row=int(lines[i]),
                column="subject",
            )
        label = _text(df, "behavior", lines, path)
        rel0 = _relative(df["start (s)"], "start (s)", lines, path)
        rel1 = _relative(df["stop (s)"], "stop (s)", lines, path)
        origin = _video_origin(df, lines, path, video_start, tz)
        start, end = origin + rel0, origin + rel1
    bad = ~(end > start)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"interval ends ({iso_utc(end[i])}) at or before it starts ({iso_utc(start[i])})",
            path=path,
            row=int(lines[i]),
            column=cols[2],
        )
    if behaviours is not None:
        allowed = list(dict.fromkeys(str(b) for b in behaviours))
        unknown = ~np.isin(label.astype(str), allowed)
        if unknown.any():
            i = int(np.flatnonzero(unknown)[0])
            raise DataError(
                f"unknown behaviour {label[i]!r} (known: {allowed}; map it with data.label_map"
                " or list it in data.labels.behaviours)",
                path=path,
                row=int(lines[i]),
                column=cols[3],
            )
    ann = Annotations(str(path), animal, start, end, label, lines, cols, tuple(notes))
    _check_overlaps(ann, path)
    return ann


def _sniff_sep(path: Path) -> str:
    """Tab for a tab-separated header (BORIS writes TSV), else comma."""
    try:
        with _open_text(path, _kind(path)) as f:
            line = f.readline()
    except (EOFError, OSError, UnicodeDecodeError):
        return ","  # read_header reports the problem
    return "\t" if line.count("\t") > line.count(",") else ","


def _check_tz(tz: str) -> None:
    try:
        pd.Timestamp("2000-01-01").tz_localize(tz)
    except Exception as e:
        raise ConfigError(f"unknown time zone {tz!r} (an IANA name such as Europe/Berlin)") from e


def _text(df: pd.DataFrame, name: str, lines: np.ndarray, path: Path) -> np.ndarray:
    col = df[name]
    vals = np.array(
        ["" if pd.isna(v) else str(v).strip() for v in col.astype(object)], dtype=object
    )
    empty = vals == ""
    if name not in ("subject",) and empty.any():
        i = int(np.flatnonzero(empty)[0])
        raise DataError("missing value", path=path, row=int(lines[i]), column=name)
    return vals


def _finite(
    num: np.ndarray, what: Callable[[int], str], name: str, lines: np.ndarray, path: Path
) -> np.ndarray:
    """``num``, or a :class:`DataError` at its first value that is not finite (``what(i)``
    says what is wrong with the value at ``i``)."""
    bad = ~np.isfinite(num)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(what(i), path=path, row=int(lines[i]), column=name)
    return num


def _relative(col: pd.Series, name: str, lines: np.ndarray, path: Path) -> np.ndarray:
    if col.isna().any():
        i = int(np.flatnonzero(col.isna().to_numpy())[0])
        raise DataError("missing value", path=path, row=int(lines[i]), column=name)
    num = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    values = col.astype(object)  # the cells as written: 'zero', inf (not np.float64(inf))
    return _finite(num, lambda i: f"not a number of seconds: {values.iloc[i]!r}", name, lines, path)


def _times(col: pd.Series, name: str, lines: np.ndarray, path: Path, tz: str | None) -> np.ndarray:
    """POSIX seconds from epoch seconds or ISO 8601 date-times (naive ones in ``tz``)."""
    if col.isna().any():
        i = int(np.flatnonzero(col.isna().to_numpy())[0])
        raise DataError("missing value", path=path, row=int(lines[i]), column=name)
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        num = col.to_numpy(dtype=np.float64)
        return _finite(num, lambda i: f"not a finite time: {num[i]:g}", name, lines, path)
    text = [str(v).strip() for v in col.astype(object)]
    return parse_datetimes(text, name, lines, path, tz)


def _zoned(col: pd.Series) -> np.ndarray:
    """Whether each entry of a column of times is a date-time with a zone (numbers: no)."""
    return np.array([bool(_ZONE.search(str(v).strip())) for v in col.astype(object)])


def _check_zones_agree(start: pd.Series, end: pd.Series, lines: np.ndarray, path: Path) -> None:
    """One row's start and end both with a zone or both without: a zoned start beside a naive
    end (read in ``tz``) is the same mix as within a column."""
    zs, ze = _zoned(start), _zoned(end)
    odd = zs != ze
    if odd.any():
        i = int(np.flatnonzero(odd)[0])
        column, text = ("end", end.iloc[i]) if zs[i] else ("start", start.iloc[i])
        other = "start" if column == "end" else "end"
        naive = str(text).strip()
        if pd.isna(pd.to_datetime(naive, format="ISO8601", errors="coerce")):  # no date-time
            mix = ", not a mix" if np.isfinite(pd.to_numeric(naive, errors="coerce")) else ""
            raise DataError(
                f"cannot parse time {naive!r} (expected epoch seconds or ISO 8601{mix})",
                path=path,
                row=int(lines[i]),
                column=column,
            )
        raise DataError(
            f"{naive!r} has no time zone while the row's {other} has one: give"
            " every time a zone or none (naive ones: set data.labels.tz, --labels-tz)",
            path=path,
            row=int(lines[i]),
            column=column,
        )


def parse_datetimes(
    text: list[str], name: str, lines: np.ndarray, path: Path | str | None, tz: str | None
) -> np.ndarray:
    """POSIX seconds of ISO 8601 date-times; numbers are epoch seconds. Naive date-times are in
    ``tz`` (an error without one); mixing naive and zoned ones, or a zone that disagrees with
    ``tz``, is an error naming the row."""
    num = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(np.float64)
    is_num = np.isfinite(num)
    if is_num.all():
        return num
    if is_num.any():  # a mix: the minority kind is the odd one out
        odd = ~is_num if is_num.sum() * 2 >= len(text) else is_num
        i = int(np.flatnonzero(odd)[0])
        raise DataError(
            f"cannot parse time {text[i]!r} (expected epoch seconds or ISO 8601, not a mix)",
            path=path,
            row=int(lines[i]),
            column=name,
        )
    s = pd.Series(text, dtype=object)
    bad = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce").isna().to_numpy()
    _check_parsed(bad, text, name, lines, path)
    aware = np.array([bool(_ZONE.search(v)) for v in text])
    if aware.any() and not aware.all():
        i = int(np.flatnonzero(~aware)[0])
        raise DataError(
            f"{text[i]!r} has no time zone while other times have one: give every time a zone"
            " or none (naive ones: set data.labels.tz, --labels-tz)",
            path=path,
            row=int(lines[i]),
            column=name,
        )
    if not aware.any() and tz is None:
        raise DataError(
            f"{text[0]!r} has no time zone: add one (2024-05-13T10:04:00+02:00, ...Z) or set"
            " the annotation time zone (data.labels.tz, --labels-tz)",
            path=path,
            row=int(lines[0]),
            column=name,
        )
    if aware.all():
        dt = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce")
    else:
        naive = pd.to_datetime(s, format="ISO8601", errors="coerce")
        bad = naive.isna().to_numpy()
        _check_parsed(bad, text, name, lines, path)
        try:
            dt = naive.dt.tz_localize(tz, ambiguous="raise", nonexistent="raise")
        except Exception as e:  # pytz/zoneinfo raise several types at DST changes
            i = next(k for k, v in enumerate(naive) if not _localizes(v, tz))
            raise DataError(
                f"{text[i]!r} does not exist or is ambiguous in {tz} (a daylight-saving"
                " change): give the time with its UTC offset",
                path=path,
                row=int(lines[i]),
                column=name,
            ) from e
        dt = dt.dt.tz_convert("UTC")
    bad = dt.isna().to_numpy()
    _check_parsed(bad, text, name, lines, path)
    secs = ((dt - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy(np.float64)
    if aware.all() and tz is not None:
        local = dt.dt.tz_convert(tz)
        for i, s_ in enumerate(text):
            own = pd.Timestamp(s_).utcoffset()
            want = local.iloc[i].utcoffset()
            if own != want:
                raise DataError(
                    f"time zone mismatch: {s_!r} is at UTC{_offset(own)} but tz {tz} is at"
                    f" UTC{_offset(want)} then",
                    path=path,
                    row=int(lines[i]),
                    column=name,
                )
    return secs


def _check_parsed(
    bad: np.ndarray, text: list[str], name: str, lines: np.ndarray, path: Path | str | None
) -> None:
    """Raise for the first time that ``bad`` marks as not parsed, naming its row."""
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"cannot parse time {text[i]!r} (expected epoch seconds or ISO 8601)",
            path=path,
            row=int(lines[i]),
            column=name,
        )


def _localizes(value: pd.Timestamp, tz: str) -> bool:
    try:
        value.tz_localize(tz, ambiguous="raise", nonexistent="raise")
    except Exception:
        return False
    return True


def _offset(td: pd.Timedelta | None) -> str:
    minutes = int(pd.Timedelta(td or 0).total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _video_origin(
    df: pd.DataFrame,
    lines: np.ndarray,
    path: Path,
    video_start: str | None,
    tz: str | None,
) -> np.ndarray:
    """The POSIX time at which each row's media starts."""
    if video_start is None:
        raise DataError(
            "BORIS times are seconds from the start of each observation's media: say when that"
            " was with video_start (data.labels.video_start, --video-start): one date-time or"
            " a table 'observation, start'",
            path=path,
        )
    vs = Path(video_start)
    if not vs.is_file():
        try:
            t0 = parse_datetimes([video_start.strip()], "video_start", np.array([0]), None, tz)
        except DataError as e:
            why = e.message.split(": ", 1)[-1]
            if "cannot parse" in why:
                why = f"{video_start!r} is neither a date-time nor a file"
            raise DataError(f"video_start {why}") from e
        return np.full(len(df), float(t0[0]))
    sep = _sniff_sep(vs)
    header = read_header(vs, sep)
    key = next((c for c in ("observation", *BORIS_KEYS, "media") if c in header), None)
    if key is None or "start" not in header:
        raise DataError(
            f"a video_start table needs columns observation and start (found {header})", path=vs
        )
    t, tl = read_table(vs, sep, string_columns=(key, "start"))
    names = _text(t, key, tl, vs)
    starts = _times(t["start"], "start", tl, vs, tz)
    table: dict[str, float] = {}
    first: dict[str, int] = {}
    for n, s, line in zip(names, starts, tl, strict=True):
        if n in first and table[n] != float(s):
            raise DataError(
                f"observation {n!r} has another start in row {first[n]}",
                path=vs,
                row=int(line),
                column="start",
            )
        first.setdefault(n, int(line))
        table[n] = float(s)
        table.setdefault(Path(n).name, float(s))
    cols = [c for c in BORIS_KEYS if c in df.columns]
    if not cols:
        raise DataError(
            "the BORIS export has no Observation id, Media file name or Source column to look"
            f" up in the video_start table {vs}",
            path=path,
        )
    out = np.full(len(df), np.nan)
    keys: list[list[str]] = []
    for c in cols:
        vals = [("" if pd.isna(v) else str(v).strip()) for v in df[c].astype(object)]
        keys.append(vals)
        for i, v in enumerate(vals):
            if np.isnan(out[i]):
                hit = table.get(v, table.get(Path(v).name) if v else None)
                if hit is not None:
                    out[i] = hit
    miss = np.isnan(out)
    if miss.any():
        i = int(np.flatnonzero(miss)[0])
        raise DataError(
            f"no video start for observation {keys[0][i]!r} in {vs}",
            path=path,
            row=int(lines[i]),
            column=cols[0],
        )
    return out


def _check_overlaps(ann: Annotations, path: Path) -> None:
    for a in ann.animals:
        iv = ann.intervals(a)
        assert iv is not None
        if len(iv.start) < 2:
            continue
        best = np.maximum.accumulate(iv.end)[:-1]  # latest end among the earlier intervals
        hit = iv.start[1:] < best
        if hit.any():
            j = int(np.flatnonzero(hit)[0]) + 1
            k = int(np.flatnonzero(iv.end[:j] == best[j - 1])[0])
            raise DataError(
                f"interval [{iso_utc(iv.start[j])}, {iso_utc(iv.end[j])}) of animal {a!r} overlaps"
                f" row {int(iv.row[k])}'s [{iso_utc(iv.start[k])}, {iso_utc(iv.end[k])}): the"
                " intervals of one animal must not overlap",
                path=path,
                row=int(iv.row[j]),
                column=ann.start_column,
            )

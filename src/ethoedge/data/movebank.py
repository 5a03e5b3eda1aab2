"""Movebank accelerometer exports, read by the names of the Movebank Attribute Dictionary.

Two layouts (column names as Movebank writes them in a CSV download):

* bursts (e-obs tags): one burst per row. ``timestamp`` is the burst's first sample (UTC),
  ``eobs:accelerations-raw`` the burst as space-separated integer counts, interleaved by axis
  in the order of ``eobs:acceleration-axes`` (``XYZ``: x1 y1 z1 x2 y2 z2 ...), and
  ``eobs:acceleration-sampling-frequency-per-axis`` the rate in Hz. Sample ``k`` of a burst is
  at ``timestamp + k / rate``. Each burst is its own segment, so no window crosses two.
* one sample per row: ``timestamp`` plus ``acceleration-raw-x/-y/-z`` (counts) or
  ``tilt-x/-y/-z`` (already in g).

The animal is ``individual-local-identifier`` (else ``tag-local-identifier``, else the file
stem). Rows whose ``sensor-type`` is not ``acceleration`` are skipped. Counts become g as
``(count - zero) * g_per_count`` (:class:`~ethoedge.data.config.MovebankConfig`; the defaults,
zero 2048 and 1/1024 g per count, are an assumption, not a calibration). Labels, where there
are any, come from ``label_column`` or a ``behavioural-classification`` column, or from an
annotation file (``data.labels``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ethoedge.data.config import E_OBS_G_PER_COUNT, E_OBS_ZERO, MovebankConfig
from ethoedge.data.sources import file_stem
from ethoedge.data.tables import (
    MAX_SECONDS,
    _check_ragged,
    _numeric,
    _parse_timestamps,
    read_table,
)
from ethoedge.errors import DataError

BURST = "eobs:accelerations-raw"
AXES = "eobs:acceleration-axes"
FREQ = "eobs:acceleration-sampling-frequency-per-axis"
RAW_XYZ = ("acceleration-raw-x", "acceleration-raw-y", "acceleration-raw-z")
TILT_XYZ = ("tilt-x", "tilt-y", "tilt-z")
ANIMAL_COLUMNS = ("individual-local-identifier", "tag-local-identifier")
LABEL_COLUMN = "behavioural-classification"
_TEXT = (BURST, AXES, *ANIMAL_COLUMNS, LABEL_COLUMN, "sensor-type")


def header_layout(header: list[str]) -> str:
    """Which Movebank layout a header has: ``"e-obs bursts"``, ``"one sample per row"`` or
    ``"?"``."""
    if BURST in header:
        return "e-obs bursts"
    if set(RAW_XYZ) <= set(header) or set(TILT_XYZ) <= set(header):
        return "one sample per row"
    return "?"


def is_movebank(columns: list[str]) -> bool:
    """Whether the columns are those of a Movebank accelerometer export.

    >>> is_movebank(["timestamp", "eobs:accelerations-raw", "individual-local-identifier"])
    True
    >>> is_movebank(["animal", "timestamp", "ax", "ay", "az"])
    False

    Any of Movebank's accelerometer columns is enough (an export missing one of the others is
    then named for the column it lacks).
    """
    cols = set(columns)
    return BURST in cols or bool(cols & {AXES, FREQ, *RAW_XYZ, *TILT_XYZ})


@dataclass
class MovebankRows:
    """Samples of one Movebank file, in g, one entry per sample."""

    animal: np.ndarray  # object
    segment: np.ndarray  # object
    t: np.ndarray
    acc: np.ndarray  # (n, 3) float64, g
    rate: np.ndarray | None  # per sample (bursts) or None (inferred)
    lines: np.ndarray  # the file line each sample comes from
    labels: np.ndarray | None  # object, or None without a label column
    label_column: str | None
    layout: str
    notes: tuple[str, ...]
    axis_columns: tuple[str, str, str] = (BURST, BURST, BURST)  # the file's x, y, z columns


def read_movebank(
    path: Path,
    header: list[str],
    calib: MovebankConfig,
    label_column: str | None = None,
    timestamp_policy: str = "error",
) -> MovebankRows:
    """Read a Movebank accelerometer export (layouts in the module docstring).

    Two bursts of one animal that start at the same time, or one that starts before another
    has ended, are an error naming both rows, unless ``timestamp_policy`` is ``"sort"`` (the
    loader then drops the duplicate timestamps)."""
    layout = header_layout(header)
    if layout == "e-obs bursts":
        missing = [c for c in (AXES, FREQ, "timestamp") if c not in header]
    elif layout == "one sample per row":
        missing = [c for c in ("timestamp",) if c not in header]
    else:  # some of Movebank's columns: name the ones missing from the nearest layout
        raw, tilt = set(RAW_XYZ) & set(header), set(TILT_XYZ) & set(header)
        if raw or tilt:
            near = RAW_XYZ if len(raw) >= len(tilt) else TILT_XYZ
            missing = [c for c in near if c not in header]
        else:
            missing = [BURST, AXES, FREQ]
    if missing:
        raise DataError(
            f"missing column(s) {missing} for the movebank layout (found {header})", path=path
        )
    df, lines = read_table(path, string_columns=_TEXT)
    notes: list[str] = []
    if "sensor-type" in df.columns:
        st = df["sensor-type"].astype(object).fillna("").astype(str).str.strip().str.lower()
        acc_rows = (st == "acceleration").to_numpy()
        if not acc_rows.all():
            notes.append(f"skipped {int((~acc_rows).sum()):,} rows of other sensor types")
            df, lines = df.loc[acc_rows].reset_index(drop=True), lines[acc_rows]
        if len(df) == 0:
            raise DataError("no rows with sensor-type 'acceleration'", path=path)
    id_col = next((c for c in ANIMAL_COLUMNS if c in df.columns), None)
    if id_col is not None:
        ids = df[id_col].astype(object)
        miss = ids.isna().to_numpy() | (ids.astype(str).str.strip() == "").to_numpy()
        if miss.any():
            i = int(np.flatnonzero(miss)[0])
            raise DataError("missing value", path=path, row=int(lines[i]), column=id_col)
        animal = np.asarray(ids.astype(str).str.strip(), dtype=object)
    else:
        animal = np.full(len(df), file_stem(path.name), dtype=object)
    lab_col = (label_column or "").strip().lower() or None
    if lab_col is None and LABEL_COLUMN in df.columns:
        lab_col = LABEL_COLUMN
    labels = None
    if lab_col is not None:
        if lab_col not in df.columns:
            raise DataError(f"missing label column {lab_col!r} (found {header})", path=path)
        labels = np.asarray(
            [None if pd.isna(v) or not str(v).strip() else str(v).strip() for v in df[lab_col]],
            dtype=object,
        )
    if df["timestamp"].isna().any():
        i = int(np.flatnonzero(df["timestamp"].isna().to_numpy())[0])
        raise DataError("missing value", path=path, row=int(lines[i]), column="timestamp")
    t = _parse_timestamps(df["timestamp"], lines, path)
    default = calib.zero == E_OBS_ZERO and calib.g_per_count == E_OBS_G_PER_COUNT
    scale_note = (
        f"raw counts converted to g as (count - {calib.zero:g}) * {calib.g_per_count:g}"
        + (
            " (the default e-obs assumption, not a calibration: set data.movebank.zero and"
            " g_per_count from your tags)"
            if default
            else ""
        )
    )
    if layout == "e-obs bursts":
        out = _bursts(path, df, lines, t, animal, labels, calib,
                      check_overlaps=timestamp_policy == "error")  # fmt: skip
        notes.append(scale_note)
        return MovebankRows(*out, label_column=lab_col, layout=layout, notes=tuple(notes))
    cols = RAW_XYZ if set(RAW_XYZ) <= set(df.columns) else TILT_XYZ
    _check_ragged(path, df, lines, df[list(cols)].isna().any(axis=1).to_numpy())
    acc = np.stack([_numeric(df[c], c, lines, path) for c in cols], axis=1)
    if cols == RAW_XYZ:
        acc = (acc - calib.zero) * calib.g_per_count
        notes.append(scale_note)
    return MovebankRows(
        animal=animal,
        segment=np.full(len(df), "0", dtype=object),
        t=t,
        acc=acc,
        rate=None,
        lines=lines,
        labels=labels,
        label_column=lab_col,
        layout=f"{layout}, {cols[0][:-2]}",
        notes=tuple(notes),
        axis_columns=cols,
    )


def _bursts(
    path: Path,
    df: pd.DataFrame,
    lines: np.ndarray,
    t0: np.ndarray,
    animal: np.ndarray,
    labels: np.ndarray | None,
    calib: MovebankConfig,
    *,
    check_overlaps: bool = True,
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None
]:
    """Expand one burst per row into samples; every burst is its own segment. With
    ``check_overlaps``, a burst that starts before another burst of its animal has ended is
    an error (:func:`_check_overlaps`)."""
    freq = _numeric(df[FREQ], FREQ, lines, path)
    bad = ~np.isfinite(freq) | (freq <= 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            "missing value (no sampling frequency)"
            if np.isnan(freq[i])
            else f"sampling frequency must be a positive number, got {freq[i]:g}",
            path=path,
            row=int(lines[i]),
            column=FREQ,
        )
    bursts = df[BURST].astype(object).tolist()
    axes = df[AXES].astype(object).tolist()
    accs, ts, rows, segs, rates = [], [], [], [], []
    for i, (b, ax) in enumerate(zip(bursts, axes, strict=True)):
        where = {"path": path, "row": int(lines[i])}
        order = _axis_order(ax)
        if pd.isna(ax) or not str(ax).strip():
            raise DataError("missing value (no acceleration axes)", **where, column=AXES)  # type: ignore[arg-type]
        if order is None:
            raise DataError(
                f"acceleration axes {ax!r}: ethoedge needs the three axes X, Y and Z",
                **where,  # type: ignore[arg-type]
                column=AXES,
            )
        text = "" if pd.isna(b) else str(b).strip()
        if not text:
            raise DataError("missing value (an empty burst)", **where, column=BURST)  # type: ignore[arg-type]
        try:
            vals = np.array(text.split(), dtype=np.int64)
        except (ValueError, OverflowError) as e:
            raise DataError(
                _bad_count(text.split()),
                **where,  # type: ignore[arg-type]
                column=BURST,
            ) from e
        if vals.size % 3:
            raise DataError(
                f"a burst of {vals.size} values does not divide into 3 axes ({ax})",
                **where,  # type: ignore[arg-type]
                column=BURST,
            )
        n = vals.size // 3
        if not abs(t0[i] + (n - 1) / freq[i]) <= MAX_SECONDS:
            raise DataError(
                f"sampling frequency {freq[i]:g} Hz puts the burst's last sample past the year"
                " 2262",
                **where,  # type: ignore[arg-type]
                column=FREQ,
            )
        accs.append(vals.reshape(n, 3)[:, order])
        ts.append(t0[i] + np.arange(n, dtype=np.float64) / freq[i])
        rows.append(np.full(n, i, dtype=np.int64))
        segs.append(str(pd.Timestamp(t0[i], unit="s").isoformat()))
        rates.append(freq[i])
    if check_overlaps:
        n_samples = np.asarray([len(a) for a in accs], dtype=np.float64)
        _check_overlaps(path, lines, t0, n_samples, freq, animal)
    idx = np.concatenate(rows)
    counts = np.concatenate(accs).astype(np.float64)
    acc = (counts - calib.zero) * calib.g_per_count
    seg = np.asarray(segs, dtype=object)[idx]
    return (
        animal[idx],
        seg,
        np.concatenate(ts),
        acc,
        np.asarray(rates, dtype=np.float64)[idx],
        lines[idx],
        labels[idx] if labels is not None else None,
    )


def _check_overlaps(
    path: Path,
    lines: np.ndarray,
    start: np.ndarray,
    n_samples: np.ndarray,
    freq: np.ndarray,
    animal: np.ndarray,
) -> None:
    """No burst of an animal may start before an earlier-starting burst of the animal has
    ended (its last sample + one sampling interval; half an interval of slack for rounded
    timestamps), nor at the same time as another (each burst is a segment named by its
    start): the two would record the same time twice. The error names the later row and the
    row it collides with or overlaps."""
    end = start + n_samples / freq
    slack = 0.5 / freq
    bursts = pd.DataFrame({"animal": animal.astype(str), "start": start, "end": end - slack})
    bursts = bursts.sort_values(["animal", "start"], kind="stable")
    reach = bursts.groupby("animal", sort=False)["end"].cummax()
    before = reach.groupby(bursts["animal"], sort=False).shift(1)  # the earlier bursts' reach
    bad = (bursts["start"] < before).to_numpy()
    if not bad.any():
        return
    k = int(np.flatnonzero(bad)[0])
    i = int(bursts.index[k])
    mine = bursts.iloc[:k]
    mine = mine[mine["animal"] == bursts["animal"].iloc[k]]
    same = mine.index[mine["start"] == start[i]]
    j = int(same[0]) if len(same) else int(mine["end"].idxmax())  # the one it runs into
    when = pd.Timestamp(start[i], unit="s").isoformat()
    if len(same):
        what = f"bursts collide: this burst of animal {animal[i]!r} starts at {when}, as does"
        what += f" the burst in row {int(lines[j])}"
    else:
        until = pd.Timestamp(end[j], unit="s").isoformat()
        what = f"bursts overlap: this burst of animal {animal[i]!r} starts at {when}, before"
        what += f" the burst in row {int(lines[j])} ends ({until})"
    raise DataError(
        what + "; remove one of them, or set timestamp_policy='sort' to keep one sample per"
        " timestamp",
        path=path,
        row=int(lines[i]),
        column="timestamp",
    )


def _bad_count(tokens: list[str]) -> str:
    """What is wrong with the first value of a burst that is not a 64-bit integer count.

    >>> _bad_count(["2048", "20.5"])
    "non-integer value '20.5' in the burst"
    >>> _bad_count(["2048", "9" * 20])
    'value 99999999999999999999 in the burst is out of range'
    """
    for tok in tokens:
        try:
            v = int(tok)
        except ValueError:
            return f"non-integer value {tok!r} in the burst"
        if not -(2**63) <= v < 2**63:
            return f"value {tok} in the burst is out of range"
    return "the burst is not a list of integer counts"


def _axis_order(axes: object) -> list[int] | None:
    """Column order that puts the burst's axes as x, y, z, or None unless they are XYZ.

    >>> _axis_order("XYZ"), _axis_order("zyx"), _axis_order("XY")
    ([0, 1, 2], [2, 1, 0], None)
    """
    s = "" if axes is None or (isinstance(axes, float) and np.isnan(axes)) else str(axes)
    s = s.strip().upper()
    if sorted(s) != ["X", "Y", "Z"]:
        return None
    return [s.index(c) for c in "XYZ"]

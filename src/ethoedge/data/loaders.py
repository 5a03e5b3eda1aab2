"""Load accelerometry files into a :class:`~ethoedge.data.dataset.Dataset`.

Layouts (see ``docs/data.md``):

* ``generic``: CSV / CSV.gz / Parquet with columns ``animal, timestamp, ax, ay, az, label``
  and an optional ``segment`` (or ``session``) column; other columns are ignored.
* ``cattle_ufro``: the shared UFRO cattle-collar file (m/s², 10 Hz, bouts in ``segment``);
  keeps grazing / resting / standing / walking by default.
* ``otariids_ladds``: the shared seal file (g, sessions at 25 or 20 Hz in ``session``, the
  five behaviour groups in ``label_group``); resampled to 20 Hz on load, so that its
  recordings share one rate (another rate: ``window.target_rate_hz``).

Every problem with the file is a :class:`~ethoedge.errors.DataError` naming the file, and the
row (1-based file line, header = line 1; for Parquet the 1-based record) and column where
there is one.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ethoedge.data.config import DataConfig
from ethoedge.data.dataset import Dataset
from ethoedge.data.recording import Recording
from ethoedge.data.resample import resample
from ethoedge.data.sources import file_stem, folder_files
from ethoedge.errors import ConfigError, DataError

G = 9.80665  # m/s² per g
DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "datasets" / "default"
DEFAULT_DATA_FILE = DEFAULT_DATA_DIR / "cattle_collar_ufro_subset.csv.gz"


@dataclass(frozen=True)
class Preset:
    """How one layout maps onto the data model."""

    name: str
    units: str
    label_column: str
    segment_column: str | None  # None: "segment" or "session" if present
    required: tuple[str, ...]  # besides the label column
    classes: tuple[str, ...] | None = None
    rate_hz: float | None = None
    rate_column: str | None = None
    resample_hz: float | None = None


BASE = ("animal", "timestamp", "ax", "ay", "az")
PRESETS: dict[str, Preset] = {
    "generic": Preset("generic", "g", "label", None, BASE),
    "cattle_ufro": Preset(
        "cattle_ufro",
        "m/s2",
        "label",
        "segment",
        (*BASE, "segment"),
        classes=("grazing", "resting", "standing", "walking"),
        rate_hz=10.0,
    ),
    "otariids_ladds": Preset(
        "otariids_ladds",
        "g",
        "label_group",
        "session",
        (*BASE, "session", "fs_hz"),
        rate_column="fs_hz",
        resample_hz=20.0,
    ),
}
STRING_COLUMNS = ("animal", "label", "label_group", "segment", "session")


def default_data_path() -> Path:
    """The bundled default data file (a subset of the UFRO cattle-collar data)."""
    return DEFAULT_DATA_FILE


def resolve_path(path: str | Path | None) -> Path:
    """The data file for ``path``: the bundled default for ``None``; a folder's one data file."""
    if path is None:
        if not DEFAULT_DATA_FILE.is_file():
            raise DataError("the bundled default data set is missing", path=DEFAULT_DATA_FILE)
        return DEFAULT_DATA_FILE
    p = Path(path)
    if p.is_dir():
        cands = folder_files(p)
        named = [q for q in cands if file_stem(q.name) == p.name]
        if len(named) == 1:
            return named[0]
        if len(cands) == 1:
            return cands[0]
        names = [q.name for q in cands]
        raise ConfigError(f"folder holds {len(cands)} data files {names}; name one", path=p)
    if not p.exists():
        raise DataError("file not found", path=p)
    return p


def _kind(path: Path) -> str:
    """``"gzip"``, ``"parquet"`` or ``"text"``, from the file's first bytes."""
    with open(path, "rb") as f:
        magic = f.read(4)
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
    what = "truncated or corrupt gzip file" if kind == "gzip" else "unreadable file"
    return DataError(f"{what} ({type(e).__name__}: {e})", path=path)


def read_header(path: Path) -> list[str]:
    """Column names of a data file (stripped, lower-case)."""
    kind = _kind(path)
    if kind == "parquet":
        try:
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
        except Exception as e:  # pyarrow raises several types for bad files
            raise DataError(f"not a readable Parquet file ({e})", path=path) from e
        return [n.strip().lower() for n in names]
    try:
        with _open_text(path, kind) as f:
            line = f.readline()
    except (EOFError, OSError, zlib.error, UnicodeDecodeError) as e:
        raise _corrupt(path, kind, e) from e
    if not line.strip():
        raise DataError("file is empty (no header line)", path=path)
    cols = next(csv.reader([line]))
    if len(cols) == 1:
        for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if sep in line:
                raise DataError(
                    f"the header is {name}-separated ({sep!r}); ethoedge reads comma-separated"
                    f" CSV: convert the file (e.g. pandas.read_csv(f, sep={sep!r}).to_csv(out))",
                    path=path,
                    row=1,
                )
    return [c.strip().lower() for c in cols]


def detect_format(columns: list[str], path: Path) -> str:
    """Pick the layout from the column names (and, for the cattle subset, the file name).

    >>> detect_format(["animal", "timestamp", "ax", "label_group", "session", "fs_hz"], Path("x"))
    'otariids_ladds'
    >>> detect_format(["animal", "timestamp", "ax", "ay", "az", "label"], Path("x.csv"))
    'generic'
    """
    cols = set(columns)
    if {"label_group", "session", "fs_hz"} <= cols:
        return "otariids_ladds"
    if "segment" in cols and (
        {"mpu_ax", "wx"} & cols or path.name.lower().startswith("cattle_collar_ufro")
    ):
        return "cattle_ufro"
    return "generic"


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


def read_table(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Read the whole file; return the frame (columns stripped/lower-cased) and line numbers."""
    kind = _kind(path)
    if kind == "parquet":
        try:
            df = pd.read_parquet(path)
        except Exception as e:
            raise DataError(f"not a readable Parquet file ({e})", path=path) from e
        first = 1
    else:
        # Read every column (not usecols): only then does the parser catch over-long rows.
        # Id and label columns as categoricals: the parser factorizes them, no per-row strings.
        raw_names = _raw_header(path, kind)
        dtype = {n: "category" for n in raw_names if n.strip().lower() in STRING_COLUMNS}
        try:
            df = pd.read_csv(
                path,
                compression="gzip" if kind == "gzip" else None,
                encoding="utf-8-sig",
                skip_blank_lines=False,
                dtype=dtype,  # type: ignore[arg-type]
                low_memory=False,
            )
        except pd.errors.EmptyDataError as e:
            raise DataError("file is empty (no header line)", path=path) from e
        except pd.errors.ParserError as e:
            m = _TOKENIZE.search(str(e))
            if m:
                exp, line, saw = (int(g) for g in m.groups())
                raise DataError(
                    f"ragged row: {saw} fields where the header has {exp}", path=path, row=line
                ) from e
            raise DataError(f"cannot parse CSV ({e})", path=path) from e
        except (EOFError, OSError, zlib.error, UnicodeDecodeError) as e:
            raise _corrupt(path, kind, e) from e
        first = 2
    df.columns = [str(c).strip().lower() for c in df.columns]
    lines = np.arange(first, first + len(df), dtype=np.int64)
    if kind != "parquet" and len(df):
        blank = np.array(df.iloc[:, 0].isna())  # a blank line is missing in every column
        if blank.any():
            blank[blank] = df.loc[blank].isna().all(axis=1).to_numpy()
        if blank.any():
            df = df.loc[~blank].reset_index(drop=True)
            lines = lines[~blank]
    if len(df) == 0:
        raise DataError("the file has a header but no data rows", path=path)
    return df, lines


def _raw_header(path: Path, kind: str) -> list[str]:
    with _open_text(path, kind) as f:
        return next(csv.reader([f.readline()]))


def _check_ragged(path: Path, df: pd.DataFrame, lines: np.ndarray, missing: np.ndarray) -> None:
    """If the first rows with missing values are short rows, say so (CSV only)."""
    kind = _kind(path)
    if kind == "parquet" or not missing.any():
        return
    rows = lines[np.flatnonzero(missing)[:20]]
    raw = _raw_lines(path, kind, {int(r) for r in rows})
    for r in rows:
        text = raw.get(int(r))
        if text is None:
            continue
        n = len(next(csv.reader([text]))) if text else 0
        if n != df.shape[1]:
            raise DataError(
                f"ragged row: {n} fields where the header has {df.shape[1]}", path=path, row=int(r)
            )


def _parse_timestamps(col: pd.Series, lines: np.ndarray, path: Path) -> np.ndarray:
    """Seconds (float64) from numbers, datetimes (Parquet) or ISO 8601 strings."""
    if isinstance(col.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(col):
        dt = col if isinstance(col.dtype, pd.DatetimeTZDtype) else col.dt.tz_localize("UTC")
        secs = (dt - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
        return secs.to_numpy(dtype=np.float64, na_value=np.nan)
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype=np.float64)
    num = pd.to_numeric(col, errors="coerce")
    not_num = (num.isna() & col.notna()).to_numpy()
    if not not_num.any():
        return num.to_numpy(dtype=np.float64)
    dt = pd.to_datetime(col, format="ISO8601", utc=True, errors="coerce")
    bad = (dt.isna() & col.notna()).to_numpy()
    if not_num.sum() < bad.sum():  # mostly numbers: the odd ones out are the bad values
        bad = not_num
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"cannot parse timestamp {col.iloc[i]!r} (expected seconds or ISO 8601)",
            path=path,
            row=int(lines[i]),
            column="timestamp",
        )
    secs = (dt - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
    return secs.to_numpy(dtype=np.float64, na_value=np.nan)


def _numeric(col: pd.Series, name: str, lines: np.ndarray, path: Path) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
        return col.to_numpy(dtype=np.float64, na_value=np.nan)
    num = pd.to_numeric(col, errors="coerce")
    bad = (num.isna() & col.notna()).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"non-numeric value {col.iloc[i]!r}", path=path, row=int(lines[i]), column=name
        )
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


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} ({v:,})" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def load_dataset(cfg: DataConfig | None = None) -> Dataset:
    """Read, check and convert a data file into recordings in g with mapped labels.

    Steps: read the file; check columns and values (missing, non-numeric, NaN/inf,
    unlabelled); map labels (``label_map`` then ``classes``); convert units to g; split into
    one recording per (animal, segment); check timestamps increase within each; set the
    sampling rate (declared, per-session, or inferred); bring a format that mixes rates
    (``otariids_ladds``) to one.
    """
    cfg = cfg if cfg is not None else DataConfig()
    path = resolve_path(cfg.path)
    header = read_header(path)
    fmt = cfg.format if cfg.format != "auto" else detect_format(header, path)
    preset = PRESETS[fmt]
    seg_col = preset.segment_column or next(
        (c for c in ("segment", "session") if c in header), None
    )
    label_col = (cfg.label_column or preset.label_column).strip().lower()
    required = list(preset.required)
    for c in (label_col, seg_col):
        if c and c not in required:
            required.append(c)
    missing_cols = [c for c in required if c not in header]
    if missing_cols:
        raise DataError(
            f"missing column(s) {missing_cols} for the {fmt} layout (found {header})", path=path
        )
    df, lines = read_table(path)
    missing_cols = [c for c in required if c not in df.columns]
    if missing_cols:
        raise DataError(
            f"missing column(s) {missing_cols} for the {fmt} layout (found {list(df.columns)})",
            path=path,
        )
    notes: list[str] = []

    acodes, auniq = _factor(df["animal"])
    codes, uniq = _factor(df[label_col])
    scodes, suniq = _factor(df[seg_col]) if seg_col else (np.zeros(len(df), np.int64), ["0"])
    missing = {
        "animal": acodes < 0,
        "timestamp": df["timestamp"].isna().to_numpy(),
        **({seg_col: scodes < 0} if seg_col else {}),
    }
    missing_any = codes < 0
    for m in missing.values():
        missing_any |= m
    for c in ("ax", "ay", "az"):
        missing_any |= df[c].isna().to_numpy()
    _check_ragged(path, df, lines, missing_any)
    for name, miss in missing.items():
        if miss.any():
            i = int(np.flatnonzero(miss)[0])
            raise DataError(
                f"missing value ({int(miss.sum()):,} rows have none)",
                path=path,
                row=int(lines[i]),
                column=name,
            )

    t = _parse_timestamps(df["timestamp"], lines, path)
    bad_t = ~np.isfinite(t)
    if bad_t.any():
        i = int(np.flatnonzero(bad_t)[0])
        raise DataError(
            f"non-finite timestamp {t[i]}", path=path, row=int(lines[i]), column="timestamp"
        )
    acc = np.stack([_numeric(df[c], c, lines, path) for c in ("ax", "ay", "az")], axis=1)
    rate_col = (
        _numeric(df[preset.rate_column], preset.rate_column, lines, path)
        if preset.rate_column
        else None
    )

    keep = np.ones(len(df), dtype=bool)
    # NaN / inf acceleration.
    nonfinite = ~np.isfinite(acc)
    n_bad_rows = int(nonfinite.any(axis=1).sum())
    if n_bad_rows:
        i = int(np.flatnonzero(nonfinite.any(axis=1))[0])
        col = ("ax", "ay", "az")[int(np.flatnonzero(nonfinite[i])[0])]
        per_axis = ", ".join(
            f"{c} {int(nonfinite[:, k].sum()):,}" for k, c in enumerate(("ax", "ay", "az"))
        )
        if cfg.nan_policy == "error":
            raise DataError(
                f"{n_bad_rows:,} rows have NaN/inf acceleration ({per_axis}); first here."
                " Set nan_policy to 'drop' or 'interpolate'",
                path=path,
                row=int(lines[i]),
                column=col,
            )
        if cfg.nan_policy == "drop":
            keep &= ~nonfinite.any(axis=1)
            notes.append(f"dropped {n_bad_rows:,} rows with NaN/inf acceleration ({per_axis})")
        else:
            acc[nonfinite] = np.nan
            notes.append(f"interpolated {n_bad_rows:,} rows with NaN/inf acceleration ({per_axis})")

    # Labels: unlabelled rows, then the label map, then the kept classes.
    unl = codes < 0
    if unl.any():
        i = int(np.flatnonzero(unl)[0])
        if cfg.unlabelled == "error":
            raise DataError(
                f"{int(unl.sum()):,} rows have no label; first here."
                " Set unlabelled to 'drop' or 'keep'",
                path=path,
                row=int(lines[i]),
                column=label_col,
            )
        if cfg.unlabelled == "drop":
            keep &= ~unl
            notes.append(f"dropped {int(unl.sum()):,} unlabelled rows")
        else:
            notes.append(f"kept {int(unl.sum()):,} unlabelled rows (windows count them as impure)")
    unused = sorted(k for k in cfg.label_map if k not in uniq)
    if unused:
        notes.append(f"label_map entries matching no label: {unused}")
    mapped = [cfg.label_map.get(u, u) for u in uniq]
    present = sorted({m for m in mapped if m is not None})
    classes = cfg.classes if cfg.classes is not None else (preset.classes or tuple(present))
    absent = [c for c in classes if c not in present]
    if cfg.classes is not None and absent:
        raise ConfigError(f"classes {absent} not found in the data (labels: {present})", path=path)
    class_of = np.array([classes.index(m) if m in classes else -1 for m in mapped] + [-1])
    cls = class_of[codes]  # codes == -1 (unlabelled) picks the trailing -1
    dropped_label = (cls < 0) & (codes >= 0) & keep
    if dropped_label.any():
        counts = pd.Series(np.asarray(uniq, dtype=object)[codes[dropped_label]]).value_counts()
        notes.append(
            f"dropped {int(dropped_label.sum()):,} rows with labels outside the classes: "
            + _fmt_counts({str(k): int(v) for k, v in counts.items()})
        )
        keep &= ~dropped_label
    if not keep.any():
        raise DataError(
            f"no rows left after dropping labels outside the classes {list(classes)}"
            f" (labels in the file: {uniq})",
            path=path,
        )

    units = cfg.units or preset.units
    scale = 1.0 / G if units == "m/s2" else 1.0
    acc_g = (acc * scale).astype(np.float32)
    class_arr = np.asarray([*classes, None], dtype=object)
    label_names = class_arr[np.where(cls >= 0, cls, len(classes))]

    # Group rows into (animal, segment) recordings, in order of first appearance.
    idx_keep = np.flatnonzero(keep)
    gkey = acodes[idx_keep] * len(suniq) + scodes[idx_keep]
    gcodes, guniq = pd.factorize(gkey)
    order = np.argsort(gcodes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(gcodes, minlength=len(guniq)))])

    groups: list[tuple[str, str, np.ndarray]] = []
    n_sorted = n_dups = 0
    for g in range(len(guniq)):
        rows = idx_keep[order[bounds[g] : bounds[g + 1]]]
        key = int(guniq[g])
        a, s = auniq[key // len(suniq)], suniq[key % len(suniq)]
        tg = t[rows]
        step = np.diff(tg)
        if (step <= 0).any():
            j = int(np.flatnonzero(step <= 0)[0])
            if cfg.timestamp_policy == "error":
                what = "duplicates" if step[j] == 0 else "is before"
                raise DataError(
                    f"timestamp {tg[j + 1]!r} {what} the previous row's {tg[j]!r} within animal"
                    f" {a!r}, segment {s!r}: timestamps must increase within a segment."
                    " Sort the file or set timestamp_policy='sort'",
                    path=path,
                    row=int(lines[rows[j + 1]]),
                    column="timestamp",
                )
            rows = rows[np.argsort(tg, kind="stable")]
            tg = t[rows]
            first = np.concatenate([[True], np.diff(tg) > 0])
            n_sorted += 1
            n_dups += int((~first).sum())
            rows = rows[first]
        groups.append((a, s, rows))
    if n_sorted:
        notes.append(
            f"sorted {n_sorted} segments by time and dropped {n_dups:,} duplicate timestamps"
        )

    # Sampling rate per recording.
    rates = _rates(cfg, preset, groups, t, rate_col, path, lines)
    resample_hz = preset.resample_hz  # a format that mixes rates is brought to one
    recordings: list[Recording] = []
    n_interp_lost = 0
    resampled: dict[float, int] = {}
    for (a, s, rows), rate in zip(groups, rates, strict=True):
        tg, ag, lg = t[rows], acc_g[rows], label_names[rows]
        if cfg.nan_policy == "interpolate":
            ok = np.isfinite(ag).all(axis=1)
            if not ok.all():
                if ok.sum() == 0:
                    n_interp_lost += 1
                    continue
                for k in range(3):
                    ag[~ok, k] = np.interp(tg[~ok], tg[ok], ag[ok, k])
        if resample_hz is not None and abs(rate - resample_hz) > 1e-9:
            tg, ag, lg = resample(tg, ag, lg, rate, resample_hz, cfg.max_gap_factor)
            resampled[rate] = resampled.get(rate, 0) + 1
            rate = float(resample_hz)
        recordings.append(
            Recording(
                animal=a,
                segment=s,
                t=np.ascontiguousarray(tg, dtype=np.float64),
                acc=np.ascontiguousarray(ag, dtype=np.float32),
                labels=lg,
                rate_hz=float(rate),
                source=str(path),
            )
        )
    if n_interp_lost:
        notes.append(f"dropped {n_interp_lost} recordings with no finite acceleration at all")
    for r_in, n in sorted(resampled.items()):
        notes.append(f"resampled {n} recordings from {r_in:g} Hz to {resample_hz:g} Hz")
    if not recordings:
        raise DataError("no recordings left after cleaning", path=path)
    _check_units(recordings, units, notes)
    name = file_stem(path.name) if fmt == "generic" else fmt
    if path == DEFAULT_DATA_FILE:
        name = "default (cattle_collar_ufro subset)"
    return Dataset(
        name=name,
        recordings=recordings,
        class_names=tuple(classes),
        source=str(path),
        notes=tuple(notes),
    )


def _rates(
    cfg: DataConfig,
    preset: Preset,
    groups: list[tuple[str, str, np.ndarray]],
    t: np.ndarray,
    rate_col: np.ndarray | None,
    path: Path,
    lines: np.ndarray,
) -> list[float]:
    """Sampling rate of each group: declared, from the rate column, or inferred."""
    if cfg.rate_hz is not None:
        return [float(cfg.rate_hz)] * len(groups)
    if rate_col is not None:
        out = []
        for a, s, rows in groups:
            vals = rate_col[rows]
            if not np.isfinite(vals).all() or (vals <= 0).any() or (vals != vals[0]).any():
                j = int(np.flatnonzero(~np.isfinite(vals) | (vals <= 0) | (vals != vals[0]))[0])
                raise DataError(
                    f"sampling rate must be one positive value per session ({a}, {s})",
                    path=path,
                    row=int(lines[rows[j]]),
                    column=preset.rate_column,
                )
            out.append(float(vals[0]))
        return out
    if preset.rate_hz is not None:
        return [preset.rate_hz] * len(groups)
    steps = [np.diff(t[rows]) for _, _, rows in groups]
    allsteps = np.concatenate(steps) if steps else np.zeros(0)
    if allsteps.size == 0:
        raise DataError(
            "cannot infer the sampling rate (no recording has two samples); set rate_hz",
            path=path,
        )
    rate = round(1.0 / float(np.median(allsteps)), 3)
    out = []
    for st in steps:
        own = round(1.0 / float(np.median(st)), 3) if st.size else rate
        out.append(own if abs(own / rate - 1.0) > 0.02 else rate)
    return out


def _check_units(recordings: list[Recording], units: str, notes: list[str]) -> None:
    """Add a note when the magnitude of acceleration does not look like the declared units."""
    sample = np.concatenate([r.acc[:: max(1, len(r) // 200)] for r in recordings])
    mag = float(np.nanmedian(np.linalg.norm(sample, axis=1))) if len(sample) else 1.0
    if mag > 4.0:
        notes.append(
            f"median |a| is {mag:.2f} g after conversion from {units}: the file may be in"
            " m/s2 (set units='m/s2')"
        )
    elif units == "m/s2" and mag < 0.2:
        notes.append(f"median |a| is only {mag:.3f} g: the file may already be in g (units='g')")

"""Load accelerometry files into a :class:`~ethoedge.data.dataset.Dataset`.

Layouts (see ``docs/data.md``):

* ``generic``: CSV / CSV.gz / Parquet with columns ``animal, timestamp, ax, ay, az, label``
  and an optional ``segment`` (or ``session``) column; other columns are ignored.
* ``cattle_ufro``: the shared UFRO cattle-collar file (m/s², 10 Hz, bouts in ``segment``);
  keeps grazing / resting / standing / walking by default.
* ``otariids_ladds``: the shared seal file (g, sessions at 25 or 20 Hz in ``session``, the
  five behaviour groups in ``label_group``); resampled to 20 Hz on load, so that its
  recordings share one rate (another rate: ``window.target_rate_hz``).
* ``movebank``: a Movebank accelerometer export (:mod:`ethoedge.data.movebank`).

``DataConfig.path`` may be one file, a folder of per-animal files or a glob pattern; the
animal id is the ``animal`` column, else the file stem. ``DataConfig.labels`` labels the
samples from annotation intervals instead (:mod:`ethoedge.data.annotations`).

Every problem with the file is a :class:`~ethoedge.errors.DataError` naming the file, and the
row (1-based file line, header = line 1; for Parquet the 1-based record) and column where
there is one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ethoedge.data.config import DataConfig
from ethoedge.data.dataset import Dataset
from ethoedge.data.movebank import header_layout, is_movebank, read_movebank
from ethoedge.data.recording import Recording
from ethoedge.data.resample import resample
from ethoedge.data.sources import data_files, file_stem, folder_files
from ethoedge.data.tables import (
    _check_ragged,
    _factor,
    _numeric,
    _parse_timestamps,
    not_finite,
    read_header,
    read_table,
)
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
    "movebank": Preset("movebank", "g", "", None, ()),
}


def default_data_path() -> Path:
    """The bundled default data file (a subset of the UFRO cattle-collar data)."""
    return DEFAULT_DATA_FILE


def resolve_path(path: str | Path | None) -> Path:
    """The one data file for ``path``: the bundled default for ``None``; a file; a folder's file
    named like the folder or its only file. A folder or pattern of several files (per-animal
    files, which :func:`load_dataset` reads together) is a :class:`ConfigError`."""
    if path is None:
        if not DEFAULT_DATA_FILE.is_file():
            raise DataError("the bundled default data set is missing", path=DEFAULT_DATA_FILE)
        return DEFAULT_DATA_FILE
    files, _ = dataset_files(path)
    if len(files) > 1:
        names = [q.name for q in files]
        raise ConfigError(f"names {len(files)} data files {names}, not one", path=path)
    return files[0]


def detect_format(columns: list[str], path: Path) -> str:
    """Pick the layout from the column names (and, for the cattle subset, the file name).

    >>> detect_format(["animal", "timestamp", "ax", "label_group", "session", "fs_hz"], Path("x"))
    'otariids_ladds'
    >>> detect_format(["animal", "timestamp", "ax", "ay", "az", "label"], Path("x.csv"))
    'generic'
    """
    cols = set(columns)
    if is_movebank(columns):
        return "movebank"
    if {"label_group", "session", "fs_hz"} <= cols:
        return "otariids_ladds"
    if "segment" in cols and (
        {"mpu_ax", "wx"} & cols or path.name.lower().startswith("cattle_collar_ufro")
    ):
        return "cattle_ufro"
    return "generic"


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} ({v:,})" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


@dataclass
class _Part:
    """One data file's rows, checked and parsed; not yet labelled, grouped or converted.

    ``*_codes`` index the matching ``*_names`` (-1: missing); ``label_codes`` is None when the
    labels come from an annotation file (or the file has no label column and unlabelled rows
    are kept).
    """

    path: Path
    fmt: str
    preset: Preset
    lines: np.ndarray
    t: np.ndarray
    acc: np.ndarray  # (n, 3) float64, in ``units``
    units: str
    animal_codes: np.ndarray
    animal_names: list[str]
    segment_codes: np.ndarray
    segment_names: list[str]
    label_codes: np.ndarray | None
    label_names: list[str]
    label_column: str | None
    rate: np.ndarray | None
    layout: str  # what must agree between the files of one data set
    notes: list[str]
    axis_columns: tuple[str, str, str] = ("ax", "ay", "az")  # the file's x, y, z columns


def folder_named_file(folder: Path) -> Path | None:
    """The one data file of ``folder`` named like it (``cows/cows.csv``), which a data set
    given as that folder is (the files beside it are not read); None where there is none or
    ``folder`` is no folder."""
    if not folder.is_dir():
        return None
    named = [q for q in folder_files(folder) if file_stem(q.name) == folder.name]
    return named[0] if len(named) == 1 else None


def dataset_files(spec: str | Path | None) -> tuple[list[Path], str]:
    """The data files of ``spec`` (a folder holding a file named like itself: that file) and
    the data set's source string (``None``: the bundled default data)."""
    if spec is None:
        return [resolve_path(None)], str(DEFAULT_DATA_FILE)
    p = Path(spec)
    named = folder_named_file(p)
    if named is not None:
        return [named], str(named)
    files = data_files(spec)
    return files, str(files[0]) if len(files) == 1 and p.exists() else str(spec)


def _read_part(path: Path, cfg: DataConfig, annotated: bool) -> _Part:
    """Read and check one file (columns, missing values, numbers, timestamps)."""
    header = read_header(path)
    fmt = cfg.format if cfg.format != "auto" else detect_format(header, path)
    if fmt == "movebank":
        return _movebank_part(path, cfg, header)
    preset = PRESETS[fmt]
    seg_col = _segment_column(preset, header)
    label_col: str | None = (cfg.label_column or preset.label_column).strip().lower()
    notes: list[str] = []
    if annotated:
        label_col = None
    elif label_col not in header and cfg.unlabelled == "keep":
        label_col = None  # no labels at all: every row is unlabelled
    has_animal = "animal" in header
    required = [c for c in preset.required if c != "animal"]
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
    n = len(df)
    if has_animal:
        acodes, auniq = _factor(df["animal"])
    else:
        acodes, auniq = np.zeros(n, np.int64), [file_stem(path.name)]
    codes, uniq = _factor(df[label_col]) if label_col else (None, [])
    scodes, suniq = _factor(df[seg_col]) if seg_col else (np.zeros(n, np.int64), ["0"])
    missing = {
        **({"animal": acodes < 0} if has_animal else {}),
        "timestamp": df["timestamp"].isna().to_numpy(),
        **({seg_col: scodes < 0} if seg_col else {}),
    }
    missing_any = codes < 0 if codes is not None else np.zeros(n, dtype=bool)
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
    rate = (
        _numeric(df[preset.rate_column], preset.rate_column, lines, path)
        if preset.rate_column
        else None
    )
    return _Part(
        path=path,
        fmt=fmt,
        preset=preset,
        lines=lines,
        t=t,
        acc=acc,
        units=cfg.units or preset.units,
        animal_codes=acodes,
        animal_names=auniq,
        segment_codes=scodes,
        segment_names=suniq,
        label_codes=codes,
        label_names=uniq,
        label_column=label_col,
        rate=rate,
        layout=_layout(fmt, has_animal, seg_col is not None),
        notes=notes,
    )


def _movebank_part(path: Path, cfg: DataConfig, header: list[str]) -> _Part:
    if cfg.units not in (None, "g"):
        raise ConfigError(
            f"units {cfg.units!r} do not apply to the movebank layout: tilt-x/-y/-z are g and"
            " raw counts are converted with data.movebank.zero and g_per_count",
            path=path,
        )
    mb = read_movebank(path, header, cfg.movebank, cfg.label_column, cfg.timestamp_policy)
    acodes, auniq = _factor(pd.Series(mb.animal, dtype=object))
    scodes, suniq = _factor(pd.Series(mb.segment, dtype=object))
    codes, uniq = (
        _factor(pd.Series(mb.labels, dtype=object)) if mb.labels is not None else (None, [])
    )
    return _Part(
        path=path,
        fmt="movebank",
        preset=PRESETS["movebank"],
        lines=mb.lines,
        t=mb.t,
        acc=mb.acc,
        units="g",
        animal_codes=acodes,
        animal_names=auniq,
        segment_codes=scodes,
        segment_names=suniq,
        label_codes=codes,
        label_names=uniq,
        label_column=mb.label_column,
        rate=mb.rate,
        layout=f"movebank layout ({mb.layout})",  # as file_layout says
        notes=list(mb.notes),
        axis_columns=mb.axis_columns,
    )


def _cat(arrays: list[np.ndarray]) -> np.ndarray:
    """Concatenation without a copy for one file."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _merge_codes(
    parts: list[tuple[np.ndarray, list[str]]],
) -> tuple[np.ndarray, list[str]]:
    """Concatenate per-file codes into codes over one list of names (first appearance)."""
    names: list[str] = []
    index: dict[str, int] = {}
    out = []
    for codes, uniq in parts:
        for u in uniq:
            if index.setdefault(u, len(names)) == len(names):
                names.append(u)
        remap = np.array([index[u] for u in uniq] + [-1], dtype=np.int64)
        out.append(codes if remap[:-1].tolist() == list(range(len(uniq))) else remap[codes])
    return (_cat(out) if out else np.zeros(0, np.int64)), names


def _allowed_behaviours(cfg: DataConfig) -> tuple[str, ...] | None:
    """What an annotation may name: the configured list, else ``classes`` + label_map keys."""
    assert cfg.labels is not None
    if cfg.labels.behaviours is not None:
        return tuple(cfg.labels.behaviours)
    if cfg.classes is not None:
        return (*cfg.classes, *cfg.label_map)
    return None


def _annotate(
    cfg: DataConfig, parts: list[_Part], t: np.ndarray, acodes: np.ndarray, anames: list[str]
) -> tuple[np.ndarray, list[str], list[str]]:
    """Label codes of every sample from the annotation file; checks every interval."""
    from ethoedge.data.annotations import read_annotations

    assert cfg.labels is not None
    ann = read_annotations(
        cfg.labels.path,
        video_start=cfg.labels.video_start,
        tz=cfg.labels.tz,
        behaviours=_allowed_behaviours(cfg),
    )
    order = np.argsort(acodes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(acodes, minlength=len(anames)))])
    spans = {}
    labels = np.full(len(t), None, dtype=object)
    for k, a in enumerate(anames):
        rows = order[bounds[k] : bounds[k + 1]]
        if len(rows):
            spans[a] = (float(t[rows].min()), float(t[rows].max()))
    ann.check_against(spans)
    hits = {}
    for k, a in enumerate(anames):
        if ann.intervals(a) is None:
            continue
        rows = order[bounds[k] : bounds[k + 1]]
        labels[rows] = ann.label_samples(a, t[rows])
        hits[a] = ann.samples_per_interval(a, t[rows])
    ann.check_covered(hits)
    notes = list(ann.notes)
    ignored = sorted({p.label_column for p in parts if p.label_column})
    if ignored:
        notes.append(f"label column(s) {ignored} ignored: the labels come from {ann.source}")
    codes, uniq = pd.factorize(labels, use_na_sentinel=True)
    return codes.astype(np.int64), [str(u) for u in uniq], notes


def _segment_column(preset: Preset, header: list[str]) -> str | None:
    """The column that splits an animal's rows into segments: the format's, else ``segment``
    or ``session`` where the file has one."""
    return preset.segment_column or next((c for c in ("segment", "session") if c in header), None)


def _layout(fmt: str, has_animal: bool, has_segment: bool) -> str:
    return (
        f"{fmt} layout, {'with' if has_animal else 'without'} an animal column,"
        f" {'with' if has_segment else 'without'} a segment column"
    )


def file_layout(path: Path, cfg: DataConfig) -> str:
    """What must agree between the files of one data set, from the file's header: its format
    and whether it has an animal and a segment column (a Movebank export: which of its two
    layouts)."""
    header = read_header(path)
    fmt = cfg.format if cfg.format != "auto" else detect_format(header, path)
    if fmt == "movebank":
        return f"movebank layout ({header_layout(header)})"
    preset = PRESETS[fmt]
    return _layout(fmt, "animal" in header, _segment_column(preset, header) is not None)


def check_one_layout(paths: list[Path], layouts: list[str]) -> None:
    """Raise a DataError naming the first file whose layout differs from the first file's."""
    for p, lay in zip(paths[1:], layouts[1:], strict=True):
        if lay != layouts[0]:
            raise DataError(
                f"mixed layouts: this file has the {lay}, {paths[0].name} the"
                f" {layouts[0]}; all files of one data set must share one layout",
                path=p,
            )


def check_files_apart(spans: list[tuple[str, str, float, float]]) -> None:
    """Raise a DataError where two files hold one animal at overlapping times: (animal,
    file, first time, last time) per recording or per file. The same samples twice (a file
    exported again, two cuts that overlap) would count the animal's time twice."""
    per: dict[str, list[tuple[float, float, str]]] = {}
    for animal, source, lo, hi in spans:
        per.setdefault(animal, []).append((lo, hi, source))
    for animal, items in per.items():
        items.sort()
        end, end_src = items[0][1], items[0][2]
        for lo, hi, src in items[1:]:
            if src != end_src and lo < end:
                raise DataError(
                    f"animal {animal!r} is in {Path(end_src).name} until {end:.3f} s and here"
                    f" from {lo:.3f} s: two files of one animal must not overlap in time",
                    path=src,
                )
            if hi > end:
                end, end_src = hi, src


def _check_case(
    present: list[str],
    mapped: list[str | None],
    codes: np.ndarray,
    where: Callable[[int], dict[str, object]],
    column: str | None,
) -> None:
    """Refuse behaviours that differ only in letter case (``Grazing`` and ``grazing``): they
    would be trained as two classes. Names the first row of the rarer spelling."""
    seen: dict[str, str] = {}
    for m in present:
        other = seen.setdefault(m.casefold(), m)
        if other == m:
            continue
        rows = {name: np.isin(codes, [k for k, v in enumerate(mapped) if v == name])
                for name in (other, m)}  # fmt: skip
        counts = {name: int(r.sum()) for name, r in rows.items()}
        rare = min(counts, key=lambda n: (counts[n], n))
        first = int(np.flatnonzero(rows[rare])[0])
        common = other if rare == m else m
        raise DataError(
            f"behaviours {other!r} and {m!r} differ only in letter case ({counts[other]:,} and"
            f" {counts[m]:,} rows; first {rare!r} here): map one onto the other with"
            f" data.label_map, e.g. {{{rare!r}: {common!r}}}",
            **where(first),  # type: ignore[arg-type]
            column=column,
        )


def load_dataset(cfg: DataConfig | None = None) -> Dataset:
    """Read, check and convert data files into recordings in g with mapped labels.

    Steps: read each file (one file, a folder of per-animal files or a glob; the animal id from
    the ``animal`` column, else the file stem); check columns and values (missing,
    non-numeric, NaN/inf, unlabelled); label the samples from an annotation file when
    ``labels`` is set; map labels (``label_map`` then ``classes``); convert units to g; split
    into one recording per (file, animal, segment); check timestamps increase within each; set
    the sampling rate (declared, per-session, or inferred); bring a format that mixes rates
    (``otariids_ladds``) to one.
    """
    cfg = cfg if cfg is not None else DataConfig()
    files, source = dataset_files(cfg.path)
    annotated = cfg.labels is not None
    parts = [_read_part(p, cfg, annotated) for p in files]
    first = parts[0]
    check_one_layout([p.path for p in parts], [p.layout for p in parts])
    fmt, preset = first.fmt, first.preset
    notes: list[str] = [n for p in parts for n in p.notes]
    fidx = np.repeat(np.arange(len(parts)), [len(p.t) for p in parts])
    lines = _cat([p.lines for p in parts])
    t = _cat([p.t for p in parts])
    acc = _cat([p.acc for p in parts])
    rates_in = [p.rate for p in parts if p.rate is not None]
    rate_col = _cat(rates_in) if len(rates_in) == len(parts) else None
    acodes, auniq = _merge_codes([(p.animal_codes, p.animal_names) for p in parts])
    scodes, suniq = _merge_codes([(p.segment_codes, p.segment_names) for p in parts])
    label_col = first.label_column
    if annotated:
        codes, uniq, ann_notes = _annotate(cfg, parts, t, acodes, auniq)
        notes.extend(ann_notes)
    else:
        codes, uniq = _merge_codes(
            [
                (np.full(len(p.t), -1) if p.label_codes is None else p.label_codes, p.label_names)
                for p in parts
            ]
        )

    def where(i: int) -> dict[str, object]:
        return {"path": parts[int(fidx[i])].path, "row": int(lines[i])}

    keep = np.ones(len(t), dtype=bool)
    # NaN / inf acceleration.
    nonfinite = not_finite(acc)
    n_bad_rows = int(nonfinite.any(axis=1).sum())
    if n_bad_rows:
        i = int(np.flatnonzero(nonfinite.any(axis=1))[0])
        col = parts[int(fidx[i])].axis_columns[int(np.flatnonzero(nonfinite[i])[0])]
        per_axis = ", ".join(
            f"{c} {int(nonfinite[:, k].sum()):,}" for k, c in enumerate(("ax", "ay", "az"))
        )
        if cfg.nan_policy == "error":
            raise DataError(
                f"{n_bad_rows:,} rows have NaN/inf acceleration ({per_axis}); first here."
                " Set nan_policy to 'drop' or 'interpolate' (--nan-policy)",
                **where(i),  # type: ignore[arg-type]
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
        what = (
            f"samples are outside every annotation interval of {cfg.labels.path}"
            if cfg.labels is not None
            else "rows have no label"
        )
        if cfg.unlabelled == "error":
            raise DataError(
                f"{int(unl.sum()):,} {what}; first here. Set unlabelled to 'drop' or 'keep'",
                **where(i),  # type: ignore[arg-type]
                column=None if cfg.labels is not None or label_col is None else label_col,
            )
        if cfg.unlabelled == "drop":
            keep &= ~unl
            notes.append(f"dropped {int(unl.sum()):,} unlabelled rows")
        else:
            notes.append(f"kept {int(unl.sum()):,} unlabelled rows (windows count them as impure)")
    unused = sorted(k for k in cfg.label_map if k not in uniq)
    if unused:
        notes.append(f"label_map entries matching no label: {unused}")
    label_column = None if cfg.labels is not None else label_col
    for k, u in enumerate(uniq):
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in str(u)):
            raise DataError(
                f"label {str(u)!r} holds a control character (a tab, a line break, NUL, ...)",
                **where(int(np.flatnonzero(codes == k)[0])),  # type: ignore[arg-type]
                column=label_column,
            )
    mapped = [cfg.label_map.get(u, u) for u in uniq]
    present = sorted({m for m in mapped if m is not None})
    if cfg.classes is None and not preset.classes:
        _check_case(present, mapped, codes, where, label_column)
    classes = cfg.classes if cfg.classes is not None else (preset.classes or tuple(present))
    absent = [c for c in classes if c not in present]
    if cfg.classes is not None and absent:
        raise ConfigError(
            f"classes {absent} not found in the data (labels: {present})", path=source
        )
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
            f" (labels in the data: {uniq})",
            path=source,
        )

    units = first.units
    scale = 1.0 / G if units == "m/s2" else 1.0
    acc_g = (acc * scale).astype(np.float32)
    class_arr = np.asarray([*classes, None], dtype=object)
    label_names = class_arr[np.where(cls >= 0, cls, len(classes))]

    # Group rows into (file, animal, segment) recordings, in order of first appearance.
    idx_keep = np.flatnonzero(keep)
    n_a, n_s = len(auniq), len(suniq)
    gkey = (fidx[idx_keep] * n_a + acodes[idx_keep]) * n_s + scodes[idx_keep]
    gcodes, guniq = pd.factorize(gkey)
    order = np.argsort(gcodes, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(gcodes, minlength=len(guniq)))])

    groups: list[tuple[str, str, np.ndarray]] = []
    group_file: list[int] = []
    n_sorted = n_dups = 0
    for g in range(len(guniq)):
        rows = idx_keep[order[bounds[g] : bounds[g + 1]]]
        key = int(guniq[g])
        f, rest = divmod(key, n_a * n_s)
        a, s = auniq[rest // n_s], suniq[rest % n_s]
        tg = t[rows]
        step = np.diff(tg)
        if (step <= 0).any():
            j = int(np.flatnonzero(step <= 0)[0])
            if cfg.timestamp_policy == "error":
                what = "duplicates" if step[j] == 0 else "is before"
                now, before = float(tg[j + 1]), float(tg[j])
                raise DataError(
                    f"timestamp {now!r} {what} the previous row's {before!r} within animal"
                    f" {a!r}, segment {s!r}: timestamps must increase within a segment."
                    " Sort the file or set timestamp_policy='sort'",
                    **where(int(rows[j + 1])),  # type: ignore[arg-type]
                    column="timestamp",
                )
            rows = rows[np.argsort(tg, kind="stable")]
            tg = t[rows]
            first_t = np.concatenate([[True], np.diff(tg) > 0])
            n_sorted += 1
            n_dups += int((~first_t).sum())
            rows = rows[first_t]
        groups.append((a, s, rows))
        group_file.append(f)
    if n_sorted:
        notes.append(
            f"sorted {n_sorted} segments by time and dropped {n_dups:,} duplicate timestamps"
        )

    # Sampling rate per recording.
    rates = _rates(cfg, preset, groups, t, rate_col, where, source)
    resample_hz = preset.resample_hz  # a format that mixes rates is brought to one
    recordings: list[Recording] = []
    n_interp_lost = 0
    resampled: dict[float, int] = {}
    for (a, s, rows), rate, f in zip(groups, rates, group_file, strict=True):
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
                source=str(parts[f].path),
            )
        )
    if n_interp_lost:
        notes.append(f"dropped {n_interp_lost} recordings with no finite acceleration at all")
    for r_in, n in sorted(resampled.items()):
        notes.append(f"resampled {n} recordings from {r_in:g} Hz to {resample_hz:g} Hz")
    if not recordings:
        raise DataError("no recordings left after cleaning", path=source)
    check_files_apart([(r.animal, r.source, float(r.t[0]), float(r.t[-1])) for r in recordings])
    _check_units(recordings, units, notes)
    return Dataset(
        name=_name(cfg.path, files, fmt),
        recordings=recordings,
        class_names=tuple(classes),
        source=source,
        notes=tuple(notes),
    )


def _name(spec: str | Path | None, files: list[Path], fmt: str) -> str:
    """The data set's name: the file stem, the folder's name, or the preset's."""
    if spec is None and files == [DEFAULT_DATA_FILE]:
        return "default (cattle_collar_ufro subset)"
    if fmt not in ("generic", "movebank"):
        return fmt
    p = Path(spec) if spec is not None else files[0]
    if len(files) == 1:
        return file_stem(files[0].name)
    if p.is_dir():
        return p.name
    return files[0].parent.name or file_stem(files[0].name)


def _rates(
    cfg: DataConfig,
    preset: Preset,
    groups: list[tuple[str, str, np.ndarray]],
    t: np.ndarray,
    rate_col: np.ndarray | None,
    where: Callable[[int], dict[str, object]],
    source: str,
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
                    **where(int(rows[j])),  # type: ignore[arg-type]
                    column=preset.rate_column,
                )
            steps = np.diff(t[rows])
            step = float(np.median(steps)) if steps.size else None
            if step is not None and abs(step * float(vals[0]) - 1.0) > 0.02:
                raise DataError(
                    f"sampling rate {float(vals[0]):g} Hz of session ({a}, {s}) disagrees with"
                    f" its timestamps (median step {step:g} s, {1.0 / step:.4g} Hz)",
                    **where(int(rows[0])),  # type: ignore[arg-type]
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
            path=source,
        )
    # each recording's own rate first: a rate that rounds to 0 is named at its first row
    owns = [
        median_rate(st, f" of recording ({a}, {s})", **where(int(rows[0]))) if st.size else None
        for (a, s, rows), st in zip(groups, steps, strict=True)
    ]
    rate = median_rate(allsteps, "", path=source)
    out = []
    for (a, s, rows), st, own in zip(groups, steps, owns, strict=True):
        own = rate if own is None else own
        check_steady_rate(st, own, a, s, lambda i, rows=rows: where(int(rows[i])))
        out.append(own if abs(own / rate - 1.0) > 0.02 else rate)
    return out


def median_rate(steps: np.ndarray, what: str, **where: object) -> float:
    """``1 / median(steps)`` rounded to 3 decimals, as inferred rates are; a rate that rounds
    to 0 Hz (a step over 2,000 s) is a :class:`DataError` at ``where`` (``what`` names the
    recording)."""
    step = float(np.median(steps))
    rate = round(1.0 / step, 3)
    if rate <= 0:
        raise DataError(
            f"cannot infer the sampling rate{what}: the median step between samples is"
            f" {step:g} s (under 0.0005 Hz); timestamps are seconds",
            column="timestamp",
            **where,  # type: ignore[arg-type]
        )
    return rate


RATE_RUN = 10  # consecutive sampling intervals at another steady rate that make a rate change


def rate_change(steps: np.ndarray, rate: float) -> tuple[int, int, float] | None:
    """Where a recording's sampling rate changes: the first run of at least :data:`RATE_RUN`
    consecutive intervals ``steps`` more than 25% off ``1 / rate``, all within 5% of one
    another, as (its first interval, its last, the rate there); None if there is none. Gaps
    are single long intervals; a steady run of other intervals is sampling at another rate,
    which windows of a fixed number of samples would misread."""
    if steps.size < RATE_RUN:
        return None
    off = np.abs(steps * rate - 1.0) > 0.25
    if not off.any():
        return None
    same = np.abs(np.diff(steps)) <= 0.05 * np.maximum(steps[1:], steps[:-1])
    link = off[1:] & off[:-1] & same  # interval k + 1 continues the run of interval k
    starts = np.flatnonzero(off & ~np.concatenate([[False], link]))
    ends = np.flatnonzero(off & ~np.concatenate([link, [False]]))
    long = np.flatnonzero(ends - starts + 1 >= RATE_RUN)
    if not long.size:
        return None
    i, j = int(starts[long[0]]), int(ends[long[0]])
    return i, j, 1.0 / float(np.median(steps[i : j + 1]))


def check_steady_rate(
    steps: np.ndarray,
    rate: float,
    animal: str,
    segment: str,
    where: Callable[[int], dict[str, object]],
) -> None:
    """Raise a DataError where the sampling rate of one recording changes (:func:`rate_change`
    of its intervals ``steps``), at the first sample of the stretch at the other rate:
    ``where(i)`` gives the file and row of sample ``i``."""
    found = rate_change(steps, rate)
    if found is None:
        return
    i, j, other = found
    raise DataError(
        f"the sampling rate changes within recording ({animal}, {segment}): about"
        f" {other:.3g} Hz from here for {j - i + 2:,} samples, where the rest is {rate:g} Hz;"
        " give each rate its own segment (a segment column) or file",
        column="timestamp",
        **where(i),  # type: ignore[arg-type]
    )


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

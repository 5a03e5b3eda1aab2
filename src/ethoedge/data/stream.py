"""Recordings read in chunks and cut into windows as they stream, in bounded memory.

:func:`iter_blocks` reads a generic-layout file (CSV, CSV.gz or Parquet: ``animal,
timestamp, ax, ay, az`` with optional ``label`` and ``segment``/``session``; without an
``animal`` column the file stem is the animal id) a chunk of rows at a time and yields its
samples per (animal, segment), in g, with labels (``None`` where unlabelled).

:class:`WindowStream` cuts those blocks into exactly the windows of
:func:`~ethoedge.data.windows.make_windows` on the whole file (same starts, same values, same
majority labels): for every (animal, segment) it carries the samples after the next window
start (fewer than one window) and the run state across chunk borders, so a chunk may be
shorter than a window. A step of more than ``max_gap_factor`` sample periods starts a new
run, as in whole-file windowing. Streams do not resample: a file at another rate than the
model's is windowed whole (see :mod:`ethoedge.experiment.classify`).

Labels of a window: the most frequent label among its samples (ties: the first in
``label_order``, else by name, which is whole-file windowing's class order for generic data);
unlabelled samples count against it, and a window whose unlabelled samples outnumber every
label has none.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from ethoedge.data.config import DataConfig
from ethoedge.data.loaders import G, check_steady_rate, detect_format, median_rate
from ethoedge.data.sources import file_stem
from ethoedge.data.tables import (
    _CSV_ERRORS,
    STRING_COLUMNS,
    _check_index,
    _check_ragged,
    _csv_error,
    _drop_blank_rows,
    _factor,
    _kind,
    _numeric,
    _parse_timestamps,
    _raw_header,
    as_categories,
    check_flat_text,
    not_finite,
    read_header,
    text_dtypes,
    timestamp_kind,
    timestamp_zone,
)
from ethoedge.errors import ConfigError, DataError

AXES = ("ax", "ay", "az")
DEFAULT_CHUNK_ROWS = 200_000


class SampleLabeller(Protocol):
    """Labels for samples by time, e.g. annotation intervals joined to the recordings."""

    def label_samples(self, animal: str, t: np.ndarray) -> np.ndarray:
        """Labels (object array, ``None`` where unlabelled) of ``animal``'s samples at POSIX
        seconds ``t`` (float64)."""
        ...


@dataclass(frozen=True)
class Block:
    """Consecutive samples of one (animal, segment) from one chunk of a file.

    Attributes:
        animal: animal id.
        segment: segment id (``"0"`` where the file has none).
        t: (n,) float64 seconds.
        acc: (n, 3) float32 acceleration in g.
        labels: (n,) object labels, ``None`` where unlabelled.
        rows: (n,) int64 1-based file rows (CSV: file lines, header = 1; Parquet: records).
    """

    animal: str
    segment: str
    t: np.ndarray
    acc: np.ndarray
    labels: np.ndarray
    rows: np.ndarray


def streamable(path: Path, cfg: DataConfig) -> str | None:
    """Why ``path`` cannot be streamed with ``cfg`` (None: it can)."""
    header = read_header(path)
    fmt = cfg.format if cfg.format != "auto" else detect_format(header, path)
    if fmt != "generic":
        return f"the {fmt} layout is read whole"
    if cfg.nan_policy == "interpolate":
        return "nan_policy 'interpolate' needs the whole recording"
    if cfg.timestamp_policy == "sort":
        return "timestamp_policy 'sort' needs the whole recording"
    return None


def _raw_chunks(
    path: Path, chunk_rows: int, columns: set[str] | None = None
) -> Iterator[tuple[pd.DataFrame, np.ndarray]]:
    """The file's rows, ``chunk_rows`` at a time, with their 1-based rows (blank lines out).

    Parquet: only ``columns`` (lower-case names) are read, a row group at most at a time."""
    kind = _kind(path)
    if kind == "parquet":
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
            names = pf.schema_arrow.names
            cols = None if columns is None else [n for n in names if n.strip().lower() in columns]
            first = 1
            for batch in pf.iter_batches(batch_size=chunk_rows, columns=cols):
                df = batch.to_pandas()
                df.columns = [str(c).strip().lower() for c in df.columns]
                lines = np.arange(first, first + len(df), dtype=np.int64)
                check_flat_text(batch.schema, df, lines, path, STRING_COLUMNS)
                yield df, lines
                first += len(df)
        except DataError:
            raise
        except Exception as e:  # pyarrow raises several types for bad files
            raise DataError(f"not a readable Parquet file ({e})", path=path) from e
        return
    raw_names = _raw_header(path, kind)
    dtype = text_dtypes(raw_names, STRING_COLUMNS)
    first = 2
    try:
        reader = pd.read_csv(
            path,
            compression="gzip" if kind == "gzip" else None,
            encoding="utf-8-sig",
            skip_blank_lines=False,
            dtype=dtype,  # type: ignore[arg-type]
            chunksize=chunk_rows,
        )
        with reader:
            for df in reader:
                as_categories(df, dtype)
                _check_index(path, df, first - 2, first)
                df.columns = [str(c).strip().lower() for c in df.columns]
                lines = np.arange(first, first + len(df), dtype=np.int64)
                first += len(df)
                yield _drop_blank_rows(df, lines)
    except _CSV_ERRORS as e:
        raise _csv_error(path, kind, e) from e


def _labels(col: pd.Series, cfg: DataConfig) -> np.ndarray:
    """A label column after ``cfg.label_map`` (None: unlabelled or mapped away)."""
    codes, uniq = _factor(col)
    mapped = [cfg.label_map.get(u, u) for u in uniq]
    return np.asarray([*mapped, None], dtype=object)[np.where(codes >= 0, codes, len(uniq))]


def _mapped_away(col: pd.Series, cfg: DataConfig) -> np.ndarray:
    """Rows whose label ``cfg.label_map`` maps to None."""
    codes, uniq = _factor(col)
    away = np.asarray([u in cfg.label_map and cfg.label_map[u] is None for u in uniq] + [False])
    return away[np.where(codes >= 0, codes, len(uniq))]


def _map_labels(labels: np.ndarray, cfg: DataConfig) -> np.ndarray:
    codes, uniq = pd.factorize(labels, use_na_sentinel=True)
    mapped = [cfg.label_map.get(str(u), str(u)) for u in uniq]
    return np.asarray([*mapped, None], dtype=object)[np.where(codes >= 0, codes, len(uniq))]


def _acceleration(
    df: pd.DataFrame, lines: np.ndarray, path: Path, scale: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """A chunk's acceleration columns as float32 g ``(n, 3)`` (times ``scale``), and where
    a value is NaN, inf or too large for float32 (``(n, 3)``; None where every value is
    fine). Column by column, straight into the float32 array; float32 columns in g are taken
    as they are (exact: the same values as through float64)."""
    n = len(df)
    acc = np.empty((n, len(AXES)), dtype=np.float32)
    bad: list[np.ndarray | None] = []
    for k, c in enumerate(AXES):
        col = df[c]
        if col.dtype == np.float32 and scale == 1.0:
            v = col.to_numpy()
            acc[:, k] = v
        else:
            v = _numeric(col, c, lines, path)
            with np.errstate(over="ignore", invalid="ignore"):  # too large: flagged below
                acc[:, k] = v * scale if scale != 1.0 else v
        wrong = not_finite(v)
        bad.append(wrong if wrong.any() else None)
    if all(b is None for b in bad):
        return acc, None
    return acc, np.stack([np.zeros(n, bool) if b is None else b for b in bad], axis=1)


def iter_blocks(
    path: str | Path,
    cfg: DataConfig | None = None,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    labeller: SampleLabeller | None = None,
) -> Iterator[Block]:
    """The samples of a generic-layout file, chunk by chunk, per (animal, segment).

    Checks what whole-file loading checks (missing values, non-numeric values, NaN/inf
    acceleration by ``cfg.nan_policy`` ``"error"`` or ``"drop"``, timestamps increasing
    within a segment) and raises :class:`DataError` naming file, row and column. Labels come
    from the label column (if any) or, with ``labeller``, from it (the column is then
    ignored); ``cfg.label_map`` is applied to both, and with ``cfg.classes`` samples labelled
    outside them are dropped as whole-file loading drops them.
    """
    cfg = cfg if cfg is not None else DataConfig()
    path = Path(path)
    if cfg.nan_policy == "interpolate" or cfg.timestamp_policy == "sort":
        raise ConfigError(
            "streamed recordings support nan_policy 'error'/'drop' and timestamp_policy"
            " 'error' only",
            path=path,
        )
    header = read_header(path)
    label_col = (cfg.label_column or "label").strip().lower()
    has_label = label_col in header and labeller is None
    seg_col = next((c for c in ("segment", "session") if c in header), None)
    required = ["timestamp", *AXES]
    missing_cols = [c for c in required if c not in header]
    if missing_cols:
        raise DataError(
            f"missing column(s) {missing_cols} for the generic layout (found {header})",
            path=path,
        )
    stem = file_stem(path.name)
    scale = 1.0 / G if (cfg.units or "g") == "m/s2" else 1.0
    last_t: dict[tuple[str, str], float] = {}
    any_rows = False
    kind: str | None = None  # the file's first timestamp's: "number" or "text" (ISO 8601)
    zoned: bool | None = None  # whether the file's ISO 8601 timestamps have a zone
    wanted = {"animal", "timestamp", *AXES, label_col, *((seg_col,) if seg_col else ())}
    for df, lines in _raw_chunks(path, chunk_rows, wanted):
        if not len(df):
            continue
        any_rows = True
        n = len(df)
        # Animal and segment as codes into their distinct values (None: one value, the file
        # stem or segment "0", for every row).
        a_codes, a_uniq = _factor(df["animal"]) if "animal" in df.columns else (None, [stem])
        s_codes, s_uniq = _factor(df[seg_col]) if seg_col else (None, ["0"])
        for name, codes in (("animal", a_codes), (seg_col, s_codes)):
            if codes is not None and (codes < 0).any():
                i = int(np.flatnonzero(codes < 0)[0])
                _check_ragged(path, df, lines[i : i + 1], np.ones(1, dtype=bool))  # a short row?
                raise DataError("missing value", path=path, row=int(lines[i]), column=name)
        ts = df["timestamp"]
        if ts.isna().any():
            i = int(np.flatnonzero(ts.isna().to_numpy())[0])
            _check_ragged(path, df, lines[i : i + 1], np.ones(1, dtype=bool))  # a short row?
            raise DataError("missing value", path=path, row=int(lines[i]), column="timestamp")
        t = _parse_timestamps(ts, lines, path, zoned, kind)
        if kind is None:
            kind, zoned = timestamp_kind(ts), timestamp_zone(ts)
        bad_t = ~np.isfinite(t)
        if bad_t.any():
            i = int(np.flatnonzero(bad_t)[0])
            raise DataError(
                f"non-finite timestamp {t[i]}", path=path, row=int(lines[i]), column="timestamp"
            )
        acc_g, nonfinite = _acceleration(df, lines, path, scale)
        keep = np.ones(n, dtype=bool)
        if nonfinite is not None:
            i = int(np.flatnonzero(nonfinite.any(axis=1))[0])
            if cfg.nan_policy == "error":
                _check_ragged(path, df, lines[i : i + 1], np.ones(1, dtype=bool))  # a short row?
                col = AXES[int(np.flatnonzero(nonfinite[i])[0])]
                raise DataError(
                    "NaN/inf acceleration. Set nan_policy to 'drop' (--nan-policy drop)",
                    path=path,
                    row=int(lines[i]),
                    column=col,
                )
            keep &= ~nonfinite.any(axis=1)
        labels = _labels(df[label_col], cfg) if has_label else np.full(n, None, dtype=object)
        if has_label and cfg.label_map:
            # A label mapped to None drops its rows, as in whole-file loading.
            keep &= ~_mapped_away(df[label_col], cfg)
        # Group the chunk's rows by (animal, segment), in order of first appearance.
        if a_codes is None and s_codes is None:
            groups = [np.arange(n)]
        else:
            ak = a_codes if a_codes is not None else np.zeros(n, np.int64)
            sk = s_codes if s_codes is not None else np.zeros(n, np.int64)
            key = pd.factorize(ak * len(s_uniq) + sk)[0]
            order = np.argsort(key, kind="stable")
            bounds = np.concatenate([[0], np.cumsum(np.bincount(key))])
            groups = [order[bounds[g] : bounds[g + 1]] for g in range(len(bounds) - 1)]
        all_kept = bool(keep.all())
        for idx in groups:
            idx = idx if all_kept else idx[keep[idx]]
            if not len(idx):
                continue
            if len(idx) == n:  # the whole chunk, in order: views, not copies
                idx = slice(None)
            rows = lines[idx]
            first_row = 0 if isinstance(idx, slice) else idx[0]
            a = a_uniq[a_codes[first_row]] if a_codes is not None else a_uniq[0]
            s = s_uniq[s_codes[first_row]] if s_codes is not None else s_uniq[0]
            tg = t[idx]
            prev = last_t.get((a, s))
            steps = np.diff(tg, prepend=prev) if prev is not None else np.diff(tg)
            off = 0 if prev is not None else 1
            if (steps <= 0).any():
                j = int(np.flatnonzero(steps <= 0)[0]) + off
                now, before = float(tg[j]), float(tg[j - 1] if j > 0 else prev)
                what = "duplicates" if now == before else "is before"
                raise DataError(
                    f"timestamp {now!r} {what} the previous row's {before!r} within animal"
                    f" {a!r}, segment {s!r}: timestamps must increase within a segment."
                    " Sort the file",
                    path=path,
                    row=int(rows[j]),
                    column="timestamp",
                )
            last_t[(a, s)] = float(tg[-1])
            ag, lg = acc_g[idx], labels[idx]
            if labeller is not None:
                lg = np.asarray(labeller.label_samples(a, tg), dtype=object)
                if cfg.label_map:
                    lg = _map_labels(lg, cfg)
            if cfg.classes is not None:
                out = np.asarray([v is not None and v not in cfg.classes for v in lg], bool)
                if out.any():
                    tg, ag, lg, rows = tg[~out], ag[~out], lg[~out], rows[~out]
                    if not len(tg):
                        continue
            yield Block(a, s, tg, ag, lg, rows)
    if not any_rows:
        raise DataError("the file has a header but no data rows", path=path)


def infer_rate(path: str | Path, cfg: DataConfig | None = None, *, rows: int = 20_000) -> float:
    """The sampling rate of a generic file: ``cfg.rate_hz``, else ``1 / median step`` of its
    first ``rows`` rows within (animal, segment), rounded to 3 decimals as whole-file loading
    does (which takes the median over the whole file)."""
    cfg = cfg if cfg is not None else DataConfig()
    if cfg.rate_hz is not None:
        return float(cfg.rate_hz)
    steps: list[np.ndarray] = []
    n = 0
    for b in iter_blocks(path, cfg, chunk_rows=rows):
        steps.append(np.diff(b.t))
        n += len(b.t)
        if n >= rows:
            break
    allsteps = np.concatenate(steps) if steps else np.zeros(0)
    if allsteps.size == 0:
        raise DataError(
            "cannot infer the sampling rate (no recording has two samples); set rate_hz",
            path=path,
        )
    return median_rate(allsteps, "", path=path)


@dataclass(frozen=True)
class WindowBlock:
    """Windows of one (animal, segment) from one push.

    Attributes:
        animal, segment: whose windows.
        run: index of the gap-free run within (animal, segment), counting from 0.
        X: (n, 3, L) float32 windows in g.
        start, end: (n,) float64 start time and end time (last sample + 1/rate).
        label: (n,) object majority label (None: unlabelled majority).
    """

    animal: str
    segment: str
    run: int
    X: np.ndarray
    start: np.ndarray
    end: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return int(self.X.shape[0])


@dataclass
class _Carry:
    run: int = -1
    t: np.ndarray = field(default_factory=lambda: np.zeros(0))
    acc: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    skip: int = 0  # samples to drop before the next window start (hop > length)
    last_t: float | None = None

    def empty(self) -> None:
        """Carry no samples (fresh arrays: an empty view would keep its block alive)."""
        self.t, self.acc = np.zeros(0), np.zeros((0, 3), np.float32)
        self.labels = np.zeros(0, object)


class WindowStream:
    """Whole-file windowing, fed one :class:`Block` at a time (see the module docstring).

    Args:
        length, hop: window length and hop in samples.
        rate_hz: the sampling rate (gap detection and window ends).
        max_gap_factor: a step of more than this many sample periods starts a new run.
        label_order: tie-break order of labels (default: by name).
        labels: False: every window's label is None, its samples' labels not read (a pass
            that needs only the windows, such as a calibration's sum of their means).
    """

    def __init__(
        self,
        length: int,
        hop: int,
        rate_hz: float,
        max_gap_factor: float,
        label_order: tuple[str, ...] | None = None,
        labels: bool = True,
    ) -> None:
        self.labels = labels
        self.length, self.hop, self.rate_hz = int(length), int(hop), float(rate_hz)
        self.max_gap_factor = float(max_gap_factor)
        self.label_order = label_order
        self._carry: dict[tuple[str, str], _Carry] = {}

    def push(self, block: Block) -> list[WindowBlock]:
        """The windows completed by ``block`` (at most one per run it touches)."""
        key = (block.animal, block.segment)
        c = self._carry.setdefault(key, _Carry())
        t = block.t
        step = np.diff(t, prepend=c.last_t) if c.last_t is not None else np.diff(t)
        off = 0 if c.last_t is not None else 1
        # Same test as run_bounds: a non-positive step or one over the gap threshold.
        breaks = np.flatnonzero((step <= 0) | (step > self.max_gap_factor / self.rate_hz)) + off
        if c.last_t is None:
            breaks = np.concatenate([[0], breaks])
        c.last_t = float(t[-1])
        cuts = [*breaks.tolist(), len(t)]
        out: list[WindowBlock] = []
        pieces = [(0, cuts[0], False)] if cuts[0] > 0 else []
        pieces += [(a, b, True) for a, b in itertools.pairwise(cuts)]
        for a, b, new_run in pieces:
            if new_run:
                c.run += 1
                c.skip = 0
                c.empty()
            if b <= a:
                continue
            wb = self._extend(block, c, a, b)
            if wb is not None:
                out.append(wb)
        return out

    def _extend(self, block: Block, c: _Carry, a: int, b: int) -> WindowBlock | None:
        t, acc, lab = block.t[a:b], block.acc[a:b], block.labels[a:b]
        if c.skip:
            k = min(c.skip, len(t))
            t, acc, lab, c.skip = t[k:], acc[k:], lab[k:], c.skip - k
        if len(c.t):
            t = np.concatenate([c.t, t])
            acc = np.concatenate([c.acc, acc])
            lab = np.concatenate([c.labels, lab])
        L, hop = self.length, self.hop
        n = len(t)
        if n < L:
            # copies: a view would keep the whole block alive with the carry (one per segment)
            c.t, c.acc, c.labels = t.copy(), acc.copy(), lab.copy()
            return None
        n_w = (n - L) // hop + 1
        starts = np.arange(n_w, dtype=np.int64) * hop
        nxt = n_w * hop
        if nxt >= n:
            c.skip = nxt - n
            c.empty()
        else:
            c.t, c.acc, c.labels = t[nxt:].copy(), acc[nxt:].copy(), lab[nxt:].copy()
        # every hop-th window as a strided view: one copy makes them contiguous
        view = np.lib.stride_tricks.sliding_window_view(acc, L, axis=0)[::hop][:n_w]
        X = np.ascontiguousarray(view, dtype=np.float32)
        return WindowBlock(
            animal=block.animal,
            segment=block.segment,
            run=c.run,
            X=X,
            start=t[starts],
            end=t[starts + L - 1] + 1.0 / self.rate_hz,
            label=self._majority(lab, starts) if self.labels else np.full(n_w, None, dtype=object),
        )

    def _majority(self, lab: np.ndarray, starts: np.ndarray) -> np.ndarray:
        L = self.length
        codes, uniq = pd.factorize(lab, use_na_sentinel=True)
        if not len(uniq):
            return np.full(len(starts), None, dtype=object)
        names = [str(u) for u in uniq]
        if self.label_order is not None:
            pos = {n: i for i, n in enumerate(self.label_order)}
            rank = sorted(range(len(names)), key=lambda i: (pos.get(names[i], len(pos)), names[i]))
        else:
            rank = sorted(range(len(names)), key=lambda i: names[i])
        remap = np.empty(len(names) + 1, dtype=np.int64)
        remap[np.asarray(rank)] = np.arange(len(names))
        remap[-1] = len(names)  # unlabelled: the last column
        c = remap[codes]  # -1 codes pick the last entry
        onehot = np.zeros((len(c) + 1, len(names) + 1), dtype=np.int32)
        onehot[np.arange(1, len(c) + 1), c] = 1
        cum = np.cumsum(onehot, axis=0)
        counts = cum[starts + L] - cum[starts]
        best = counts[:, :-1].argmax(axis=1)
        labelled = counts[np.arange(len(starts)), best]
        ok = (labelled > 0) & (labelled >= counts[:, -1])
        ordered = np.asarray([names[i] for i in rank] + [None], dtype=object)
        return np.where(ok, ordered[best], None)


def stream_windows(
    path: str | Path,
    cfg: DataConfig,
    *,
    length: int,
    hop: int,
    rate_hz: float,
    max_gap_factor: float,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    labeller: SampleLabeller | None = None,
    labels: bool = True,
) -> Iterator[WindowBlock]:
    """Every window of a generic file (see :class:`WindowStream`; ``labels=False``: without
    their labels), chunk by chunk."""
    ws = WindowStream(length, hop, rate_hz, max_gap_factor, cfg.classes, labels=labels)
    for block in iter_blocks(path, cfg, chunk_rows=chunk_rows, labeller=labeller):
        if cfg.rate_hz is None:  # the rate was inferred: a chunk sampled at another is wrong
            check_steady_rate(np.diff(block.t), rate_hz, block.animal, block.segment,
                              lambda i, b=block: {"path": path, "row": int(b.rows[i])})  # fmt: skip
        yield from ws.push(block)
